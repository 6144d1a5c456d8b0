//! A guest's `<interface type='network'>`: the network's bridge, asked of
//! the network driver's daemon, and the tap device plugged into it.
//!
//! # Protocol
//!
//! Starting a guest, for each interface on a network, virtqemud calls the
//! daemon owning network procedures (`virtnetworkd`, in the same runtime
//! directory, started if nobody listens) over a peer connection, on behalf
//! of the call starting the guest and with its client's identity
//! (`CONNECT_SET_IDENTITY`), as libvirt's QEMU driver does through
//! `virGetConnectNetwork()`; an autostart has no client and calls as the
//! daemon itself:
//!
//! | procedure | arguments → reply | on failure |
//! |---|---|---|
//! | `NETWORK_LOOKUP_BY_NAME` (46) | name → network | `VIR_ERR_NO_NETWORK`, "no network with matching name 'X'", passed on unchanged |
//! | `NETWORK_IS_ACTIVE` (152) | network → 0/1 | 0: libvirt's `VIR_ERR_OPERATION_INVALID` from the network driver, "network 'X' is not active" |
//! | `NETWORK_GET_BRIDGE_NAME` (45) | network → bridge | passed on unchanged |
//!
//! Then, on the host, as libvirt's `virNetDevTapCreateInBridgePort`: a
//! persistent tap named `vnetN` (libvirt's counter: one more than the last
//! name handed out or found in use, skipping names that exist — never the
//! kernel's lowest free number, which reuses names at once), its MAC the
//! guest's with the first byte `0xfe` (`0xfa` if the guest's already is
//! `0xfe`) so that the bridge never takes it as its own, the bridge's MTU,
//! attached to the bridge and brought up. QEMU opens it by name
//! (`-netdev tap,ifname=vnetN`). The live definition shows the bridge
//! (`<source network='X' bridge='virbr0'/>`) and the tap (`<target
//! dev='vnetN'/>`); the status file keeps both, so that a restarted
//! daemon finds the taps of its guests again.
//!
//! A tap lives as long as its guest: [`Plugged`] deletes the taps of a
//! start that fails half-way, and [`unplug`] those of a guest that stopped
//! (shut down, destroyed, QEMU gone, or found dead after a restart).

use crate::domain::{DomainDef, InterfaceType, is_generated_ifname};
use modvirt_netlink::{Netlink, NetlinkError, TapOptions, create_tap_with};
use modvirt_runtime::DaemonShared;
use modvirt_runtime::observe::inflight::{CallGuard, CallRecord};
use modvirt_runtime::peer::{PeerCaller, PeerTarget};
use modvirt_wire::network::{NetworkArgs, NetworkGetBridgeNameRet, NetworkIsActiveRet};
use modvirt_wire::remote::{NetworkLookupByNameArgs, NetworkRet};
use modvirt_wire::xdr::{XdrDecode, XdrEncode};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use thiserror::Error;

/// `REMOTE_PROC_NETWORK_GET_BRIDGE_NAME`.
const NETWORK_GET_BRIDGE_NAME: i32 = 45;
/// `REMOTE_PROC_NETWORK_LOOKUP_BY_NAME`.
const NETWORK_LOOKUP_BY_NAME: i32 = 46;
/// `REMOTE_PROC_NETWORK_IS_ACTIVE`.
const NETWORK_IS_ACTIVE: i32 = 152;

/// libvirt's prefix for the taps it names (`VIR_NET_GENERATED_VNET_PREFIX`).
const VNET_PREFIX: &str = "vnet";
/// How many names [`TapNames::generate`] tries before giving up (libvirt's).
const NAME_ATTEMPTS: u32 = 10_000;

/// Why a guest's network interface could not be plugged in.
#[derive(Debug, Error)]
pub enum NetPortError {
    /// The network exists but is not running.
    #[error("network '{0}' is not active")]
    NotActive(String),
    /// The bridge the network driver named is not there (any more).
    #[error("Cannot get interface MTU on '{0}': No such device")]
    NoBridge(String),
    /// The definition asks for a host device name that is taken.
    #[error("The {0} interface already exists")]
    Exists(String),
    /// Every `vnetN` tried exists.
    #[error("no unused {VNET_PREFIX} names available")]
    NoFreeName,
    /// Creating, configuring or attaching the tap failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The blocking task doing the host work died.
    #[error("setting up the tap device failed: {0}")]
    Task(String),
    /// The network driver's reply could not be decoded.
    #[error("bad reply from the network driver to {procedure}: {reason}")]
    Reply { procedure: &'static str, reason: String },
}

impl NetPortError {
    /// libvirt's (code, domain, message) for this failure.
    pub fn to_rpc_error(&self) -> RpcError {
        let text = self.to_string();
        match self {
            NetPortError::NotActive(_) => RpcError::new(
                ErrorCode::OPERATION_INVALID,
                ErrorDomain::NETWORK,
                "Requested operation is not valid",
                text,
            ),
            NetPortError::Exists(_) => RpcError::new(
                ErrorCode::OPERATION_INVALID,
                ErrorDomain::NONE,
                "Requested operation is not valid",
                text,
            ),
            NetPortError::NoBridge(_) | NetPortError::Netlink(_) => {
                RpcError::plain(ErrorCode::SYSTEM_ERROR, ErrorDomain::NONE, text)
            }
            NetPortError::NoFreeName | NetPortError::Task(_) | NetPortError::Reply { .. } => RpcError::new(
                ErrorCode::INTERNAL_ERROR,
                ErrorDomain::QEMU,
                "internal error",
                text,
            ),
        }
    }
}

impl From<NetPortError> for RpcError {
    fn from(e: NetPortError) -> RpcError {
        e.to_rpc_error()
    }
}

/// libvirt's generated tap names: `vnet` and a counter shared by every
/// guest of the daemon (`virNetDevGenerateName`).
#[derive(Debug)]
pub struct TapNames {
    last: AtomicI32,
}

/// The daemon's tap names (libvirt keeps them process-wide too).
pub static VNET_NAMES: TapNames = TapNames::new();

impl TapNames {
    pub const fn new() -> TapNames {
        TapNames {
            last: AtomicI32::new(-1),
        }
    }

    /// Makes later names count on from `name` when it is one of ours
    /// (`vnet7` → the next is `vnet8` or higher): a guest found running.
    pub fn reserve(&self, name: &str) {
        if let Some(id) = name.strip_prefix(VNET_PREFIX).and_then(|n| n.parse::<i32>().ok()) {
            self.last.fetch_max(id, Ordering::Relaxed);
        }
    }

    /// The next `vnetN` for which `exists` says no.
    pub fn generate(
        &self,
        mut exists: impl FnMut(&str) -> Result<bool, NetPortError>,
    ) -> Result<String, NetPortError> {
        for _ in 0..NAME_ATTEMPTS {
            let previous = self
                .last
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(if n == i32::MAX { 0 } else { n + 1 })
                })
                .unwrap_or(-1);
            let id = if previous == i32::MAX { 0 } else { previous + 1 };
            let name = format!("{VNET_PREFIX}{id}");
            if !exists(&name)? {
                return Ok(name);
            }
        }
        Err(NetPortError::NoFreeName)
    }
}

impl Default for TapNames {
    fn default() -> Self {
        Self::new()
    }
}

/// The MAC of the host side of a guest NIC with MAC `guest`.
pub fn host_mac(guest: [u8; 6]) -> [u8; 6] {
    let mut mac = guest;
    mac[0] = if guest[0] == 0xfe { 0xfa } else { 0xfe };
    mac
}

/// Taps made for a guest being started: deleted when dropped, unless
/// [`Plugged::keep`] says the guest runs with them.
#[derive(Debug, Default)]
#[must_use = "the taps are deleted when this is dropped"]
pub struct Plugged {
    taps: Vec<String>,
}

impl Plugged {
    /// The guest runs: its taps now go with it (see [`unplug`]).
    pub fn keep(mut self) {
        self.taps.clear();
    }
}

impl Drop for Plugged {
    fn drop(&mut self) {
        delete_taps(&self.taps);
    }
}

/// Plugs every `type='network'` interface of `def` (a definition being
/// started) into its network's bridge, filling in the bridge and the tap
/// name; `call` is the call starting the guest, `None` for an autostart.
pub async fn plug(
    daemon: &Arc<DaemonShared>,
    call: Option<&Arc<CallRecord>>,
    def: &mut DomainDef,
) -> Result<Plugged, RpcError> {
    let mut plugged = Plugged::default();
    let mut caller: Option<NetworkCaller> = None;
    for iface in &mut def.devices.interfaces {
        if iface.iface_type != InterfaceType::Network {
            continue;
        }
        let network = iface.source.clone().unwrap_or_default();
        let caller = caller.get_or_insert_with(|| NetworkCaller::new(daemon, call));
        let bridge = caller.bridge_of(&network).await?;
        // A name the definition asks for is used as is; libvirt's own
        // names are never taken from a definition.
        let wanted = iface.target_dev.clone().filter(|name| !is_generated_ifname(name));
        let request = TapRequest {
            bridge: bridge.clone(),
            guest_mac: iface.mac.0,
            vnet_hdr: iface.model.as_deref() == Some("virtio"),
            wanted,
        };
        let tap = tokio::task::spawn_blocking(move || plug_tap(&VNET_NAMES, &request))
            .await
            .map_err(|e| NetPortError::Task(e.to_string()))??;
        tracing::info!(
            target: "qemu",
            "guest '{}': {} on bridge '{bridge}' of network '{network}'",
            def.name,
            tap
        );
        plugged.taps.push(tap.clone());
        iface.bridge = Some(bridge);
        iface.target_dev = Some(tap);
    }
    Ok(plugged)
}

/// Deletes the taps of a guest that stopped (its live definition).
pub fn unplug(live: &DomainDef) {
    delete_taps(&taps_of(live));
}

/// Keeps the tap names of a guest found running from being handed out.
pub fn reserve(live: &DomainDef) {
    for tap in taps_of(live) {
        VNET_NAMES.reserve(&tap);
    }
}

/// The taps virtqemud made for a running guest.
fn taps_of(live: &DomainDef) -> Vec<String> {
    live.devices
        .interfaces
        .iter()
        .filter(|i| i.iface_type == InterfaceType::Network)
        .filter_map(|i| i.target_dev.clone())
        .collect()
}

fn delete_taps(taps: &[String]) {
    if taps.is_empty() {
        return;
    }
    let mut nl = match Netlink::open() {
        Ok(nl) => nl,
        Err(e) => {
            tracing::warn!(target: "qemu", "cannot delete taps {}: {e}", taps.join(", "));
            return;
        }
    };
    for tap in taps {
        match nl.delete_link(tap) {
            Ok(()) => tracing::info!(target: "qemu", "tap {tap} deleted"),
            // Gone already (deleted by hand, or its namespace went away).
            Err(e) if e.errno() == Some(nix::errno::Errno::ENODEV) => {}
            Err(e) => tracing::warn!(target: "qemu", "{e}"),
        }
    }
}

/// What [`plug_tap`] makes.
#[derive(Debug, Clone)]
struct TapRequest {
    bridge: String,
    guest_mac: [u8; 6],
    vnet_hdr: bool,
    /// A name the definition asks for; `None`: the next `vnetN`.
    wanted: Option<String>,
}

/// Creates a persistent tap for `req` on its bridge, up; on any failure
/// after the tap exists, deletes it again.
fn plug_tap(names: &TapNames, req: &TapRequest) -> Result<String, NetPortError> {
    let mut nl = Netlink::open()?;
    let Some(bridge) = nl.link_by_name(&req.bridge)? else {
        return Err(NetPortError::NoBridge(req.bridge.clone()));
    };
    let name = match &req.wanted {
        Some(name) if nl.link_by_name(name)?.is_some() => return Err(NetPortError::Exists(name.clone())),
        Some(name) => name.clone(),
        None => names.generate(|name| Ok(nl.link_by_name(name)?.is_some()))?,
    };
    let options = TapOptions {
        vnet_hdr: req.vnet_hdr,
        persist: true,
    };
    // The descriptor closes at the end of this function; the tap persists.
    let (name, _fd) = create_tap_with(&name, options)?;
    let configured = (|| -> Result<(), NetlinkError> {
        // The MAC and MTU before joining the bridge: the bridge takes the
        // lowest MAC of its ports, and the MTU of the smallest.
        nl.set_mac(&name, host_mac(req.guest_mac))?;
        if bridge.mtu > 0 {
            nl.set_mtu(&name, bridge.mtu)?;
        }
        nl.set_master(&name, Some(&req.bridge))?;
        nl.set_up(&name, true)
    })();
    match configured {
        Ok(()) => Ok(name),
        Err(e) => {
            if let Err(del) = nl.delete_link(&name) {
                tracing::warn!(target: "qemu", "{del}");
            }
            Err(match e {
                NetlinkError::NoSuchLink { name, .. } if name == req.bridge => NetPortError::NoBridge(name),
                e => e.into(),
            })
        }
    }
}

/// Calls into the network driver's daemon for one guest start.
struct NetworkCaller {
    daemon: Arc<DaemonShared>,
    target: PeerTarget,
    record: Arc<CallRecord>,
    /// The in-flight record standing for an autostart, while it lasts.
    _own: Option<CallGuard>,
}

impl NetworkCaller {
    fn new(daemon: &Arc<DaemonShared>, call: Option<&Arc<CallRecord>>) -> NetworkCaller {
        let (owner, scheme) = modvirt_runtime::route::owner(modvirt_wire::program::Driver::Network)
            .unwrap_or(("virtnetworkd", "network"));
        // The client the call is made for, as `route::call` passes it on.
        let identity = call.and_then(|c| {
            daemon
                .servers()
                .iter()
                .find(|s| s.name == c.client.server)
                .and_then(|s| s.client(c.client.id))
                .map(|client| client.effective_identity().clone())
        });
        let (record, own) = match call {
            Some(c) => (c.clone(), None),
            None => {
                let guard = daemon.observer.inflight.start(
                    "REMOTE",
                    "DOMAIN_CREATE",
                    0,
                    Arc::new(modvirt_wire::observe::ClientRef {
                        server: daemon.name.clone(),
                        id: 0,
                        pid: std::process::id() as i32,
                        comm: "autostart".into(),
                    }),
                );
                (guard.record.clone(), Some(guard))
            }
        };
        NetworkCaller {
            target: modvirt_runtime::route::peer_target(daemon, owner, scheme, identity),
            daemon: daemon.clone(),
            record,
            _own: own,
        }
    }

    async fn call<R: XdrDecode>(
        &self,
        number: i32,
        name: &'static str,
        args: Vec<u8>,
    ) -> Result<R, RpcError> {
        let d = &self.daemon;
        let caller = PeerCaller {
            metrics: &d.metrics,
            call: &self.record,
        };
        let reply = d
            .peers
            .call_as(caller, &self.target, number, name, args, d.peers.call_timeout())
            .await?;
        R::from_xdr(&reply).map_err(|e| {
            NetPortError::Reply {
                procedure: name,
                reason: e.to_string(),
            }
            .into()
        })
    }

    /// The bridge of active network `network`.
    async fn bridge_of(&self, network: &str) -> Result<String, RpcError> {
        let args = NetworkLookupByNameArgs {
            name: network.to_owned(),
        };
        let net: NetworkRet = self
            .call(NETWORK_LOOKUP_BY_NAME, "NETWORK_LOOKUP_BY_NAME", args.to_xdr())
            .await?;
        let args = NetworkArgs { net: net.net }.to_xdr();
        let active: NetworkIsActiveRet = self
            .call(NETWORK_IS_ACTIVE, "NETWORK_IS_ACTIVE", args.clone())
            .await?;
        if active.active == 0 {
            return Err(NetPortError::NotActive(network.to_owned()).into());
        }
        let bridge: NetworkGetBridgeNameRet = self
            .call(NETWORK_GET_BRIDGE_NAME, "NETWORK_GET_BRIDGE_NAME", args)
            .await?;
        Ok(bridge.name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use crate::domain::FormatOptions;
    use modvirt_netlink::BridgeOptions;
    use nix::sched::{CloneFlags, unshare};

    #[test]
    fn the_host_side_mac_starts_with_fe_or_fa() {
        assert_eq!(
            host_mac([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            [0xfe, 0x54, 0x00, 0x12, 0x34, 0x56]
        );
        assert_eq!(
            host_mac([0xfe, 0x54, 0x00, 0x12, 0x34, 0x56]),
            [0xfa, 0x54, 0x00, 0x12, 0x34, 0x56]
        );
    }

    #[test]
    fn names_count_on_and_skip_those_in_use() {
        let names = TapNames::new();
        let none = |_: &str| Ok(false);
        assert_eq!(names.generate(none).unwrap(), "vnet0");
        assert_eq!(names.generate(none).unwrap(), "vnet1");
        // Not the lowest free one: libvirt never reuses a name at once.
        let taken = |n: &str| Ok(n == "vnet2" || n == "vnet3");
        assert_eq!(names.generate(taken).unwrap(), "vnet4");
        names.reserve("vnet41");
        names.reserve("vnet7");
        names.reserve("macvtap90");
        names.reserve("vnetx");
        assert_eq!(names.generate(none).unwrap(), "vnet42");
        let all = |_: &str| Ok(true);
        assert_eq!(
            names.generate(all).unwrap_err().to_string(),
            "no unused vnet names available"
        );
        let failing = |_: &str| Err(NetPortError::Task("boom".into()));
        assert!(matches!(names.generate(failing), Err(NetPortError::Task(_))));
    }

    #[test]
    fn errors_are_libvirts() {
        let e = NetPortError::NotActive("mvnet".into()).to_rpc_error();
        assert_eq!(
            (e.code, e.domain),
            (ErrorCode::OPERATION_INVALID, ErrorDomain::NETWORK)
        );
        assert_eq!(
            e.text(),
            "Requested operation is not valid: network 'mvnet' is not active"
        );
        let e = NetPortError::NoBridge("virbr0".into()).to_rpc_error();
        assert_eq!((e.code, e.domain), (ErrorCode::SYSTEM_ERROR, ErrorDomain::NONE));
        assert_eq!(e.text(), "Cannot get interface MTU on 'virbr0': No such device");
        let e = NetPortError::Exists("mytap".into()).to_rpc_error();
        assert_eq!(
            e.text(),
            "Requested operation is not valid: The mytap interface already exists"
        );
    }

    const LIVE: &str = "<domain type='qemu'>
  <name>g</name>
  <uuid>6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001</uuid>
  <memory unit='KiB'>65536</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='mvnet' bridge='virbr0'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:12:34:57'/>
      <source network='mvnet'/>
      <target dev='mytap'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:12:34:58'/>
      <source bridge='br0'/>
      <target dev='vnet9'/>
    </interface>
  </devices>
</domain>
";

    struct Fixed(u64);
    impl crate::domain::RandomSource for Fixed {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    fn interfaces_xml(def: &DomainDef, id: Option<i32>) -> String {
        let xml = def.to_xml(&FormatOptions { id });
        let start = xml.find("<interface").unwrap();
        let end = xml.rfind("</interface>").unwrap();
        xml[start..end].to_owned()
    }

    #[test]
    fn the_live_definition_shows_bridge_and_tap_and_the_inactive_one_does_not() {
        let def = DomainDef::parse(LIVE, &mut Fixed(7)).unwrap();
        assert_eq!(taps_of(&def), ["vnet3", "mytap"]);
        let live = interfaces_xml(&def, Some(4));
        assert!(
            live.contains(
                "<source network='mvnet' bridge='virbr0'/>\n      <target dev='vnet3'/>\n      <model type='virtio'/>"
            ),
            "{live}"
        );
        assert!(live.contains("<target dev='mytap'/>"), "{live}");
        assert!(live.contains("<source bridge='br0'/>\n      <model"), "{live}");
        let inactive = interfaces_xml(&def, None);
        assert!(
            inactive.contains("<source network='mvnet'/>\n      <model type='virtio'/>"),
            "{inactive}"
        );
        assert!(inactive.contains("<target dev='mytap'/>"), "{inactive}");
        assert!(
            !inactive.contains("vnet3") && !inactive.contains("virbr0"),
            "{inactive}"
        );
        // The status file's XML gives the same definition back.
        let again = DomainDef::parse(&def.to_xml(&FormatOptions { id: Some(4) }), &mut Fixed(7)).unwrap();
        assert_eq!(again, def);
    }

    /// Runs `test` on a thread in a fresh network namespace of its own.
    fn in_private_netns<T: Send + 'static>(test: impl FnOnce(&mut Netlink) -> T + Send + 'static) -> T {
        std::thread::spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): these tests need root");
            let mut nl = Netlink::open().unwrap();
            let names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
            assert_eq!(names, ["lo"], "not a fresh namespace; refusing to go on");
            test(&mut nl)
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn request(bridge: &str) -> TapRequest {
        TapRequest {
            bridge: bridge.into(),
            guest_mac: [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef],
            vnet_hdr: true,
            wanted: None,
        }
    }

    fn link_names(nl: &mut Netlink) -> Vec<String> {
        nl.links().unwrap().into_iter().map(|l| l.name).collect()
    }

    #[test]
    fn a_tap_is_plugged_into_the_bridge_up_and_deleted_again() {
        in_private_netns(|nl| {
            let options = BridgeOptions {
                mtu: Some(1400),
                ..Default::default()
            };
            let br = nl.create_bridge("virbr0", &options).unwrap();
            let names = TapNames::new();
            let tap = plug_tap(&names, &request("virbr0")).unwrap();
            assert_eq!(tap, "vnet0");
            let link = nl.link_by_name("vnet0").unwrap().unwrap();
            assert_eq!(link.mac, Some([0xfe, 0x54, 0x00, 0xab, 0xcd, 0xef]));
            assert_eq!(link.master, Some(br));
            assert_eq!(link.mtu, 1400);
            assert!(link.flags.is_up());
            assert_eq!(link.kind.as_deref(), Some("tun"));

            let mut wanted = request("virbr0");
            wanted.wanted = Some("vnet0".into());
            let e = plug_tap(&names, &wanted).unwrap_err();
            assert_eq!(e.to_string(), "The vnet0 interface already exists");
            wanted.wanted = Some("mytap".into());
            assert_eq!(plug_tap(&names, &wanted).unwrap(), "mytap");
            assert_eq!(plug_tap(&names, &request("virbr0")).unwrap(), "vnet1");

            delete_taps(&["vnet0".into(), "mytap".into(), "vnet1".into(), "gone0".into()]);
            assert_eq!(link_names(nl), ["lo", "virbr0"]);
        });
    }

    #[test]
    fn a_failure_half_way_leaves_no_tap_behind() {
        in_private_netns(|nl| {
            let names = TapNames::new();
            let e = plug_tap(&names, &request("virbr0")).unwrap_err();
            assert_eq!(
                e.to_string(),
                "Cannot get interface MTU on 'virbr0': No such device"
            );
            // A tap is no bridge: attaching fails after the new tap was
            // made, and the new tap goes again.
            let persist = TapOptions {
                persist: true,
                ..Default::default()
            };
            create_tap_with("nobr0", persist).unwrap();
            let e = plug_tap(&names, &request("nobr0")).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("cannot attach 'vnet0' to bridge 'nobr0': "),
                "{e}"
            );
            assert_eq!(link_names(nl), ["lo", "nobr0"]);
        });
    }

    #[test]
    fn plugged_taps_go_unless_kept() {
        in_private_netns(|nl| {
            nl.create_bridge("virbr0", &BridgeOptions::default()).unwrap();
            let names = TapNames::new();
            let a = plug_tap(&names, &request("virbr0")).unwrap();
            drop(Plugged { taps: vec![a] });
            assert_eq!(link_names(nl), ["lo", "virbr0"]);
            let b = plug_tap(&names, &request("virbr0")).unwrap();
            assert_eq!(b, "vnet1");
            Plugged { taps: vec![b] }.keep();
            assert_eq!(link_names(nl), ["lo", "virbr0", "vnet1"]);
        });
    }
}
