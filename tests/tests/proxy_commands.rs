//! Every virsh command of the secondary daemons through virtproxyd, driver
//! by driver. Each test starts virtproxyd alone on a fresh root and runs
//! one table of virsh commands three times: on the proxy's `libvirt-sock`
//! with the driver's own URI (`network:///system?socket=…`), on the same
//! socket with `qemu:///system` (the driver's calls routed by the
//! procedure table), and directly on the owning daemon's socket. The first
//! run starts the daemon on demand (activation cause `peer virtproxyd`);
//! every run must print exactly what the others print, and what the table
//! says where the output is deterministic. Each run leaves the root as it
//! found it (what it defines, it undefines), so the three see the same
//! state. Everything the proxy started is killed by pid at the end.

use modvirt_tests::{
    Daemon, DaemonOptions, PidGuard, require_tool, temp_root, virsh_at, virt_daemons, wait_for,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How a run reaches the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The driver's own URI on virtproxyd's `libvirt-sock`.
    ProxyOwnUri,
    /// `qemu:///system` on virtproxyd's `libvirt-sock`.
    ProxyQemuUri,
    /// The driver's own URI on the owning daemon's socket.
    Direct,
}

/// The driver under test.
struct Driver {
    daemon: &'static str,
    scheme: &'static str,
}

impl Driver {
    fn uri(&self, root: &Path, via: Via) -> String {
        let (scheme, sock) = match via {
            Via::ProxyOwnUri => (self.scheme, "libvirt-sock".to_owned()),
            Via::ProxyQemuUri => ("qemu", "libvirt-sock".to_owned()),
            Via::Direct => (self.scheme, format!("{}-sock", self.daemon)),
        };
        let sock = root.join("run/libvirt").join(sock);
        format!("{scheme}:///system?socket={}", sock.display())
    }
}

/// What a step must print.
enum Want {
    /// Succeeds printing exactly this (after masking).
    Prints(String),
    /// Succeeds, its stdout containing each of these.
    Shows(Vec<String>),
    /// Fails, its stderr containing this.
    Fails(String),
}

/// One virsh command of a table.
struct Step {
    args: Vec<String>,
    want: Want,
    /// Line starts (after indentation) whose rest depends on the moment
    /// (file system sizes, timestamps): masked before comparing.
    volatile: Vec<&'static str>,
    /// Its stdout (trimmed) is a value the daemon generated: shown as
    /// `{generated}` in every output of the run.
    generated: bool,
    /// Checked after the step in every run.
    then: Option<Box<dyn Fn()>>,
}

fn step(args: &[&str], want: Want) -> Step {
    Step {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        want,
        volatile: Vec::new(),
        generated: false,
        then: None,
    }
}

fn prints(s: impl Into<String>) -> Want {
    Want::Prints(s.into())
}

fn shows(parts: &[&str]) -> Want {
    Want::Shows(parts.iter().map(|p| (*p).to_owned()).collect())
}

fn fails(s: impl Into<String>) -> Want {
    Want::Fails(s.into())
}

impl Step {
    fn volatile(mut self, starts: &[&'static str]) -> Step {
        self.volatile = starts.to_vec();
        self
    }

    fn generated(mut self) -> Step {
        self.generated = true;
        self
    }

    fn then(mut self, f: impl Fn() + 'static) -> Step {
        self.then = Some(Box::new(f));
        self
    }
}

/// What a step printed, masked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
}

const GENERATED: &str = "{generated}";

/// `text` with the rest of each line starting (after indentation) with
/// one of `volatile` replaced by `(varies)`.
fn mask(text: &str, volatile: &[&str]) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let body = line.trim_start();
            match volatile.iter().find(|v| body.starts_with(**v)) {
                Some(v) => {
                    let indent = &line[..line.len() - body.len()];
                    let nl = if line.ends_with('\n') { "\n" } else { "" };
                    format!("{indent}{v}(varies){nl}")
                }
                None => line.to_owned(),
            }
        })
        .collect()
}

/// Runs the table on `uri`, checks each step's expectation, and returns
/// what each printed (masked, generated values replaced).
fn run_table(uri: &str, via: Via, steps: &[Step]) -> Vec<Outcome> {
    let mut outs: Vec<Outcome> = Vec::new();
    let mut generated: Vec<String> = Vec::new();
    for s in steps {
        let args: Vec<&str> = s.args.iter().map(String::as_str).collect();
        let out = virsh_at(uri, &args);
        let o = Outcome {
            success: out.status.success(),
            stdout: mask(&String::from_utf8_lossy(&out.stdout), &s.volatile),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if s.generated {
            let value = o.stdout.trim().to_owned();
            assert!(
                value.len() == 36 && value.matches('-').count() == 4,
                "{via:?}: virsh {args:?} printed no UUID: {value:?}"
            );
            generated.push(value);
        }
        if let Some(f) = &s.then {
            f();
        }
        outs.push(o);
    }
    let mut problems = Vec::new();
    for (s, o) in steps.iter().zip(outs.iter_mut()) {
        for g in &generated {
            o.stdout = o.stdout.replace(g.as_str(), GENERATED);
            o.stderr = o.stderr.replace(g.as_str(), GENERATED);
        }
        if let Some(p) = unmet(&s.want, o) {
            problems.push(format!("virsh {}: {p}", s.args.join(" ")));
        }
    }
    assert!(
        problems.is_empty(),
        "{via:?} (virsh -c {uri}):\n{}",
        problems.join("\n")
    );
    outs
}

/// How `o` misses `want`, if it does.
fn unmet(want: &Want, o: &Outcome) -> Option<String> {
    match want {
        Want::Prints(_) | Want::Shows(_) if !o.success => Some(format!("failed: {}", o.stderr)),
        Want::Prints(w) => (&o.stdout != w).then(|| format!("printed {:?}, not {w:?}", o.stdout)),
        Want::Shows(parts) => parts
            .iter()
            .find(|p| !o.stdout.contains(p.as_str()))
            .map(|p| format!("{p:?} not in {:?}", o.stdout)),
        Want::Fails(_) if o.success => Some(format!("succeeded: {:?}", o.stdout)),
        Want::Fails(m) => (!o.stderr.contains(m.as_str())).then(|| format!("{m:?} not in {:?}", o.stderr)),
    }
}

/// Waits for `ROOT/run/<d>.pid`: the daemon runs.
fn wait_pid_file(root: &Path, daemon: &str) {
    let file = root.join(format!("run/{daemon}.pid"));
    let found = wait_for(Duration::from_secs(5), || file.exists());
    assert!(found, "{daemon} wrote no pid file");
}

/// `activation` of `daemon` in `virt-daemons status --json`.
fn activation(root: &Path, daemon: &str) -> Value {
    let st: Value = serde_json::from_str(&virt_daemons(root, &["status", "--json"])).expect("status --json");
    st["daemons"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == daemon))
        .map(|d| d["activation"].clone())
        .unwrap_or_else(|| panic!("no {daemon} in {st:#}"))
}

/// Kills, when dropped (also when a test fails), the daemons whose pid
/// files are under `ROOT/run`: what the proxy started.
struct Spawned {
    root: PathBuf,
    daemons: Vec<&'static str>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _guards: Vec<PidGuard> = self
            .daemons
            .iter()
            .filter_map(|d| std::fs::read_to_string(self.root.join(format!("run/{d}.pid"))).ok())
            .filter_map(|s| s.trim().parse().ok())
            .map(PidGuard)
            .collect();
    }
}

/// Runs `steps` through the proxy (`first`, then the other proxy URI) and
/// directly, asserting that `driver.daemon` was started by virtproxyd for
/// `spawned_for` (as was virtqemud, for the qemu connection) and that the
/// three runs print the same. Returns the guard of what the proxy started.
fn through_proxy(proxy: &Daemon, driver: &Driver, first: Via, spawned_for: &str, steps: &[Step]) -> Spawned {
    let root = proxy.root.path();
    let spawned = Spawned {
        root: root.to_owned(),
        daemons: vec![driver.daemon, "virtqemud"],
    };
    assert!(
        !root.join(format!("run/{}.pid", driver.daemon)).exists(),
        "{} runs before the first call",
        driver.daemon
    );
    let reference = run_table(&driver.uri(root, first), first, steps);
    wait_pid_file(root, driver.daemon);
    let a = activation(root, driver.daemon);
    assert_eq!(a["cause"], "peer", "{a:#}");
    assert_eq!(a["peer"]["daemon"], "virtproxyd", "{a:#}");
    assert_eq!(a["peer"]["procedure"], spawned_for, "{a:#}");

    let second = if first == Via::ProxyOwnUri {
        Via::ProxyQemuUri
    } else {
        Via::ProxyOwnUri
    };
    for via in [second, Via::Direct] {
        let outs = run_table(&driver.uri(root, via), via, steps);
        for ((s, r), o) in steps.iter().zip(&reference).zip(&outs) {
            assert_eq!(
                o,
                r,
                "virsh {} prints differently with {via:?} than with {first:?}",
                s.args.join(" ")
            );
        }
    }
    wait_pid_file(root, "virtqemud");
    let q = activation(root, "virtqemud");
    assert_eq!(
        (q["cause"].as_str(), q["peer"]["daemon"].as_str()),
        (Some("peer"), Some("virtproxyd")),
        "{q:#}"
    );
    spawned
}

fn write(root: &Path, name: &str, text: &str) -> String {
    let path = root.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

fn netns_proxy() -> Daemon {
    Daemon::start(
        "virtproxyd",
        DaemonOptions {
            netns: true,
            ..Default::default()
        },
    )
}

/// `ip ARGS…` in the network namespace of `pid` (stdout and stderr).
fn ip(pid: i32, args: &str) -> String {
    let out = Command::new(require_tool("nsenter"))
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg(require_tool("ip"))
        .args(args.split_whitespace())
        .output()
        .expect("run nsenter ip");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

const NET_UUID: &str = "6f1e3c9a-2b4d-4e8f-9a1b-0c2d3e4f5a6b";

#[test]
fn network_commands_through_virtproxyd() {
    let proxy = netns_proxy();
    let root = proxy.root.path().to_owned();
    let pid = proxy.pid();
    let file = write(
        &root,
        "pxnet.xml",
        &format!(
            "<network>\n  <name>pxnet</name>\n  <uuid>{NET_UUID}</uuid>\n  <forward mode='nat'/>\n  <bridge name='pxbr0'/>\n  <mac address='52:54:00:0a:0b:0c'/>\n  <ip address='10.78.0.1' netmask='255.255.255.0'/>\n</network>\n"
        ),
    );
    let dump = format!(
        "<network>\n  <name>pxnet</name>\n  <uuid>{NET_UUID}</uuid>\n  <forward mode='nat'/>\n  <bridge name='pxbr0' stp='on' delay='0'/>\n  <mac address='52:54:00:0a:0b:0c'/>\n  <ip address='10.78.0.1' netmask='255.255.255.0'>\n  </ip>\n</network>\n\n"
    );
    let info = |active: &str, autostart: &str| {
        format!(
            "Name:           pxnet\nUUID:           {NET_UUID}\nActive:         {active}\nPersistent:     yes\nAutostart:      {autostart}\nBridge:         pxbr0\n\n"
        )
    };
    let steps = vec![
        step(
            &["net-define", &file],
            prints(format!("Network pxnet defined from {file}\n\n")),
        ),
        step(
            &["net-list", "--all"],
            prints(
                " Name    State      Autostart   Persistent\n--------------------------------------------\n pxnet   inactive   no          yes\n\n",
            ),
        ),
        step(&["net-info", "pxnet"], prints(info("no", "no"))),
        step(&["net-dumpxml", "pxnet"], prints(dump.clone())),
        step(&["net-uuid", "pxnet"], prints(format!("{NET_UUID}\n\n"))),
        step(&["net-name", NET_UUID], prints("pxnet\n\n")),
        step(
            &["net-autostart", "pxnet"],
            prints("Network pxnet marked as autostarted\n\n"),
        ),
        step(&["net-start", "pxnet"], prints("Network pxnet started\n\n")).then(move || {
            let addr = ip(pid, "-o addr show dev pxbr0");
            assert!(addr.contains("inet 10.78.0.1/24"), "{addr}");
        }),
        step(&["net-info", "pxnet"], prints(info("yes", "yes"))),
        step(&["net-destroy", "pxnet"], prints("Network pxnet destroyed\n\n")).then(move || {
            let gone = ip(pid, "link show dev pxbr0");
            assert!(gone.contains("does not exist"), "{gone}");
        }),
        step(
            &["net-info", "nosuch"],
            fails("error: Network not found: no network with matching name 'nosuch'"),
        ),
        step(
            &["net-undefine", "pxnet"],
            prints("Network pxnet has been undefined\n\n"),
        ),
        step(
            &["net-list", "--all"],
            prints(" Name   State   Autostart   Persistent\n----------------------------------------\n\n"),
        ),
    ];
    let driver = Driver {
        daemon: "virtnetworkd",
        scheme: "network",
    };
    let _spawned = through_proxy(&proxy, &driver, Via::ProxyOwnUri, "CONNECT_OPEN", &steps);
    assert!(!root.join("etc/libvirt/qemu/networks/pxnet.xml").exists());
}

#[test]
fn storage_commands_through_virtproxyd() {
    require_tool("qemu-img");
    let proxy = Daemon::start("virtproxyd", DaemonOptions::default());
    let root = proxy.root.path().to_owned();
    let dir = root.join("pools/px").display().to_string();
    let qcow2 = format!("{dir}/disk.qcow2");
    let fs_sizes = ["Capacity:", "Allocation:", "Available:"];
    let pool_sizes = [
        "<capacity unit='bytes'>",
        "<allocation unit='bytes'>",
        "<available unit='bytes'>",
    ];
    // What qemu-img writes takes up what the file system makes of it (the
    // raw volume is allocated in full), and files have timestamps.
    let written = ["<allocation unit='bytes'>", "<atime>", "<mtime>", "<ctime>"];
    let empty_vols = " Name   Path\n--------------\n\n";
    let steps = vec![
        step(&["pool-define-as", "px", "dir", "--target", &dir], prints("Pool px defined\n\n")),
        step(&["pool-build", "px"], prints("Pool px built\n\n")),
        step(&["pool-start", "px"], prints("Pool px started\n\n")),
        step(&["pool-uuid", "px"], prints(format!("{GENERATED}\n\n"))).generated(),
        step(
            &["pool-list", "--all"],
            prints(" Name   State    Autostart\n----------------------------\n px     active   no\n\n"),
        ),
        step(
            &["pool-info", "px"],
            prints(format!(
                "Name:           px\nUUID:           {GENERATED}\nState:          running\nPersistent:     yes\nAutostart:      no\nCapacity:(varies)\nAllocation:(varies)\nAvailable:(varies)\n\n"
            )),
        )
        .volatile(&fs_sizes),
        step(
            &["pool-dumpxml", "px"],
            prints(format!(
                "<pool type='dir'>\n  <name>px</name>\n  <uuid>{GENERATED}</uuid>\n  <capacity unit='bytes'>(varies)\n  <allocation unit='bytes'>(varies)\n  <available unit='bytes'>(varies)\n  <source>\n  </source>\n  <target>\n    <path>{dir}</path>\n    <permissions>\n      <mode>0711</mode>\n      <owner>0</owner>\n      <group>0</group>\n    </permissions>\n  </target>\n</pool>\n\n"
            )),
        )
        .volatile(&pool_sizes),
        step(&["pool-autostart", "px"], prints("Pool px marked as autostarted\n\n")),
        step(
            &["vol-create-as", "px", "raw.img", "1M", "--format", "raw"],
            prints("Vol raw.img created\n\n"),
        ),
        step(
            &["vol-create-as", "px", "disk.qcow2", "1G", "--format", "qcow2"],
            prints("Vol disk.qcow2 created\n\n"),
        ),
        step(
            &["vol-list", "px"],
            prints(format!(
                " Name         Path\n{}\n disk.qcow2   {qcow2}\n raw.img      {dir}/raw.img\n\n",
                "-".repeat(16 + qcow2.len())
            )),
        ),
        step(
            &["vol-info", "--pool", "px", "raw.img"],
            prints("Name:           raw.img\nType:           file\nCapacity:       1.00 MiB\nAllocation:     1.00 MiB\n\n"),
        ),
        step(
            &["vol-info", "--pool", "px", "disk.qcow2"],
            prints("Name:           disk.qcow2\nType:           file\nCapacity:       1.00 GiB\nAllocation:(varies)\n\n"),
        )
        .volatile(&["Allocation:"]),
        step(
            &["vol-dumpxml", "--pool", "px", "disk.qcow2"],
            shows(&[
                &format!("<volume type='file'>\n  <name>disk.qcow2</name>\n  <key>{qcow2}</key>\n  <capacity unit='bytes'>1073741824</capacity>\n  <allocation unit='bytes'>(varies)\n  <physical unit='bytes'>"),
                &format!("  <target>\n    <path>{qcow2}</path>\n    <format type='qcow2'/>\n"),
                "    <timestamps>\n      <atime>(varies)\n      <mtime>(varies)\n      <ctime>(varies)\n    </timestamps>\n    <compat>0.10</compat>\n    <clusterSize unit='B'>65536</clusterSize>\n  </target>\n</volume>\n\n",
            ]),
        )
        .volatile(&written),
        step(&["vol-path", "--pool", "px", "disk.qcow2"], prints(format!("{qcow2}\n\n"))),
        step(&["vol-key", "--pool", "px", "disk.qcow2"], prints(format!("{qcow2}\n\n"))),
        step(&["pool-refresh", "px"], prints("Pool px refreshed\n\n")),
        step(&["vol-delete", "--pool", "px", "raw.img"], prints("Vol raw.img deleted\n\n")),
        step(
            &["vol-delete", "--pool", "px", "disk.qcow2"],
            prints("Vol disk.qcow2 deleted\n\n"),
        ),
        step(&["vol-list", "px"], prints(empty_vols)),
        step(&["pool-destroy", "px"], prints("Pool px destroyed\n\n")),
        step(&["pool-delete", "px"], prints("Pool px deleted\n\n")),
        step(&["pool-undefine", "px"], prints("Pool px has been undefined\n\n")),
        step(
            &["pool-info", "px"],
            fails("error: Storage pool not found: no storage pool with matching name 'px'"),
        ),
        step(
            &["pool-list", "--all"],
            prints(" Name   State   Autostart\n---------------------------\n\n"),
        ),
    ];
    let driver = Driver {
        daemon: "virtstoraged",
        scheme: "storage",
    };
    // Started by the first storage call on the qemu connection.
    let _spawned = through_proxy(
        &proxy,
        &driver,
        Via::ProxyQemuUri,
        "STORAGE_POOL_DEFINE_XML",
        &steps,
    );
    assert!(!root.join("pools/px").exists());
    assert!(!root.join("etc/libvirt/storage/px.xml").exists());
}

const CEPH: &str = "8a3c1e5f-7b2d-4c6e-9f0a-1b2c3d4e5f60";
const PRIVATE: &str = "2d4f6a8c-0e1b-4d3f-8a5c-7e9f0a1b2c3d";

#[test]
fn secret_commands_through_virtproxyd() {
    let proxy = Daemon::start("virtproxyd", DaemonOptions::default());
    let root = proxy.root.path().to_owned();
    let ceph = format!(
        "<secret ephemeral='no' private='no'>\n  <uuid>{CEPH}</uuid>\n  <description>ceph key</description>\n  <usage type='ceph'>\n    <name>client.px</name>\n  </usage>\n</secret>\n"
    );
    let file = write(&root, "ceph.xml", &ceph);
    let private = write(
        &root,
        "private.xml",
        &format!(
            "<secret private='yes'><uuid>{PRIVATE}</uuid><usage type='tls'><name>px-tls</name></usage></secret>"
        ),
    );
    let steps = vec![
        step(
            &["secret-define", &file],
            prints(format!("Secret {CEPH} created\n\n")),
        ),
        step(
            &["secret-list"],
            prints(format!(
                " UUID                                   Usage\n--------------------------------------------------------\n {CEPH}   ceph client.px\n\n"
            )),
        ),
        step(&["secret-dumpxml", CEPH], prints(format!("{ceph}\n"))),
        step(
            &["secret-get-value", CEPH],
            fails(format!("Secret not found: secret '{CEPH}' does not have a value")),
        ),
        step(
            &["secret-set-value", CEPH, "--base64", "aGVsbG8="],
            prints("Secret value set\n\n"),
        ),
        step(&["secret-get-value", CEPH], prints("aGVsbG8=\n")),
        step(
            &["secret-define", &private],
            prints(format!("Secret {PRIVATE} created\n\n")),
        ),
        step(
            &["secret-set-value", PRIVATE, "--base64", "cHJpdmF0ZQ=="],
            prints("Secret value set\n\n"),
        ),
        step(
            &["secret-get-value", PRIVATE],
            fails("error: Invalid secret: secret is private"),
        ),
        step(
            &["secret-undefine", CEPH],
            prints(format!("Secret {CEPH} deleted\n\n")),
        ),
        step(
            &["secret-undefine", PRIVATE],
            prints(format!("Secret {PRIVATE} deleted\n\n")),
        ),
        step(
            &["secret-dumpxml", CEPH],
            fails(format!(
                "error: Secret not found: no secret with matching uuid '{CEPH}'"
            )),
        ),
        step(&["secret-list"], prints(" UUID   Usage\n---------------\n\n")),
    ];
    let driver = Driver {
        daemon: "virtsecretd",
        scheme: "secret",
    };
    let _spawned = through_proxy(&proxy, &driver, Via::ProxyOwnUri, "CONNECT_OPEN", &steps);
    let left: Vec<_> = std::fs::read_dir(root.join("etc/libvirt/secrets"))
        .expect("secrets dir")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A small host under `ROOT/sys`: a PCI NIC with `eth0`, and `lo`. Returns
/// the environment pointing virtnodedevd (spawned by the proxy, which
/// passes its environment on) at it.
fn fake_sysfs(root: &Path) -> Vec<(String, String)> {
    let sys = root.join("sys");
    let put = |rel: &str, data: &[u8]| {
        let p = sys.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, data).expect("write");
    };
    let link = |rel: &str, target: &str| {
        let p = sys.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(sys.join(target), p).expect("symlink");
    };
    let nic = "devices/pci0000:00/0000:00:19.0";
    put(&format!("{nic}/uevent"), b"PCI_CLASS=20000\n");
    put(&format!("{nic}/vendor"), b"0x8086\n");
    put(&format!("{nic}/device"), b"0x10d3\n");
    put(&format!("{nic}/config"), &[0u8; 256]);
    std::fs::create_dir_all(sys.join("bus/pci/drivers/e1000e")).expect("mkdir");
    link(&format!("{nic}/subsystem"), "bus/pci");
    link(&format!("{nic}/driver"), "bus/pci/drivers/e1000e");
    link("bus/pci/devices/0000:00:19.0", nic);
    for (dev, ifindex, mac, state) in [
        (format!("{nic}/net/eth0"), 2, "52:54:00:12:34:56", "up"),
        (
            "devices/virtual/net/lo".to_owned(),
            1,
            "00:00:00:00:00:00",
            "unknown",
        ),
    ] {
        let name = dev.rsplit('/').next().expect("name");
        put(
            &format!("{dev}/uevent"),
            format!("INTERFACE={name}\nIFINDEX={ifindex}\n").as_bytes(),
        );
        put(&format!("{dev}/address"), format!("{mac}\n").as_bytes());
        put(&format!("{dev}/addr_len"), b"6\n");
        put(&format!("{dev}/operstate"), format!("{state}\n").as_bytes());
        std::fs::create_dir_all(sys.join("class/net")).expect("mkdir");
        link(&format!("{dev}/subsystem"), "class/net");
        link(&format!("class/net/{name}"), &dev);
    }
    let udev = root.join("udev");
    std::fs::create_dir_all(&udev).expect("mkdir");
    let pci_ids = write(
        root,
        "pci.ids",
        "8086  Intel Corporation\n\t10d3  82574L Gigabit Network Connection\n",
    );
    vec![
        ("MODVIRT_SYSFS".into(), sys.display().to_string()),
        ("MODVIRT_UDEV_DATA".into(), udev.display().to_string()),
        ("MODVIRT_PCI_IDS".into(), pci_ids),
    ]
}

#[test]
fn nodedev_commands_through_virtproxyd() {
    let root = temp_root("modvirt-e2e-");
    let env = fake_sysfs(root.path());
    let proxy = Daemon::start_in(
        "virtproxyd",
        root,
        DaemonOptions {
            env,
            ..Default::default()
        },
    );
    let sys = std::fs::canonicalize(proxy.root.path().join("sys")).expect("sys");
    let eth0 = "net_eth0_52_54_00_12_34_56";
    let steps = vec![
        step(
            &["nodedev-list"],
            prints(format!(
                "computer\n{eth0}\nnet_lo_00_00_00_00_00_00\npci_0000_00_19_0\n\n"
            )),
        ),
        step(
            &["nodedev-list", "--cap", "net"],
            prints(format!("{eth0}\nnet_lo_00_00_00_00_00_00\n\n")),
        ),
        step(
            &["nodedev-dumpxml", "computer"],
            prints(
                "<device>\n  <name>computer</name>\n  <capability type='system'>\n    <hardware>\n      <uuid>00000000-0000-0000-0000-000000000000</uuid>\n    </hardware>\n    <firmware>\n    </firmware>\n  </capability>\n</device>\n\n",
            ),
        ),
        step(
            &["nodedev-info", "computer"],
            prints(
                "Name:           computer\nParent:         \nActive:         yes\nPersistent:     yes\nAutostart:      yes\n\n",
            ),
        ),
        step(
            &["nodedev-dumpxml", eth0],
            prints(format!(
                "<device>\n  <name>{eth0}</name>\n  <path>{}/devices/pci0000:00/0000:00:19.0/net/eth0</path>\n  <parent>pci_0000_00_19_0</parent>\n  <capability type='net'>\n    <interface>eth0</interface>\n    <address>52:54:00:12:34:56</address>\n    <link state='up'/>\n    <capability type='80203'/>\n  </capability>\n</device>\n\n",
                sys.display()
            )),
        ),
        step(
            &["nodedev-info", eth0],
            prints(format!(
                "Name:           {eth0}\nParent:         pci_0000_00_19_0\nActive:         yes\nPersistent:     no\nAutostart:      no\n\n"
            )),
        ),
        step(
            &["nodedev-dumpxml", "nosuch"],
            fails("error: Node device not found: no node device with matching name 'nosuch'"),
        ),
    ];
    let driver = Driver {
        daemon: "virtnodedevd",
        scheme: "nodedev",
    };
    let _spawned = through_proxy(&proxy, &driver, Via::ProxyOwnUri, "CONNECT_OPEN", &steps);
}

#[test]
fn interface_commands_through_virtproxyd() {
    let proxy = netns_proxy();
    let pid = proxy.pid();
    // Links in the proxy's namespace, which the daemons it starts share:
    // a veth pair left down (its state stays put), and `lo`, down too.
    let out = ip(
        pid,
        "link add pxv0 address 52:54:00:00:01:0a type veth peer name pxv1 address 52:54:00:00:01:0b",
    );
    assert!(out.is_empty(), "{out}");
    let steps = vec![
        step(
            &["iface-list", "--all"],
            prints(
                " Name   State      MAC Address\n--------------------------------------\n lo     inactive   00:00:00:00:00:00\n pxv0   inactive   52:54:00:00:01:0a\n pxv1   inactive   52:54:00:00:01:0b\n\n",
            ),
        ),
        step(
            &["iface-list"],
            prints(" Name   State   MAC Address\n-----------------------------\n\n"),
        ),
        step(
            &["iface-dumpxml", "lo"],
            prints(
                "<interface type='ethernet' name='lo'>\n  <mtu size='65536'/>\n  <link state='down'/>\n  <mac address='00:00:00:00:00:00'/>\n</interface>\n\n",
            ),
        ),
        step(&["iface-mac", "lo"], prints("00:00:00:00:00:00\n\n")),
        step(&["iface-mac", "pxv0"], prints("52:54:00:00:01:0a\n\n")),
        step(&["iface-name", "52:54:00:00:01:0b"], prints("pxv1\n\n")),
        step(
            &["iface-dumpxml", "pxv1"],
            prints(
                "<interface type='ethernet' name='pxv1'>\n  <mtu size='1500'/>\n  <link state='down'/>\n  <mac address='52:54:00:00:01:0b'/>\n</interface>\n\n",
            ),
        ),
        step(
            &["iface-name", "52:54:00:00:01:ff"],
            fails("error: Interface not found: couldn't find interface with MAC address '52:54:00:00:01:ff'"),
        ),
    ];
    let driver = Driver {
        daemon: "virtinterfaced",
        scheme: "interface",
    };
    let _spawned = through_proxy(
        &proxy,
        &driver,
        Via::ProxyQemuUri,
        "CONNECT_LIST_ALL_INTERFACES",
        &steps,
    );
}

const FILTER_UUID: &str = "3e5a7c9e-1f2b-4a4c-8e6f-a0b1c2d3e4f5";

#[test]
fn nwfilter_commands_through_virtproxyd() {
    let proxy = Daemon::start("virtproxyd", DaemonOptions::default());
    let root: PathBuf = proxy.root.path().to_owned();
    let file = write(
        &root,
        "pxf.xml",
        &format!(
            "<filter name='px-arp' chain='arp'>\n  <uuid>{FILTER_UUID}</uuid>\n  <rule action='accept' direction='inout' priority='500'/>\n</filter>\n"
        ),
    );
    let dump = format!(
        "<filter name='px-arp' chain='arp' priority='-500'>\n  <uuid>{FILTER_UUID}</uuid>\n  <rule action='accept' direction='inout' priority='500'/>\n</filter>\n\n"
    );
    let steps = vec![
        step(
            &["nwfilter-define", &file],
            prints(format!("Network filter px-arp defined from {file}\n\n")),
        ),
        step(
            &["nwfilter-list"],
            prints(format!(
                " UUID                                   Name\n------------------------------------------------\n {FILTER_UUID}   px-arp\n\n"
            )),
        ),
        step(&["nwfilter-dumpxml", "px-arp"], prints(dump.clone())),
        step(&["nwfilter-dumpxml", FILTER_UUID], prints(dump)),
        step(
            &["nwfilter-undefine", "px-arp"],
            prints("Network filter px-arp undefined\n\n"),
        ),
        step(
            &["nwfilter-dumpxml", "px-arp"],
            fails("error: Network filter not found: no nwfilter with matching name 'px-arp'"),
        ),
        step(&["nwfilter-list"], prints(" UUID   Name\n--------------\n\n")),
    ];
    let driver = Driver {
        daemon: "virtnwfilterd",
        scheme: "nwfilter",
    };
    let _spawned = through_proxy(&proxy, &driver, Via::ProxyQemuUri, "NWFILTER_DEFINE_XML", &steps);
    assert!(!root.join("etc/libvirt/nwfilter/px-arp.xml").exists());
}
