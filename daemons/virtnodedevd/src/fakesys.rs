//! A made-up sysfs tree, for tests (this crate's and the end-to-end ones,
//! which point a real virtnodedevd at it with `MODVIRT_SYSFS`): devices
//! under `devices/`, linked from `bus/<subsystem>/devices/` or
//! `class/<subsystem>/` as the kernel links them, with their `uevent`,
//! attributes and drivers. It panics on I/O errors: a test that cannot
//! write its fixture has failed.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

/// Writes a fake sysfs rooted at `sys`.
#[derive(Debug, Clone)]
pub struct FakeSysfs {
    pub sys: PathBuf,
    /// Give PCI devices a 256-byte `config` space (read when privileged).
    pub pci_config: bool,
}

impl FakeSysfs {
    /// Writes `data` at `rel` (below the sysfs root), making directories.
    pub fn write(&self, rel: &str, data: &[u8]) {
        let p = self.sys.join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent directory")).expect("mkdir in the fake sysfs");
        std::fs::write(p, data).expect("write in the fake sysfs");
    }

    /// A symbolic link at `rel` to `target` (both below the sysfs root).
    pub fn link(&self, rel: &str, target: &str) {
        let p = self.sys.join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent directory")).expect("mkdir in the fake sysfs");
        symlink(self.sys.join(target), p).expect("symlink in the fake sysfs");
    }

    /// A device at `devices/PATH` of `subsystem` (listed under `bus/` or
    /// `class/`), with `uevent` lines and attribute files.
    pub fn device(&self, path: &str, subsystem: &str, on_bus: bool, uevent: &str, attrs: &[(&str, &str)]) {
        let dev = format!("devices/{path}");
        self.write(&format!("{dev}/uevent"), uevent.as_bytes());
        for (k, v) in attrs {
            self.write(&format!("{dev}/{k}"), format!("{v}\n").as_bytes());
        }
        if self.pci_config && subsystem == "pci" {
            self.write(&format!("{dev}/config"), &[0u8; 256]);
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        let list = if on_bus {
            format!("bus/{subsystem}")
        } else {
            format!("class/{subsystem}")
        };
        std::fs::create_dir_all(self.sys.join(&list)).expect("mkdir in the fake sysfs");
        self.link(&format!("{dev}/subsystem"), &list);
        let entry = if on_bus {
            format!("{list}/devices/{name}")
        } else {
            format!("{list}/{name}")
        };
        self.link(&entry, &dev);
    }

    /// Binds the device at `devices/PATH` to `driver` of `bus`.
    pub fn driver(&self, path: &str, bus: &str, driver: &str) {
        let d = format!("bus/{bus}/drivers/{driver}");
        std::fs::create_dir_all(self.sys.join(&d)).expect("mkdir in the fake sysfs");
        self.link(&format!("devices/{path}/driver"), &d);
    }
}
