//! The interface XML of every kind, as libvirt writes it.

#![allow(clippy::unwrap_used)] // tests: a failure is the assertion

use super::*;

fn eth(name: &str, mac: &str, state: &str, speed: Option<u32>) -> IfaceDef {
    IfaceDef {
        name: name.into(),
        mac: Some(mac.into()),
        mtu: 1500,
        link: Link {
            state: Some(state.into()),
            speed,
        },
        kind: Kind::Ethernet,
    }
}

#[test]
fn ethernet_shows_mtu_link_and_mac() {
    assert_eq!(
        eth("eth0", "52:54:00:12:34:56", "up", Some(1000)).to_xml(),
        "<interface type='ethernet' name='eth0'>\n  <mtu size='1500'/>\n  <link speed='1000' state='up'/>\n  <mac address='52:54:00:12:34:56'/>\n</interface>\n"
    );
    let mut none = eth("x0", "", "down", None);
    none.mac = None;
    none.mtu = 0;
    none.link = Link::default();
    assert_eq!(
        none.to_xml(),
        "<interface type='ethernet' name='x0'>\n</interface>\n"
    );
}

#[test]
fn bridge_nests_members_without_mtu_and_shows_no_link_of_its_own() {
    let br = IfaceDef {
        name: "br0".into(),
        mac: Some("52:54:00:aa:bb:cc".into()),
        mtu: 1500,
        link: Link {
            state: Some("up".into()),
            speed: None,
        },
        kind: Kind::Bridge(Bridge {
            stp: true,
            delay: "1500".into(),
            members: vec![
                eth("eth1", "52:54:00:00:00:01", "up", Some(10000)),
                eth("eth2", "52:54:00:00:00:02", "lowerlayerdown", None),
            ],
        }),
    };
    assert_eq!(
        br.to_xml(),
        "<interface type='bridge' name='br0'>\n  <mtu size='1500'/>\n  <bridge stp='on' delay='1500'>\n    <interface type='ethernet' name='eth1'>\n      <link speed='10000' state='up'/>\n      <mac address='52:54:00:00:00:01'/>\n    </interface>\n    <interface type='ethernet' name='eth2'>\n      <link state='lowerlayerdown'/>\n      <mac address='52:54:00:00:00:02'/>\n    </interface>\n  </bridge>\n</interface>\n"
    );
}

#[test]
fn bond_with_mii_or_arp_monitoring_and_vlan() {
    let mut bond = Bond {
        mode: 2,
        miimon: 100,
        downdelay: 200,
        updelay: 0,
        carrier: 2,
        arp_interval: 0,
        arp_target: String::new(),
        validate: 0,
        slaves: vec![eth("eth1", "52:54:00:00:00:01", "up", Some(1000))],
    };
    let def = |b: &Bond| IfaceDef {
        name: "bond0".into(),
        mac: Some("52:54:00:00:00:01".into()),
        mtu: 9000,
        link: Link {
            state: Some("up".into()),
            speed: Some(1000),
        },
        kind: Kind::Bond(b.clone()),
    };
    assert_eq!(
        def(&bond).to_xml(),
        "<interface type='bond' name='bond0'>\n  <mtu size='9000'/>\n  <link speed='1000' state='up'/>\n  <bond mode='active-backup'>\n    <miimon freq='100' downdelay='200' carrier='netif'/>\n    <interface type='ethernet' name='eth1'>\n      <link speed='1000' state='up'/>\n      <mac address='52:54:00:00:00:01'/>\n    </interface>\n  </bond>\n</interface>\n"
    );
    bond.mode = 5;
    bond.arp_interval = 250;
    bond.arp_target = "10.0.0.1".into();
    bond.validate = 3;
    bond.slaves.clear();
    let xml = def(&bond).to_xml();
    assert!(
        xml.contains("  <bond mode='802.3ad'>\n    <arpmon interval='250' target='10.0.0.1' validate='all'/>\n  </bond>\n"),
        "{xml}"
    );
    let vlan = IfaceDef {
        name: "eth0.10".into(),
        mac: Some("52:54:00:12:34:56".into()),
        mtu: 1500,
        link: Link {
            state: Some("up".into()),
            speed: None,
        },
        kind: Kind::Vlan(Vlan {
            tag: "10".into(),
            device: "eth0".into(),
        }),
    };
    assert_eq!(
        vlan.to_xml(),
        "<interface type='vlan' name='eth0.10'>\n  <mtu size='1500'/>\n  <link state='up'/>\n  <vlan tag='10'>\n    <interface name='eth0'/>\n  </vlan>\n</interface>\n"
    );
}

#[test]
fn proc_net_vlan_is_read_as_libvirt_reads_it() {
    let text = "eth0.10  VID: 10\t REORDER_HDR: 1  dev->priv_flags: 1001\n         total frames received            0\n\nDevice: eth0\nINGRESS priority mappings: 0:0  1:0\n";
    assert_eq!(
        parse_proc_vlan(text),
        Some(Vlan {
            tag: "10".into(),
            device: "eth0".into()
        })
    );
    assert_eq!(parse_proc_vlan("eth0.10  VID: x\nDevice: eth0\n"), None);
    assert_eq!(parse_proc_vlan("eth0.10  VID: 10\n"), None);
}
