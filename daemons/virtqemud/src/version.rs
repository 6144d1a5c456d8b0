//! What `virtqemud` tells `CONNECT_GET_TYPE` / `CONNECT_GET_VERSION`:
//! type `QEMU`, and the version printed by `qemu-system-x86_64 --version`
//! (probed once, on first use, never at start-up).

use modvirt_runtime::{DriverInfo, VersionFuture};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The emulator `virtqemud` reports on.
pub const EMULATOR: &str = "qemu-system-x86_64";

#[derive(Debug, Default)]
pub struct QemuInfo {
    version: Arc<OnceCell<Result<u64, RpcError>>>,
}

/// The emulator guests run in: `qemu-system-x86_64` from `PATH` (or its
/// bare name, so that starting a guest reports it missing).
pub fn emulator_path() -> PathBuf {
    find_in_path(EMULATOR).unwrap_or_else(|| PathBuf::from(EMULATOR))
}

fn find_in_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Parses `QEMU emulator version 7.2.22 (Debian …)` into 7002022.
pub fn parse_version(text: &str) -> Option<u64> {
    let rest = text.split("version ").nth(1)?;
    let v = rest.split(|c: char| c.is_whitespace() || c == '(').next()?;
    let mut parts = v.split('.').map(|p| p.parse::<u64>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let micro = parts.next().unwrap_or(Ok(0)).ok()?;
    Some(modvirt_wire::remote::pack_version(major, minor, micro))
}

async fn probe() -> Result<u64, RpcError> {
    let fail = |detail: String| {
        RpcError::new(
            ErrorCode::INTERNAL_ERROR,
            ErrorDomain::QEMU,
            "internal error",
            detail,
        )
    };
    let bin = find_in_path(EMULATOR).ok_or_else(|| {
        fail(format!(
            "Cannot find QEMU binary {EMULATOR}: No such file or directory"
        ))
    })?;
    let out = tokio::process::Command::new(&bin)
        .arg("--version")
        .output()
        .await
        .map_err(|e| fail(format!("cannot run {} --version: {e}", bin.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| {
        fail(format!(
            "cannot parse the version printed by {} --version: '{}'",
            bin.display(),
            text.lines().next().unwrap_or("")
        ))
    })
}

impl DriverInfo for QemuInfo {
    fn uri_scheme(&self) -> &'static str {
        "qemu"
    }

    fn type_name(&self) -> &'static str {
        "QEMU"
    }

    fn version(&self) -> VersionFuture {
        let cell = self.version.clone();
        Box::pin(async move { cell.get_or_init(probe).await.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_versions() {
        assert_eq!(
            parse_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)\nCopyright"),
            Some(7_002_022)
        );
        assert_eq!(parse_version("QEMU emulator version 10.0.2\n"), Some(10_000_002));
        assert_eq!(parse_version("garbage"), None);
    }
}
