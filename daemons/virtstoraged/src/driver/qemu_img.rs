//! Running the real `qemu-img` (Debian's `qemu-utils`) for qcow2 volumes:
//! `qemu-img create -f qcow2 -o compat=…` to make one, as libvirt's
//! `virStorageBackendCreateQemuImg` builds the command (size in KiB,
//! `compat=0.10` unless the volume asks for another), and
//! `qemu-img info -U --output=json` to read its virtual size, cluster size,
//! compat level and features (`-U`: a running guest's lock does not stop
//! the read).
//!
//! `qemu-img` is an external process that may take its time (or hang on a
//! dead file system): it runs under tokio without blocking a worker, is
//! killed if the call is dropped, and the call's in-flight record says it
//! waits on it (process and pid), so `virt-daemons` shows where a slow
//! `vol-create` is.

use crate::conf::{QcowFeature, VolDef};
use modvirt_runtime::observe::inflight::{CallRecord, Waiting};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A `qemu-img` run that failed.
#[derive(Debug, thiserror::Error)]
pub enum QemuImgError {
    /// No `qemu-img` in `PATH` (libvirt's words).
    #[error("creation of non-raw file images is not supported without qemu-img.")]
    Missing,
    #[error("cannot run {command}: {source}")]
    Spawn { command: String, source: std::io::Error },
    /// It ran and failed (libvirt's `virCommandRun` wording).
    #[error("Child process ({command}) unexpected exit status {status}: {stderr}")]
    Failed {
        command: String,
        status: i32,
        stderr: String,
    },
    #[error("cannot read the output of {command}: {detail}")]
    Output { command: String, detail: String },
    /// A volume option `qemu-img` would refuse.
    #[error("{0}")]
    Unsupported(String),
}

impl QemuImgError {
    pub fn to_rpc(&self) -> RpcError {
        match self {
            Self::Unsupported(detail) => RpcError::new(
                ErrorCode(67),
                ErrorDomain::STORAGE,
                "unsupported configuration",
                detail.clone(),
            ),
            other => RpcError::new(
                ErrorCode::INTERNAL_ERROR,
                ErrorDomain::STORAGE,
                "internal error",
                other.to_string(),
            ),
        }
    }
}

/// What `qemu-img info` says about a qcow2 image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInfo {
    pub virtual_size: u64,
    pub cluster_size: u64,
    pub compat: Option<String>,
    pub features: Vec<QcowFeature>,
}

impl ImageInfo {
    /// Fills a probed qcow2 volume's capacity and qcow2 details.
    pub fn apply(&self, def: &mut VolDef) {
        def.capacity = self.virtual_size;
        def.target.cluster_size = self.cluster_size;
        def.target.compat = self.compat.clone();
        // libvirt lists features for qcow2 v3 (compat 1.1) images only.
        def.target.features = (self.compat.as_deref() != Some("0.10")).then(|| self.features.clone());
    }
}

/// `qemu-img` as found in `PATH`.
pub fn binary() -> Result<PathBuf, QemuImgError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join("qemu-img"))
        .find(|p| p.is_file())
        .ok_or(QemuImgError::Missing)
}

/// The `create` arguments for a qcow2 volume (after the binary).
pub fn create_args(def: &VolDef, path: &Path, prealloc_metadata: bool) -> Result<Vec<String>, QemuImgError> {
    let size_k = def.capacity.div_ceil(1024);
    let mut opts = Vec::new();
    if prealloc_metadata {
        let alloc_k = def.allocation.div_ceil(1024);
        opts.push(if size_k > alloc_k {
            "preallocation=metadata".to_owned()
        } else {
            "preallocation=falloc".to_owned()
        });
    }
    let compat = def.target.compat.as_deref().unwrap_or("0.10");
    opts.push(format!("compat={compat}"));
    for f in def.target.features.iter().flatten() {
        if compat == "0.10" {
            let name = match f {
                QcowFeature::LazyRefcounts => "lazy_refcounts",
                QcowFeature::ExtendedL2 => "'extended_l2'",
            };
            return Err(QemuImgError::Unsupported(format!(
                "{name} not supported with compat level {compat}"
            )));
        }
        opts.push(match f {
            QcowFeature::LazyRefcounts => "lazy_refcounts".to_owned(),
            QcowFeature::ExtendedL2 => "extended_l2=on".to_owned(),
        });
    }
    Ok(vec![
        "create".into(),
        "-f".into(),
        "qcow2".into(),
        "-o".into(),
        opts.join(","),
        path.display().to_string(),
        format!("{size_k}K"),
    ])
}

/// Runs `qemu-img ARGS`, marked on `call` as a wait on that process, and
/// gives its standard output.
async fn run(args: &[String], what: &str, call: Option<&Arc<CallRecord>>) -> Result<Vec<u8>, QemuImgError> {
    let bin = binary()?;
    let command = std::iter::once(bin.display().to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let child = tokio::process::Command::new(&bin)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| QemuImgError::Spawn {
            command: command.clone(),
            source,
        })?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok());
    let _wait = call.map(|c| {
        c.wait_on(Waiting::Process {
            description: format!("qemu-img {what}"),
            pid,
        })
    });
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| QemuImgError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(QemuImgError::Failed {
            command,
            status: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
        });
    }
    Ok(out.stdout)
}

/// Creates the qcow2 image of `def` at `path`.
pub async fn create(
    def: &VolDef,
    path: &Path,
    prealloc_metadata: bool,
    call: Option<&Arc<CallRecord>>,
) -> Result<(), QemuImgError> {
    let args = create_args(def, path, prealloc_metadata)?;
    run(&args, &format!("create of '{}'", path.display()), call).await?;
    Ok(())
}

/// Reads what a qcow2 image at `path` is.
pub async fn info(path: &Path, call: Option<&Arc<CallRecord>>) -> Result<ImageInfo, QemuImgError> {
    let args: Vec<String> = vec![
        "info".into(),
        "-U".into(),
        "--output=json".into(),
        path.display().to_string(),
    ];
    let out = run(&args, &format!("info of '{}'", path.display()), call).await?;
    parse_info(&out).map_err(|detail| QemuImgError::Output {
        command: format!("qemu-img {}", args.join(" ")),
        detail,
    })
}

/// The parts of `qemu-img info --output=json` that libvirt shows.
pub fn parse_info(json: &[u8]) -> Result<ImageInfo, String> {
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let virtual_size = v["virtual-size"]
        .as_u64()
        .ok_or_else(|| "no virtual-size".to_owned())?;
    let data = &v["format-specific"]["data"];
    let mut features = Vec::new();
    if data["lazy-refcounts"].as_bool() == Some(true) {
        features.push(QcowFeature::LazyRefcounts);
    }
    if data["extended-l2"].as_bool() == Some(true) {
        features.push(QcowFeature::ExtendedL2);
    }
    Ok(ImageInfo {
        virtual_size,
        cluster_size: v["cluster-size"].as_u64().unwrap_or(0),
        compat: data["compat"].as_str().map(str::to_owned),
        features,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vol(xml: &str) -> VolDef {
        VolDef::parse(xml).unwrap()
    }

    #[test]
    fn create_command_is_libvirts() {
        let def = vol(
            "<volume><name>a</name><capacity>1000000</capacity><target><format type='qcow2'/></target></volume>",
        );
        assert_eq!(
            create_args(&def, Path::new("/p/a"), false).unwrap(),
            ["create", "-f", "qcow2", "-o", "compat=0.10", "/p/a", "977K"]
        );
        let def = vol(
            "<volume><name>a</name><capacity unit='G'>1</capacity><allocation>0</allocation>\
             <target><format type='qcow2'/><features><lazy_refcounts/></features></target></volume>",
        );
        assert_eq!(
            create_args(&def, Path::new("/p/a"), true).unwrap(),
            [
                "create",
                "-f",
                "qcow2",
                "-o",
                "preallocation=metadata,compat=1.1,lazy_refcounts",
                "/p/a",
                "1048576K"
            ]
        );
        let def = vol(
            "<volume><name>a</name><capacity>1</capacity><target><format type='qcow2'/>\
             <compat>0.10</compat><features><lazy_refcounts/></features></target></volume>",
        );
        let e = create_args(&def, Path::new("/p/a"), false).unwrap_err().to_rpc();
        assert_eq!(
            (e.code.0, e.text()),
            (
                67,
                "unsupported configuration: lazy_refcounts not supported with compat level 0.10"
            )
        );
    }

    #[test]
    fn info_output_is_read() {
        let json = br#"{"virtual-size": 1073741824, "filename": "/p/a", "cluster-size": 65536,
            "format": "qcow2", "actual-size": 200704, "format-specific": {"type": "qcow2",
            "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": true,
            "refcount-bits": 16, "corrupt": false, "extended-l2": false}}, "dirty-flag": false}"#;
        let info = parse_info(json).unwrap();
        assert_eq!(
            info,
            ImageInfo {
                virtual_size: 1 << 30,
                cluster_size: 65536,
                compat: Some("1.1".into()),
                features: vec![QcowFeature::LazyRefcounts],
            }
        );
        let mut def = vol("<volume><name>a</name><capacity>1</capacity></volume>");
        info.apply(&mut def);
        assert_eq!(def.capacity, 1 << 30);
        assert_eq!(def.target.features, Some(vec![QcowFeature::LazyRefcounts]));
        let v2 = ImageInfo {
            compat: Some("0.10".into()),
            ..info
        };
        v2.apply(&mut def);
        assert_eq!(def.target.features, None);
        assert!(parse_info(b"{}").is_err());
        assert!(parse_info(b"not json").is_err());
    }

    #[test]
    fn failures_read_as_libvirts() {
        let e = QemuImgError::Failed {
            command: "/usr/bin/qemu-img create -f qcow2 /x 1K".into(),
            status: 1,
            stderr: "qemu-img: /x: Could not create '/x': Permission denied".into(),
        }
        .to_rpc();
        assert_eq!((e.code.0, e.domain.0), (1, 18));
        assert_eq!(
            e.text(),
            "internal error: Child process (/usr/bin/qemu-img create -f qcow2 /x 1K) unexpected exit status 1: \
             qemu-img: /x: Could not create '/x': Permission denied"
        );
        assert_eq!(
            QemuImgError::Missing.to_rpc().text(),
            "internal error: creation of non-raw file images is not supported without qemu-img."
        );
    }
}
