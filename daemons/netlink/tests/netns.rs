//! Against the real kernel, each test inside a private network namespace:
//! a thread calls `unshare(CLONE_NEWNET)` (namespaces are per thread), does
//! its work there, and the namespace disappears with the thread. The host's
//! own interfaces are never touched: a test that cannot unshare fails.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::IpAddr;
use std::thread;

use modvirt_netlink::{
    AddressScope, BridgeInfo, BridgeOptions, Netlink, NetlinkError, OperState, TapOptions, create_tap,
    create_tap_with,
};
use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};

const BRIDGE: &str = "mvtest0";
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x99, 0x00, 0x01];

/// Runs `test` on a thread of its own in a fresh network namespace, after
/// checking the namespace holds nothing but `lo`.
fn in_private_netns<T: Send + 'static>(test: impl FnOnce(&mut Netlink) -> T + Send + 'static) -> T {
    let handle = thread::Builder::new()
        .name("netns-test".into())
        .spawn(move || {
            if let Err(errno) = unshare(CloneFlags::CLONE_NEWNET) {
                panic!(
                    "unshare(CLONE_NEWNET) failed: {errno}. These tests need CAP_SYS_ADMIN \
                     (run them as root); they refuse to run in the host's namespace."
                );
            }
            let mut nl = Netlink::open().unwrap();
            let names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
            assert_eq!(names, ["lo"], "not a fresh namespace; refusing to go on");
            test(&mut nl)
        })
        .unwrap();
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn loopback_is_listed() {
    in_private_netns(|nl| {
        let links = nl.links().unwrap();
        let lo = &links[0];
        assert_eq!(lo.name, "lo");
        assert!(lo.flags.is_loopback());
        assert!(!lo.flags.is_up(), "lo starts down in a new namespace");
        assert_eq!(lo.link_type, 772);
        assert_eq!(lo.kind, None);
        assert_eq!(lo.mac, Some([0; 6]));
        assert!(lo.mtu > 0);
        assert_eq!(nl.link_by_name("lo").unwrap().as_ref(), Some(lo));
        assert_eq!(nl.link_by_name("mvnope0").unwrap(), None);

        nl.set_up("lo", true).unwrap();
        let lo = nl.link_by_name("lo").unwrap().unwrap();
        assert!(lo.flags.is_up() && lo.flags.is_running());
        let addrs = nl.addresses(Some("lo")).unwrap();
        let v4 = addrs.iter().find(|a| a.addr == ip("127.0.0.1")).unwrap();
        assert_eq!((v4.prefix, v4.scope, v4.index), (8, AddressScope::Host, lo.index));
    });
}

#[test]
fn bridge_with_addresses_and_a_tap() {
    in_private_netns(|nl| {
        // Create: down, with our MAC, MTU, STP settings.
        let options = BridgeOptions {
            mac: Some(MAC),
            stp: true,
            forward_delay_cs: 200,
            mtu: Some(1400),
        };
        let index = nl.create_bridge(BRIDGE, &options).unwrap();
        let bridge = nl.link_by_name(BRIDGE).unwrap().unwrap();
        assert_eq!(bridge.index, index);
        assert_eq!(bridge.mac, Some(MAC));
        assert_eq!(bridge.mtu, 1400);
        assert_eq!(bridge.kind.as_deref(), Some("bridge"));
        assert_eq!(
            bridge.bridge,
            Some(BridgeInfo {
                stp: true,
                forward_delay_cs: 200
            })
        );
        assert!(!bridge.flags.is_up());
        assert_eq!(bridge.master, None);

        // Up, addresses.
        nl.set_up(BRIDGE, true).unwrap();
        assert!(nl.link_by_name(BRIDGE).unwrap().unwrap().flags.is_up());
        nl.add_address(BRIDGE, ip("10.99.0.1"), 24).unwrap();
        nl.add_address(BRIDGE, ip("fd00:99::1"), 64).unwrap();
        let addrs = nl.addresses(Some(BRIDGE)).unwrap();
        let v4 = addrs.iter().find(|a| a.addr == ip("10.99.0.1")).unwrap();
        assert_eq!(
            (v4.index, v4.prefix, v4.scope),
            (index, 24, AddressScope::Universe)
        );
        assert_eq!(v4.broadcast, Some("10.99.0.255".parse().unwrap()));
        assert_eq!(v4.label.as_deref(), Some(BRIDGE));
        assert!(v4.flags.is_permanent());
        let v6 = addrs.iter().find(|a| a.addr == ip("fd00:99::1")).unwrap();
        assert_eq!((v6.index, v6.prefix, v6.peer), (index, 64, None));
        assert!(v6.flags.is_permanent());
        assert!(addrs.iter().all(|a| a.index == index));
        // The unfiltered list has lo's addresses too (none: lo is down) and ours.
        let all = nl.addresses(None).unwrap();
        assert!(all.iter().any(|a| a.addr == ip("10.99.0.1")));

        // The dump agrees with the lookup.
        let links = nl.links().unwrap();
        assert_eq!(
            links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["lo", BRIDGE]
        );
        assert_eq!(links[1], nl.link_by_name(BRIDGE).unwrap().unwrap());

        // A tap, attached to the bridge, detached, attached again.
        let (tap, tap_fd) = create_tap("mvtap%d").unwrap();
        assert_eq!(tap, "mvtap0");
        let tap_link = nl.link_by_name(&tap).unwrap().unwrap();
        assert_eq!(tap_link.kind.as_deref(), Some("tun"));
        nl.set_master(&tap, Some(BRIDGE)).unwrap();
        assert_eq!(nl.link_by_name(&tap).unwrap().unwrap().master, Some(index));
        nl.set_master(&tap, None).unwrap();
        assert_eq!(nl.link_by_name(&tap).unwrap().unwrap().master, None);
        nl.set_mac(&tap, [0xfe, 0x54, 0, 0x99, 0, 2]).unwrap();
        nl.set_mtu(&tap, 1400).unwrap();
        nl.set_master(&tap, Some(BRIDGE)).unwrap();
        nl.set_up(&tap, true).unwrap();
        let tap_link = nl.link_by_name(&tap).unwrap().unwrap();
        assert_eq!(
            (tap_link.master, tap_link.mac, tap_link.mtu),
            (Some(index), Some([0xfe, 0x54, 0, 0x99, 0, 2]), 1400)
        );
        // Up, with carrier: the kernel turns it on while an fd is attached.
        assert!(tap_link.flags.is_up() && tap_link.flags.is_lower_up());
        // tun drivers do not track an RFC 2863 state: `ip link` shows UNKNOWN.
        assert_eq!(tap_link.oper_state, OperState::Unknown);
        // A second tap takes the next number.
        let (tap1, tap1_fd) = create_tap("mvtap%d").unwrap();
        assert_eq!(tap1, "mvtap1");
        drop(tap1_fd);
        assert_eq!(
            nl.link_by_name(&tap1).unwrap(),
            None,
            "closing the fd deletes a tap"
        );

        // Down, delete: gone, and the tap is detached.
        nl.set_up(BRIDGE, false).unwrap();
        assert!(!nl.link_by_name(BRIDGE).unwrap().unwrap().flags.is_up());
        nl.delete_link(BRIDGE).unwrap();
        assert_eq!(nl.link_by_name(BRIDGE).unwrap(), None);
        assert!(nl.links().unwrap().iter().all(|l| l.name != BRIDGE));
        assert!(nl.addresses(None).unwrap().iter().all(|a| a.index != index));
        assert_eq!(nl.link_by_name(&tap).unwrap().unwrap().master, None);
        drop(tap_fd);
        assert_eq!(nl.link_by_name(&tap).unwrap(), None);
    });
}

#[test]
fn persistent_tap_outlives_its_fd() {
    in_private_netns(|nl| {
        let options = TapOptions {
            vnet_hdr: true,
            persist: true,
        };
        let (name, fd) = create_tap_with("mvptap", options).unwrap();
        assert_eq!(name, "mvptap");
        drop(fd);
        assert!(nl.link_by_name(&name).unwrap().is_some());
        nl.delete_link(&name).unwrap();
        assert_eq!(nl.link_by_name(&name).unwrap(), None);
    });
}

#[test]
fn errors_name_the_operation_and_the_object() {
    in_private_netns(|nl| {
        nl.create_bridge(BRIDGE, &BridgeOptions::default()).unwrap();

        let err = nl.create_bridge(BRIDGE, &BridgeOptions::default()).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EEXIST));
        assert_eq!(err.to_string(), "cannot create bridge 'mvtest0': File exists");

        let err = nl.delete_link("mvnope0").unwrap_err();
        assert_eq!(err.errno(), Some(Errno::ENODEV));
        assert!(
            err.to_string()
                .starts_with("cannot delete interface 'mvnope0': No such device"),
            "{err}"
        );

        let err = nl.set_up("mvnope0", true).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::ENODEV));
        assert!(
            err.to_string()
                .starts_with("cannot bring interface 'mvnope0' up: No such device"),
            "{err}"
        );

        let err = nl.set_master(BRIDGE, Some("mvnope0")).unwrap_err();
        assert!(matches!(err, NetlinkError::NoSuchLink { .. }));
        assert_eq!(
            err.to_string(),
            "cannot attach 'mvtest0' to bridge 'mvnope0': there is no interface named 'mvnope0'"
        );

        let err = nl.add_address("mvnope0", ip("10.99.0.1"), 24).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::ENODEV));
        assert_eq!(
            err.to_string(),
            "cannot add address 10.99.0.1/24 to 'mvnope0': there is no interface named 'mvnope0'"
        );

        nl.add_address(BRIDGE, ip("10.99.0.1"), 24).unwrap();
        let err = nl.add_address(BRIDGE, ip("10.99.0.1"), 24).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EEXIST));
        // Recent kernels add "(ipv4: Address already assigned)".
        let text = err.to_string();
        assert!(
            text.starts_with("cannot add address 10.99.0.1/24 to 'mvtest0': File exists"),
            "{text}"
        );
        nl.delete_address(BRIDGE, ip("10.99.0.1"), 24).unwrap();
        let err = nl.delete_address(BRIDGE, ip("10.99.0.1"), 24).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EADDRNOTAVAIL));

        // Refused before anything is sent.
        let err = nl
            .create_bridge("bad name", &BridgeOptions::default())
            .unwrap_err();
        assert!(matches!(err, NetlinkError::InvalidArgument { .. }));
        assert_eq!(
            err.to_string(),
            "cannot create bridge 'bad name': interface name 'bad name' contains ' '"
        );
        let err = nl.add_address(BRIDGE, ip("fd00::1"), 129).unwrap_err();
        assert!(matches!(err, NetlinkError::InvalidArgument { .. }), "{err}");

        // The kernel's own refusal, with its extended-ack text when it gives one.
        let err = nl.set_mtu(BRIDGE, 1_000_000).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EINVAL), "{err}");
        assert!(
            err.to_string()
                .starts_with("cannot set the MTU of 'mvtest0' to 1000000: Invalid argument"),
            "{err}"
        );
        eprintln!("kernel refusal as reported: {err}");

        // The namespace still has just lo and the bridge.
        let names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["lo", BRIDGE]);
    });
}
