//! The REMOTE program at connection level: what every daemon answers
//! itself before (and besides) its driver — authentication, feature
//! probes, `CONNECT_OPEN` of a URI this daemon serves, identity queries and
//! the close callback, and `CONNECT_SET_IDENTITY` from a daemon forwarding
//! its client's calls. Any other procedure goes to the driver; what the
//! driver does not implement is forwarded to the daemon owning it when that
//! is another driver's ([`crate::route`]), or answered with libvirt's
//! `VIR_ERR_NO_SUPPORT` naming the API.

use crate::dispatch::{self, CallContext, CallFuture, CallResult, ProgramHandler, decode_args, encode_ret};
use modvirt_wire::program::{Program, REMOTE};
use modvirt_wire::remote::{self as r, feature};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// libvirt API level modvirt implements (`CONNECT_GET_LIB_VERSION`).
pub const LIB_VERSION: u64 = r::pack_version(9, 0, 0);

/// `VIR_CONNECT_RO`.
const CONNECT_RO: u32 = 1;
/// `VIR_CONNECT_NO_ALIASES`.
const CONNECT_NO_ALIASES: u32 = 2;

pub type VersionFuture = Pin<Box<dyn Future<Output = Result<u64, RpcError>> + Send + 'static>>;
/// What a driver does when the daemon stops.
pub type ShutdownFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
/// A driver's initialisation: an error stops the daemon with that message.
pub type InitFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// What a daemon's driver tells the connection layer about itself.
pub trait DriverInfo: Send + Sync + 'static {
    /// URI scheme served, e.g. `qemu`.
    fn uri_scheme(&self) -> &'static str;
    /// `CONNECT_GET_TYPE`, e.g. `QEMU`.
    fn type_name(&self) -> &'static str;
    /// `CONNECT_GET_VERSION`: the hypervisor's version. A driver without a
    /// hypervisor (network, storage, …, and the proxy) reports the library
    /// version, as libvirt's secondary drivers do.
    fn version(&self) -> VersionFuture {
        Box::pin(async { Ok(LIB_VERSION) })
    }

    /// Driver initialisation at start-up, inside the `driver` phase (which
    /// ends when `phase` is dropped): add steps with `phase.step(…)` and
    /// counts with `detail`. `daemon` gives the idle timer, paths, job
    /// locks and peers. An error stops the daemon with that message.
    fn init(
        &self,
        _daemon: Arc<crate::daemon::DaemonShared>,
        _phase: crate::observe::phases::PhaseGuard,
    ) -> InitFuture {
        Box::pin(async { Ok(()) })
    }

    /// The daemon is stopping (idle exit or signal): no client is served any
    /// more, and the state file still says `stopping`. Release what must be
    /// released (guests are left running); bounded by
    /// [`SHUTDOWN_LIMIT`](crate::daemon::SHUTDOWN_LIMIT).
    fn shutdown(&self) -> ShutdownFuture {
        Box::pin(async {})
    }

    /// Whether the daemon may listen on TCP/TLS (`--listen`): only the proxy.
    fn listens_on_network(&self) -> bool {
        false
    }

    /// The driver's own procedures: `None` means not implemented
    /// (`VIR_ERR_NO_SUPPORT`). Connection-level procedures never get here.
    fn call(&self, _ctx: &CallContext, _payload: &[u8]) -> Option<CallFuture> {
        None
    }
}

/// The REMOTE program handler of a daemon.
pub struct RemoteProgram {
    driver: Arc<dyn DriverInfo>,
}

impl std::fmt::Debug for RemoteProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteProgram")
            .field("scheme", &self.driver.uri_scheme())
            .finish()
    }
}

impl RemoteProgram {
    pub fn new(driver: Arc<dyn DriverInfo>) -> Self {
        Self { driver }
    }
}

pub(crate) mod procs {
    pub const CONNECT_OPEN: i32 = 1;
    pub const CONNECT_CLOSE: i32 = 2;
    pub const CONNECT_GET_TYPE: i32 = 3;
    pub const CONNECT_GET_VERSION: i32 = 4;
    pub const CONNECT_GET_HOSTNAME: i32 = 59;
    pub const CONNECT_SUPPORTS_FEATURE: i32 = 60;
    pub const AUTH_LIST: i32 = 66;
    pub const CONNECT_GET_URI: i32 = 110;
    pub const CONNECT_IS_SECURE: i32 = 149;
    pub const CONNECT_GET_LIB_VERSION: i32 = 157;
    pub const CONNECT_REGISTER_CLOSE_CALLBACK: i32 = 360;
    pub const CONNECT_UNREGISTER_CLOSE_CALLBACK: i32 = 361;
    pub const CONNECT_SET_IDENTITY: i32 = 419;
}

/// The URI a client without one opens on a daemon with no driver of its
/// own (`virtproxyd`), as libvirt's default for root.
pub const DEFAULT_URI: &str = "qemu:///system";

fn no_driver_for(uri: &str) -> RpcError {
    RpcError::plain(
        ErrorCode::NO_CONNECT,
        ErrorDomain::NONE,
        format!("no connection driver available for {uri}"),
    )
}

/// Checks a `CONNECT_OPEN` URI against the scheme this daemon serves.
/// `None` (the client's default) is accepted.
pub fn check_uri(scheme: &str, name: Option<&str>) -> Result<(), RpcError> {
    let Some(uri) = name.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let no_driver = || no_driver_for(uri);
    let (s, rest) = uri.split_once("://").ok_or_else(no_driver)?;
    let base = s.split('+').next().unwrap_or(s);
    if base != scheme {
        return Err(no_driver());
    }
    let path = rest.split('?').next().unwrap_or("");
    let (host, path) = match path.find('/') {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    if !host.is_empty() {
        return Err(no_driver());
    }
    if path != "/system" {
        return Err(RpcError::new(
            ErrorCode::INTERNAL_ERROR,
            ErrorDomain::NONE,
            "internal error",
            format!(
                "unexpected {} URI path '{path}', try {scheme}:///system",
                scheme.to_uppercase()
            ),
        ));
    }
    Ok(())
}

impl ProgramHandler for RemoteProgram {
    fn program(&self) -> &'static Program {
        &REMOTE
    }

    fn allowed_before_open(&self, procedure: i32) -> bool {
        matches!(
            procedure,
            procs::AUTH_LIST | procs::CONNECT_OPEN | procs::CONNECT_CLOSE | procs::CONNECT_SUPPORTS_FEATURE
        ) || (67..=70).contains(&procedure)
    }

    fn call(&self, ctx: CallContext, payload: Vec<u8>) -> CallFuture {
        let driver = self.driver.clone();
        Box::pin(async move { call(driver, ctx, payload).await })
    }
}

async fn call(driver: Arc<dyn DriverInfo>, ctx: CallContext, payload: Vec<u8>) -> CallResult {
    let p = ctx.procedure;
    let client = &ctx.client;
    // A client that opened another daemon's URI: its calls go there (the
    // handshake's own steps stay here).
    if let Some(session) = client.session() {
        match p.number {
            procs::AUTH_LIST | procs::CONNECT_SUPPORTS_FEATURE | procs::CONNECT_OPEN => {}
            procs::CONNECT_CLOSE => {
                let closed = crate::route::through_session(&ctx, &session, payload).await;
                client.set_session(None);
                client.side_sessions.lock().await.clear();
                client.set_open(false);
                client.set_close_callback(false);
                return closed;
            }
            _ => return crate::route::through_session(&ctx, &session, payload).await,
        }
    }
    match p.number {
        procs::AUTH_LIST => encode_ret(&r::AuthListRet {
            types: vec![r::AUTH_NONE],
        }),
        procs::CONNECT_SUPPORTS_FEATURE => {
            let a: r::ConnectSupportsFeatureArgs = decode_args(&payload)?;
            if a.feature == feature::PROGRAM_KEEPALIVE {
                client.start_keepalive();
            } else if !client.is_open() {
                return Err(dispatch::not_open());
            }
            let supported = matches!(
                a.feature,
                feature::PROGRAM_KEEPALIVE
                    | feature::REMOTE_EVENT_CALLBACK
                    | feature::REMOTE_CLOSE_CALLBACK
                    | feature::TYPED_PARAM_STRING
                    | feature::REMOTE
            );
            encode_ret(&r::ConnectSupportsFeatureRet {
                supported: i32::from(supported),
            })
        }
        procs::CONNECT_OPEN => {
            let a: r::ConnectOpenArgs = decode_args(&payload)?;
            dispatch::check_flags(a.flags, CONNECT_RO | CONNECT_NO_ALIASES, p)?;
            if client.is_open() {
                return Err(RpcError::new(
                    ErrorCode::INTERNAL_ERROR,
                    ErrorDomain::RPC,
                    "internal error",
                    "connection already open",
                ));
            }
            let ours = check_uri(driver.uri_scheme(), a.name.as_deref());
            if ours.is_err() || driver.uri_scheme().is_empty() {
                // Another driver's URI (or any, for a daemon with no driver
                // of its own): the connection goes to the daemon owning it.
                let uri = a.name.as_deref().filter(|s| !s.is_empty()).unwrap_or(DEFAULT_URI);
                let scheme = uri
                    .split("://")
                    .next()
                    .and_then(|s| s.split('+').next())
                    .unwrap_or("");
                let Some(owner) = crate::route::owner_of_scheme(scheme).filter(|d| *d != ctx.daemon.name)
                else {
                    return ours.and_then(|()| Err(no_driver_for(uri)));
                };
                check_uri(scheme, Some(uri))?;
                crate::route::open_session(&ctx, owner, scheme).await?;
            }
            if a.flags & CONNECT_RO != 0 {
                client.set_readonly();
            }
            client.set_open(true);
            tracing::debug!(
                target: "remote.connect",
                "client {} opened {}",
                client.id,
                a.name.as_deref().unwrap_or("(default)")
            );
            encode_ret(&())
        }
        procs::CONNECT_CLOSE => {
            client.side_sessions.lock().await.clear();
            client.set_open(false);
            client.set_close_callback(false);
            encode_ret(&())
        }
        procs::CONNECT_GET_TYPE => encode_ret(&r::ConnectGetTypeRet {
            type_: driver.type_name().to_owned(),
        }),
        procs::CONNECT_GET_VERSION => encode_ret(&r::ConnectGetVersionRet {
            hv_ver: driver.version().await?,
        }),
        procs::CONNECT_GET_LIB_VERSION => encode_ret(&r::ConnectGetLibVersionRet { lib_ver: LIB_VERSION }),
        procs::CONNECT_GET_HOSTNAME => {
            let h = nix::unistd::gethostname().map_err(|e| {
                RpcError::plain(
                    ErrorCode::SYSTEM_ERROR,
                    ErrorDomain::NONE,
                    format!("cannot get hostname: {e}"),
                )
            })?;
            encode_ret(&r::ConnectGetHostnameRet {
                hostname: h.to_string_lossy().into_owned(),
            })
        }
        procs::CONNECT_GET_URI => encode_ret(&r::ConnectGetUriRet {
            uri: format!("{}:///system", driver.uri_scheme()),
        }),
        procs::CONNECT_IS_SECURE => encode_ret(&r::ConnectIsSecureRet { secure: 1 }),
        procs::CONNECT_REGISTER_CLOSE_CALLBACK => {
            client.set_close_callback(true);
            encode_ret(&())
        }
        procs::CONNECT_UNREGISTER_CLOSE_CALLBACK => {
            if !client.has_close_callback() {
                return Err(RpcError::new(
                    ErrorCode::OPERATION_INVALID,
                    ErrorDomain::RPC,
                    "Requested operation is not valid",
                    "no close callback registered",
                ));
            }
            client.set_close_callback(false);
            encode_ret(&())
        }
        procs::CONNECT_SET_IDENTITY => {
            let a: r::ConnectSetIdentityArgs = decode_args(&payload)?;
            dispatch::check_flags(a.flags, 0, p)?;
            let identity = crate::identity::Identity::from_params(&a.params).map_err(|e| {
                RpcError::new(ErrorCode::INVALID_ARG, ErrorDomain::NONE, "invalid argument", e)
            })?;
            tracing::debug!(target: "remote.connect", "client {} acts for pid {} uid {}", client.id, identity.pid, identity.uid);
            client.claim_identity(identity).map_err(|_| {
                RpcError::new(
                    ErrorCode::OPERATION_INVALID,
                    ErrorDomain::RPC,
                    "Requested operation is not valid",
                    "the connection's identity is already set",
                )
            })?;
            encode_ret(&())
        }
        // The driver's own procedures; then the other drivers', forwarded
        // to their daemons.
        _ => match driver.call(&ctx, &payload) {
            Some(fut) => fut.await,
            None if crate::route::forwards(driver.uri_scheme(), p.driver) => {
                crate::route::forward(&ctx, payload).await
            }
            None => Err(dispatch::no_support(p)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert!(check_uri("qemu", None).is_ok());
        assert!(check_uri("qemu", Some("qemu:///system")).is_ok());
        assert!(check_uri("qemu", Some("qemu+unix:///system")).is_ok());
        let e = check_uri("qemu", Some("network:///system")).unwrap_err();
        assert_eq!(e.code, ErrorCode::NO_CONNECT);
        assert_eq!(e.text(), "no connection driver available for network:///system");
        let e = check_uri("qemu", Some("qemu:///session")).unwrap_err();
        assert_eq!(
            e.text(),
            "internal error: unexpected QEMU URI path '/session', try qemu:///system"
        );
        assert!(check_uri("qemu", Some("qemu://otherhost/system")).is_err());
    }
}
