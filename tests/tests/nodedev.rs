//! virtnodedevd end to end: the real virsh against a made-up sysfs tree
//! (`MODVIRT_SYSFS`, with a udev database and a `pci.ids` of its own) with
//! exact output; calls that arrive during the first enumeration wait on
//! it where `virt-daemons` can see them; the real `/sys`, structurally;
//! and through virtqemud, which starts virtnodedevd as its peer.

mod fake_sysfs;

use modvirt_tests::events::driver_uri;
use modvirt_tests::raw::RawClient;
use modvirt_tests::{
    ChildGuard, Daemon, DaemonOptions, PidGuard, daemon_pid, err_stderr, ok_stdout, require_tool, temp_root,
    virsh_at, virt_daemons, wait_for,
};
use modvirt_wire::nodedev::{
    NodeDeviceListCapsArgs, NodeDeviceListCapsRet, NodeDeviceNameArgs, NodeListDevicesArgs,
    NodeListDevicesRet, NodeNumOfDevicesArgs, NodeNumRet,
};
use modvirt_wire::remote::ConnectOpenArgs;
use modvirt_wire::{XdrDecode, XdrEncode};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The host the tests below describe.
fn fake_host(root: &Path) -> Vec<(String, String)> {
    let f = fake_sysfs::at(root);
    let sata = "pci0000:00/0000:00:1f.2";
    f.device(
        sata,
        "pci",
        true,
        "DRIVER=ahci\nPCI_CLASS=10601\n",
        &[("vendor", "0x8086"), ("device", "0x2922"), ("numa_node", "-1")],
    );
    f.driver(sata, "pci", "ahci");
    f.device(
        &format!("{sata}/ata1/host0"),
        "scsi",
        true,
        "DEVTYPE=scsi_host\n",
        &[],
    );
    f.write("class/scsi_host/host0/unique_id", b"1\n");
    let nic = "pci0000:00/0000:00:19.0";
    fake_sysfs::pci_nic(&f, nic, "eth0", 2, "52:54:00:12:34:56");
    f.driver(nic, "pci", "e1000e");
    f.write(&format!("devices/{nic}/net/eth0/speed"), b"1000\n");
    f.device(
        "virtual/net/lo",
        "net",
        false,
        "INTERFACE=lo\nIFINDEX=1\n",
        &[
            ("address", "00:00:00:00:00:00"),
            ("addr_len", "6"),
            ("operstate", "unknown"),
        ],
    );
    f.device(
        "virtual/net/virbr0",
        "net",
        false,
        "DEVTYPE=bridge\nINTERFACE=virbr0\nIFINDEX=3\n",
        &[("address", "52:54:00:aa:bb:cc"), ("operstate", "down")],
    );
    let ehci = "pci0000:00/0000:00:1d.0";
    f.device(
        ehci,
        "pci",
        true,
        "PCI_CLASS=C0320\n",
        &[("vendor", "0x8086"), ("device", "0x293a")],
    );
    f.device(
        &format!("{ehci}/usb1"),
        "usb",
        true,
        "DEVTYPE=usb_device\nBUSNUM=001\nDEVNUM=001\nDEVNAME=bus/usb/001/001\nMAJOR=189\nMINOR=0\n",
        &[
            ("idVendor", "1d6b"),
            ("idProduct", "0002"),
            ("manufacturer", "Linux ehci_hcd"),
            ("product", "EHCI Host Controller"),
        ],
    );
    f.device(
        &format!("{ehci}/usb1/1-1"),
        "usb",
        true,
        "DEVTYPE=usb_device\nBUSNUM=001\nDEVNUM=002\nDEVNAME=bus/usb/001/002\nMAJOR=189\nMINOR=1\n",
        &[
            ("idVendor", "046d"),
            ("idProduct", "c52b"),
            ("manufacturer", "Logitech"),
        ],
    );
    let udev = root.join("udev");
    std::fs::create_dir_all(&udev).expect("mkdir");
    std::fs::write(
        udev.join("c189:1"),
        "E:ID_VENDOR_FROM_DATABASE=Logitech, Inc.\nE:ID_MODEL_FROM_DATABASE=Unifying Receiver\n",
    )
    .expect("udev db");
    f.device(
        &format!("{ehci}/usb1/1-1/1-1:1.0"),
        "usb",
        true,
        "DEVTYPE=usb_interface\nINTERFACE=3/1/2\n",
        &[
            ("bInterfaceNumber", "00"),
            ("bInterfaceClass", "03"),
            ("bInterfaceSubClass", "01"),
            ("bInterfaceProtocol", "02"),
        ],
    );
    let virtio = "pci0000:00/0000:00:05.0";
    f.device(
        virtio,
        "pci",
        true,
        "DRIVER=virtio-pci\nPCI_CLASS=10000\n",
        &[("vendor", "0x1af4"), ("device", "0x1001")],
    );
    f.device(
        &format!("{virtio}/virtio1"),
        "virtio",
        true,
        "DRIVER=virtio_blk\n",
        &[],
    );
    f.device(
        &format!("{virtio}/virtio1/block/vda"),
        "block",
        false,
        "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n",
        &[
            ("size", "41943040"),
            ("queue/logical_block_size", "512"),
            ("removable", "0"),
        ],
    );
    std::fs::write(
        root.join("pci.ids"),
        "8086  Intel Corporation\n\t10d3  82574L Gigabit Network Connection\n\t2922  82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]\n1af4  Red Hat, Inc.\n",
    )
    .expect("pci.ids");
    vec![
        ("MODVIRT_SYSFS".into(), root.join("sys").display().to_string()),
        ("MODVIRT_UDEV_DATA".into(), udev.display().to_string()),
        (
            "MODVIRT_PCI_IDS".into(),
            root.join("pci.ids").display().to_string(),
        ),
    ]
}

fn nodedev_uri(d: &Daemon, ro: bool) -> String {
    driver_uri(d, "nodedev", ro)
}

/// virtnodedevd on a fresh root holding a fake host.
fn on_fake_host(extra_env: &[(&str, &str)]) -> Daemon {
    let root = temp_root("modvirt-e2e-");
    let mut env = fake_host(root.path());
    env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Daemon::start_in(
        "virtnodedevd",
        root,
        DaemonOptions {
            env,
            ..Default::default()
        },
    )
}

const ALL: &str = "block_vda\ncomputer\nnet_eth0_52_54_00_12_34_56\nnet_lo_00_00_00_00_00_00\npci_0000_00_05_0\npci_0000_00_19_0\npci_0000_00_1d_0\npci_0000_00_1f_2\nscsi_host0\nusb_1_1\nusb_1_1_1_0\nusb_usb1\n\n";

#[test]
fn virsh_lists_and_describes_the_devices_of_a_fake_sysfs() {
    let d = on_fake_host(&[]);
    let uri = nodedev_uri(&d, false);
    let virsh = |args: &[&str]| virsh_at(&uri, args);
    let sys = std::fs::canonicalize(d.root.path().join("sys")).expect("sys");

    assert_eq!(ok_stdout(&virsh(&["nodedev-list"])), ALL);
    assert_eq!(ok_stdout(&virsh(&["nodedev-list", "--all"])), ALL);
    assert_eq!(ok_stdout(&virsh(&["nodedev-list", "--inactive"])), "\n");
    assert_eq!(
        ok_stdout(&virsh(&["nodedev-list", "--cap", "pci"])),
        "pci_0000_00_05_0\npci_0000_00_19_0\npci_0000_00_1d_0\npci_0000_00_1f_2\n\n"
    );
    assert_eq!(
        ok_stdout(&virsh(&["nodedev-list", "--cap", "usb_device,usb,storage"])),
        "block_vda\nusb_1_1\nusb_1_1_1_0\nusb_usb1\n\n"
    );
    assert_eq!(
        ok_stdout(&virsh(&["nodedev-list", "--cap", "net,system"])),
        "computer\nnet_eth0_52_54_00_12_34_56\nnet_lo_00_00_00_00_00_00\n\n"
    );
    assert_eq!(
        ok_stdout(&virsh(&["nodedev-list", "--tree"])),
        "computer\n  |\n  +- net_lo_00_00_00_00_00_00\n  +- pci_0000_00_05_0\n  |   |\n  |   +- block_vda\n  |     \n  +- pci_0000_00_19_0\n  |   |\n  |   +- net_eth0_52_54_00_12_34_56\n  |     \n  +- pci_0000_00_1d_0\n  |   |\n  |   +- usb_usb1\n  |       |\n  |       +- usb_1_1\n  |           |\n  |           +- usb_1_1_1_0\n  |             \n  +- pci_0000_00_1f_2\n      |\n      +- scsi_host0\n        \n\n"
    );

    assert_eq!(
        ok_stdout(&virsh(&["nodedev-dumpxml", "pci_0000_00_1f_2"])),
        format!(
            "<device>\n  <name>pci_0000_00_1f_2</name>\n  <path>{}/devices/pci0000:00/0000:00:1f.2</path>\n  <parent>computer</parent>\n  <driver>\n    <name>ahci</name>\n  </driver>\n  <capability type='pci'>\n    <class>0x010601</class>\n    <domain>0</domain>\n    <bus>0</bus>\n    <slot>31</slot>\n    <function>2</function>\n    <product id='0x2922'>82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]</product>\n    <vendor id='0x8086'>Intel Corporation</vendor>\n  </capability>\n</device>\n\n",
            sys.display()
        )
    );
    assert_eq!(
        ok_stdout(&virsh(&["nodedev-dumpxml", "net_eth0_52_54_00_12_34_56"])),
        format!(
            "<device>\n  <name>net_eth0_52_54_00_12_34_56</name>\n  <path>{}/devices/pci0000:00/0000:00:19.0/net/eth0</path>\n  <parent>pci_0000_00_19_0</parent>\n  <capability type='net'>\n    <interface>eth0</interface>\n    <address>52:54:00:12:34:56</address>\n    <link speed='1000' state='up'/>\n    <capability type='80203'/>\n  </capability>\n</device>\n\n",
            sys.display()
        )
    );
    assert_eq!(
        ok_stdout(&virsh(&["nodedev-dumpxml", "block_vda"])),
        format!(
            "<device>\n  <name>block_vda</name>\n  <path>{}/devices/pci0000:00/0000:00:05.0/virtio1/block/vda</path>\n  <devnode type='dev'>/dev/vda</devnode>\n  <parent>pci_0000_00_05_0</parent>\n  <capability type='storage'>\n    <block>/dev/vda</block>\n    <drive_type>disk</drive_type>\n    <size>21474836480</size>\n    <logical_block_size>512</logical_block_size>\n    <num_blocks>41943040</num_blocks>\n  </capability>\n</device>\n\n",
            sys.display()
        )
    );
    let usb = ok_stdout(&virsh(&["nodedev-dumpxml", "usb_1_1"]));
    assert!(
        usb.contains("  <devnode type='dev'>/dev/bus/usb/001/002</devnode>\n  <parent>usb_usb1</parent>\n  <capability type='usb_device'>\n    <bus>1</bus>\n    <device>2</device>\n    <product id='0xc52b'>Unifying Receiver</product>\n    <vendor id='0x046d'>Logitech, Inc.</vendor>\n"),
        "{usb}"
    );
    assert_eq!(
        ok_stdout(&virsh(&["nodedev-dumpxml", "computer"])),
        "<device>\n  <name>computer</name>\n  <capability type='system'>\n    <hardware>\n      <uuid>00000000-0000-0000-0000-000000000000</uuid>\n    </hardware>\n    <firmware>\n    </firmware>\n  </capability>\n</device>\n\n"
    );

    assert_eq!(
        ok_stdout(&virsh(&["nodedev-info", "usb_1_1_1_0"])),
        "Name:           usb_1_1_1_0\nParent:         usb_1_1\nActive:         yes\nPersistent:     no\nAutostart:      no\n\n"
    );
    assert_eq!(
        ok_stdout(&virsh(&["nodedev-info", "computer"])),
        "Name:           computer\nParent:         \nActive:         yes\nPersistent:     yes\nAutostart:      yes\n\n"
    );
    let e = err_stderr(&virsh(&["nodedev-dumpxml", "pci_0000_00_02_0"]));
    assert!(
        e.contains("error: Node device not found: no node device with matching name 'pci_0000_00_02_0'"),
        "{e}"
    );

    // Devices are read again when listed: a new one shows, a gone one goes.
    let f = fake_sysfs::at(d.root.path());
    f.device(
        "virtual/net/dummy0",
        "net",
        false,
        "INTERFACE=dummy0\nIFINDEX=4\n",
        &[("address", "aa:bb:cc:dd:ee:ff"), ("operstate", "down")],
    );
    std::fs::remove_file(d.root.path().join("sys/class/net/lo")).expect("rm");
    assert_eq!(
        ok_stdout(&virsh(&["nodedev-list", "--cap", "net"])),
        "net_dummy0_aa_bb_cc_dd_ee_ff\nnet_eth0_52_54_00_12_34_56\n\n"
    );
    // The link state is read when asked for.
    f.write("devices/pci0000:00/0000:00:19.0/net/eth0/operstate", b"down\n");
    let eth = ok_stdout(&virsh(&["nodedev-dumpxml", "net_eth0_52_54_00_12_34_56"]));
    assert!(eth.contains("    <link state='down'/>\n"), "{eth}");

    // Read-only connections see everything; changes are refused.
    let ro = nodedev_uri(&d, true);
    assert!(ok_stdout(&virsh_at(&ro, &["nodedev-list", "--cap", "scsi_host"])).starts_with("scsi_host0\n"));
    let e = err_stderr(&virsh_at(&ro, &["nodedev-destroy", "usb_1_1"]));
    assert!(
        e.contains("read only access prevents virNodeDeviceDestroy"),
        "{e}"
    );
    let e = err_stderr(&virsh(&["nodedev-detach", "pci_0000_00_19_0"]));
    assert!(
        e.contains("this function is not supported by the connection driver"),
        "{e}"
    );
}

fn status(root: &Path) -> Value {
    serde_json::from_str(&virt_daemons(root, &["status", "--json"])).expect("status --json")
}

fn entry<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["daemons"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == name))
        .unwrap_or_else(|| panic!("{name} missing from {st:#}"))
}

#[test]
fn a_call_during_the_first_enumeration_waits_on_it_visibly() {
    let d = on_fake_host(&[("MODVIRT_NODEDEV_ENUM_DELAY_MS", "4000")]);
    let out = d.root.path().join("virsh.out");
    let mut virsh = ChildGuard::spawn(
        Command::new(require_tool("virsh"))
            .arg("-c")
            .arg(nodedev_uri(&d, false))
            .arg("nodedev-list")
            .env_remove("LIBVIRT_DEFAULT_URI")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out"))
            .stderr(Stdio::null()),
    );
    let mut st = Value::Null;
    let waiting = wait_for(Duration::from_secs(3), || {
        st = status(d.root.path());
        entry(&st, "virtnodedevd")["inflight"]
            .as_array()
            .is_some_and(|calls| {
                calls.iter().any(|c| {
                    c["procedure"] == "CONNECT_LIST_ALL_NODE_DEVICES"
                        && c["waiting_on"]["kind"] == "other"
                        && c["waiting_on"]["description"] == "enumeration"
                })
            })
    });
    assert!(waiting, "{st:#}");
    let inhibitors = entry(&st, "virtnodedevd")["idle"]["inhibitors"].to_string();
    assert!(inhibitors.contains("enumeration"), "{inhibitors}");
    assert_hangs_on_enumeration(d.root.path(), &virsh, "virtnodedevd");
    finishes_after_enumeration(&mut virsh);
    assert_eq!(std::fs::read_to_string(&out).expect("out"), ALL);
    let boot = virt_daemons(d.root.path(), &["boot"]);
    let step = boot.lines().find(|l| l.contains("enumerate")).unwrap_or("");
    assert!(step.contains("12 devices"), "{boot}");
    let st = status(d.root.path());
    let driver = &entry(&st, "virtnodedevd")["phases"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "driver").cloned())
        .expect("driver phase");
    assert_eq!(driver["children"][0]["name"], "enumerate", "{driver:#}");
    assert_eq!(driver["children"][0]["detail"], "12 devices", "{driver:#}");
    assert!(
        driver["children"][0]["duration_ms"]
            .as_f64()
            .is_some_and(|ms| ms >= 4000.0),
        "{driver:#}"
    );
}

#[test]
fn the_real_sysfs_has_a_computer_at_the_root_of_every_device() {
    let d = Daemon::start("virtnodedevd", DaemonOptions::default());
    let uri = nodedev_uri(&d, true);
    let names: Vec<String> = ok_stdout(&virsh_at(&uri, &["nodedev-list"]))
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(names.contains(&"computer".to_owned()), "{names:?}");
    // `--tree` prints only what hangs below a device without a parent: all
    // of them there, under `computer` alone, means every parent exists.
    let tree = ok_stdout(&virsh_at(&uri, &["nodedev-list", "--tree"]));
    assert_eq!(tree.lines().next(), Some("computer"), "{tree}");
    let mut in_tree: Vec<String> = tree
        .lines()
        .filter_map(|l| {
            let name = l.trim_start_matches([' ', '|']).trim_start_matches("+- ").trim();
            (!name.is_empty() && name != "|").then(|| name.to_owned())
        })
        .collect();
    in_tree.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(in_tree, sorted, "{tree}");
    let xml = ok_stdout(&virsh_at(&uri, &["nodedev-dumpxml", "computer"]));
    assert!(
        xml.starts_with("<device>\n  <name>computer</name>\n  <capability type='system'>\n"),
        "{xml}"
    );
}

/// virtqemud on a fresh root holding a fake host (which the virtnodedevd it
/// starts inherits), with `extra_env`.
fn virtqemud_on_fake_host(extra_env: &[(&str, &str)]) -> Daemon {
    let root = temp_root("modvirt-e2e-");
    let mut env = fake_host(root.path());
    env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Daemon::start_in(
        "virtqemud",
        root,
        DaemonOptions {
            env,
            ..Default::default()
        },
    )
}

#[test]
fn nodedev_list_through_virtqemud_starts_virtnodedevd_as_its_peer() {
    let qemu = virtqemud_on_fake_host(&[]);
    let root = qemu.root.path().to_owned();
    assert_eq!(ok_stdout(&qemu.virsh(&["nodedev-list"])), ALL);
    let pid_file = root.join("run/virtnodedevd.pid");
    let mut pid = 0;
    assert!(wait_for(Duration::from_secs(5), || {
        pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    }));
    let _guard = PidGuard(pid);
    let st = status(&root);
    let e = entry(&st, "virtnodedevd");
    assert_eq!(e["activation"]["cause"], "peer", "{e:#}");
    assert_eq!(e["activation"]["peer"]["daemon"], "virtqemud", "{e:#}");
    assert_eq!(
        e["activation"]["peer"]["procedure"], "CONNECT_LIST_ALL_NODE_DEVICES",
        "{e:#}"
    );
    assert_eq!(
        ok_stdout(&qemu.virsh(&["nodedev-info", "scsi_host0"])),
        "Name:           scsi_host0\nParent:         pci_0000_00_1f_2\nActive:         yes\nPersistent:     no\nAutostart:      no\n\n"
    );
    let e = err_stderr(&qemu.virsh(&["nodedev-dumpxml", "nosuch"]));
    assert!(
        e.contains("Node device not found: no node device with matching name 'nosuch'"),
        "{e}"
    );
}

#[test]
fn the_old_list_calls_filter_by_capability_name() {
    let d = on_fake_host(&[]);
    let mut c = RawClient::connect(&d.socket("sock-ro"));
    c.auth_list();
    let open = ConnectOpenArgs {
        name: Some("nodedev:///system".into()),
        flags: 1,
    };
    c.rpc_ok(1, &open.to_xdr());
    let num = |c: &mut RawClient, cap: Option<&str>| {
        let a = NodeNumOfDevicesArgs {
            cap: cap.map(str::to_owned),
            flags: 0,
        };
        NodeNumRet::from_xdr(&c.rpc_ok(111, &a.to_xdr()))
            .expect("num")
            .num
    };
    let list = |c: &mut RawClient, cap: Option<&str>, max: i32| {
        let a = NodeListDevicesArgs {
            cap: cap.map(str::to_owned),
            maxnames: max,
            flags: 0,
        };
        NodeListDevicesRet::from_xdr(&c.rpc_ok(112, &a.to_xdr()))
            .expect("list")
            .names
    };
    assert_eq!(num(&mut c, None), 12);
    assert_eq!(num(&mut c, Some("usb_device")), 2);
    assert_eq!(num(&mut c, Some("fc_host")), 0, "a capability nothing has");
    assert_eq!(num(&mut c, Some("nonsense")), 0);
    assert_eq!(
        list(&mut c, Some("net"), 10),
        ["net_eth0_52_54_00_12_34_56", "net_lo_00_00_00_00_00_00"]
    );
    assert_eq!(list(&mut c, None, 2), ["block_vda", "computer"]);
    let caps = |c: &mut RawClient, name: &str| {
        let n = NodeNumRet::from_xdr(&c.rpc_ok(116, &NodeDeviceNameArgs { name: name.into() }.to_xdr()))
            .expect("num caps")
            .num;
        let a = NodeDeviceListCapsArgs {
            name: name.into(),
            maxnames: 8,
        };
        let names = NodeDeviceListCapsRet::from_xdr(&c.rpc_ok(117, &a.to_xdr()))
            .expect("caps")
            .names;
        (n, names)
    };
    assert_eq!(caps(&mut c, "usb_1_1_1_0"), (1, vec!["usb".to_owned()]));
    assert_eq!(caps(&mut c, "computer"), (1, vec!["system".to_owned()]));
    let a = NodeNumOfDevicesArgs { cap: None, flags: 1 };
    let e = c.rpc_err(111, &a.to_xdr());
    assert_eq!(
        e.text(),
        "invalid argument: unsupported flags (0x1) in function virNodeNumOfDevices"
    );
    let e = c.rpc_err(
        116,
        &NodeDeviceNameArgs {
            name: "nosuch".into(),
        }
        .to_xdr(),
    );
    assert_eq!((e.code.0, e.domain.0), (53, 22));
    assert_eq!(
        e.text(),
        "Node device not found: no node device with matching name 'nosuch'"
    );
}

/// A call forwarded by virtqemud shows in the owner as made for the client
/// (`virsh via virtqemud`, with the client's pid from `CONNECT_SET_IDENTITY`)
/// and linked to virtqemud's call, which waits on it: one chain in `hangs`.
#[test]
fn a_forwarded_call_shows_in_the_owner_as_the_clients_via_virtqemud() {
    let qemu = virtqemud_on_fake_host(&[("MODVIRT_NODEDEV_ENUM_DELAY_MS", "4000")]);
    let root = qemu.root.path().to_owned();
    let mut virsh = qemu.spawn_virsh(&["nodedev-list"]);
    let mut st = Value::Null;
    let mut forwarded = Value::Null;
    let seen = wait_for(Duration::from_secs(4), || {
        st = status(&root);
        let Some(daemons) = st["daemons"].as_array() else {
            return false;
        };
        let Some(owner) = daemons.iter().find(|d| d["name"] == "virtnodedevd") else {
            return false;
        };
        forwarded = inflight_call(owner, "CONNECT_LIST_ALL_NODE_DEVICES").unwrap_or(Value::Null);
        !forwarded.is_null()
    });
    assert!(seen, "{st:#}");
    let _owner = PidGuard(daemon_pid(&root, "virtnodedevd"));
    assert_eq!(
        forwarded["client"]["comm"], "virsh via virtqemud",
        "{forwarded:#}"
    );
    assert_eq!(forwarded["client"]["pid"], virsh.pid(), "{forwarded:#}");
    assert_eq!(forwarded["caller"]["daemon"], "virtqemud", "{forwarded:#}");
    let front = inflight_call(entry(&st, "virtqemud"), "CONNECT_LIST_ALL_NODE_DEVICES")
        .expect("virtqemud's call is in flight too");
    assert_eq!(
        forwarded["caller"]["call"], front["id"],
        "{forwarded:#}\n{front:#}"
    );
    assert_eq!(front["waiting_on"]["kind"], "peer", "{front:#}");
    assert_eq!(front["waiting_on"]["daemon"], "virtnodedevd", "{front:#}");
    assert_hangs_on_enumeration(&root, &virsh, "virtqemud");
    finishes_after_enumeration(&mut virsh);
}

/// The call to `procedure` among `daemon`'s calls in flight (an entry of
/// `virt-daemons status --json`), if any.
fn inflight_call(daemon: &Value, procedure: &str) -> Option<Value> {
    daemon["inflight"]
        .as_array()?
        .iter()
        .find(|c| c["procedure"] == procedure)
        .cloned()
}

/// `virt-daemons hangs` shows `virsh`'s call to `front` as one chain
/// ending in virtnodedevd's wait on its enumeration.
fn assert_hangs_on_enumeration(root: &Path, virsh: &ChildGuard, front: &str) {
    let hangs = virt_daemons(root, &["hangs", "--older-than", "0"]);
    assert!(
        hangs.contains(&format!(
            "virsh(pid {}) → {front} CONNECT_LIST_ALL_NODE_DEVICES #",
            virsh.pid()
        )) && hangs.contains(" waiting on enumeration"),
        "{hangs}"
    );
}

fn finishes_after_enumeration(virsh: &mut ChildGuard) {
    let done = virsh
        .wait_exit(Duration::from_secs(10))
        .expect("virsh finishes after the enumeration");
    assert!(done.success());
}
