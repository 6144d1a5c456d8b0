//! Host facts: `virsh nodeinfo` (from /proc and sysfs), the capabilities
//! document, and a guest's CPU time.

use modvirt_wire::domain::{FixedChars, NodeGetInfoRet};
use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `MemTotal` of /proc/meminfo, KiB.
fn mem_total_kib() -> u64 {
    read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn online_cpus() -> i32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as i32)
}

fn cpu_mhz() -> i32 {
    read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("cpu MHz"))
        .and_then(|v| v.split(':').nth(1)?.trim().parse::<f64>().ok())
        .map_or(0, |mhz| mhz as i32)
}

/// `virNodeGetInfo`: one NUMA node, one socket, every online CPU a core.
pub fn info() -> NodeGetInfoRet {
    let cpus = online_cpus();
    NodeGetInfoRet {
        model: FixedChars::c_string(std::env::consts::ARCH),
        memory: mem_total_kib(),
        cpus,
        mhz: cpu_mhz(),
        nodes: 1,
        sockets: 1,
        cores: cpus,
        threads: 1,
    }
}

/// The capabilities document: the host's arch and the `hvm` guests the
/// emulator runs (`qemu`, and `kvm` when /dev/kvm is usable).
pub fn capabilities(emulator: &Path, kvm: bool) -> String {
    let arch = std::env::consts::ARCH;
    let kvm_domain = if kvm { "      <domain type='kvm'/>\n" } else { "" };
    format!(
        "<capabilities>\n\n  <host>\n    <cpu>\n      <arch>{arch}</arch>\n    </cpu>\n    <topology>\n      \
         <cells num='1'>\n        <cell id='0'>\n          <memory unit='KiB'>{mem}</memory>\n        </cell>\n      \
         </cells>\n    </topology>\n  </host>\n\n  <guest>\n    <os_type>hvm</os_type>\n    <arch name='{arch}'>\n      \
         <wordsize>64</wordsize>\n      <emulator>{emu}</emulator>\n      <machine>pc</machine>\n      \
         <machine>q35</machine>\n      <domain type='qemu'/>\n{kvm_domain}    </arch>\n    <features>\n      \
         <acpi default='on' toggle='yes'/>\n      <apic default='on' toggle='no'/>\n    </features>\n  </guest>\n\n\
         </capabilities>\n",
        mem = mem_total_kib(),
        emu = crate::domain::escape(&emulator.to_string_lossy()),
    )
}

/// CPU time of process `pid` (user + system), nanoseconds (0 if unreadable).
pub fn process_cpu_ns(pid: i32) -> u64 {
    modvirt_runtime::observe::metrics::cpu_time(&pid.to_string()).map_or(0, |t| t.as_nanos() as u64)
}

/// The machine aliases `emulator -machine help` lists (`pc` → the
/// versioned type it stands for), read once per emulator; empty if it
/// cannot be run.
fn machine_aliases(emulator: &Path) -> std::sync::Arc<std::collections::HashMap<String, String>> {
    type Cache = std::collections::HashMap<
        std::path::PathBuf,
        std::sync::Arc<std::collections::HashMap<String, String>>,
    >;
    static CACHE: std::sync::Mutex<Option<Cache>> = std::sync::Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .get_or_insert_with(Default::default)
        .entry(emulator.to_owned())
        .or_insert_with(|| {
            let out = std::process::Command::new(emulator)
                .args(["-machine", "help"])
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .output();
            std::sync::Arc::new(
                out.map(|o| parse_machine_aliases(&String::from_utf8_lossy(&o.stdout)))
                    .unwrap_or_default(),
            )
        })
        .clone()
}

/// `pc   Standard PC … (alias of pc-i440fx-7.2)` lines → alias → type.
pub fn parse_machine_aliases(help: &str) -> std::collections::HashMap<String, String> {
    help.lines()
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            let target = l.split("(alias of ").nth(1)?.split(')').next()?;
            Some((name.to_owned(), target.to_owned()))
        })
        .collect()
}

/// The versioned machine type QEMU runs for `machine` (as libvirt stores
/// it: `pc` becomes `pc-i440fx-7.2`); unchanged when it is not an alias.
pub fn canonical_machine(emulator: &Path, machine: &str) -> String {
    machine_aliases(emulator)
        .get(machine)
        .cloned()
        .unwrap_or_else(|| machine.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_info_describes_this_host() {
        let i = info();
        assert!(i.cpus >= 1 && i.memory > 0, "{i:?}");
        assert_eq!(&i.model.0[..3], &std::env::consts::ARCH.as_bytes()[..3]);
    }

    #[test]
    fn own_cpu_time_is_counted() {
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(process_cpu_ns(std::process::id() as i32) > 0);
    }

    #[test]
    fn capabilities_name_the_emulator_and_domain_types() {
        let c = capabilities(Path::new("/usr/bin/qemu-system-x86_64"), false);
        assert!(c.contains("<emulator>/usr/bin/qemu-system-x86_64</emulator>"));
        assert!(c.contains("<domain type='qemu'/>") && !c.contains("type='kvm'"));
        assert!(capabilities(Path::new("/q"), true).contains("<domain type='kvm'/>"));
    }

    #[test]
    fn machine_aliases_come_from_qemus_help() {
        let help = "Supported machines are:\nmicrovm              microvm (i386)\n\
                    pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)\n\
                    pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)\n\
                    q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\n";
        let a = parse_machine_aliases(help);
        assert_eq!(a.get("pc").map(String::as_str), Some("pc-i440fx-7.2"));
        assert_eq!(a.get("q35").map(String::as_str), Some("pc-q35-7.2"));
        assert_eq!(a.len(), 2);
    }
}
