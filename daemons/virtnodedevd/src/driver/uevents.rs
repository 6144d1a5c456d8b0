//! Knowing when the device list is stale, as libvirt's udev monitor does:
//! a `NETLINK_KOBJECT_UEVENT` socket hears every device the kernel adds,
//! removes or changes, and raises a flag; list calls enumerate sysfs again
//! only when it is up (or the last enumeration is older than
//! [`MAX_AGE`], for events a network namespace never sees). Only for the
//! real `/sys`: a test's fake sysfs has no events, so it is read every time.
//!
//! The monitor also notes which devices the events named ([`Touched`]):
//! libvirt's udev backend sends a node device `UPDATE` event for a known
//! device on `add`, `change` and `move`, and `DELETED` on `remove` (and for
//! the old path of a `move`); an enumeration compares its devices with the
//! last one's and asks which of those that stayed were touched so
//! (`super::changes`). Each event also wakes the driver's watcher
//! ([`Monitor::wake`]), which enumerates again while clients listen.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Re-enumerate at least this often, whatever the events say.
pub const MAX_AGE: Duration = Duration::from_secs(10);

/// The kernel's uevent multicast group.
const UEVENT_GROUP: u32 = 1;

/// Device paths kept between two enumerations, per set: a storm beyond
/// this (thousands of devices at once) sends no `UPDATE` for the rest;
/// devices that came or went are still found by comparing the lists.
const MAX_TOUCHED: usize = 4096;

/// One kernel uevent, as far as the node device events care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    /// `add`, `remove`, `change`, `move`, `bind`, …
    pub action: String,
    /// The device's path below the sysfs root (`/devices/virtual/net/lo`).
    pub devpath: String,
    /// For `move`: where the device was (`DEVPATH_OLD`).
    pub devpath_old: Option<String>,
}

/// Reads a kernel uevent datagram: `ACTION@DEVPATH`, then `KEY=VALUE`
/// strings, each ended by a NUL. `None` for anything else (udev's own
/// `libudev` messages, garbage).
pub fn parse(msg: &[u8]) -> Option<Uevent> {
    let mut fields = msg.split(|&b| b == 0).map(|f| std::str::from_utf8(f).ok());
    let (action, devpath) = fields.next()??.split_once('@')?;
    if action.is_empty() || !devpath.starts_with('/') {
        return None;
    }
    let devpath_old = fields
        .flatten()
        .find_map(|kv| kv.strip_prefix("DEVPATH_OLD="))
        .map(str::to_owned);
    Some(Uevent {
        action: action.to_owned(),
        devpath: devpath.to_owned(),
        devpath_old,
    })
}

/// The sysfs paths device events named since the last enumeration took
/// them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    /// Added, changed, or moved here: a device known before and still
    /// there gets an `UPDATE`.
    pub changed: HashSet<PathBuf>,
    /// Removed, or moved away: a device of that path that is there again
    /// went and came back (`DELETED`, then `CREATED`).
    pub removed: HashSet<PathBuf>,
}

impl Touched {
    /// Notes `ev` for the sysfs tree at `sysfs`.
    pub fn note(&mut self, sysfs: &Path, ev: &Uevent) {
        let at = |devpath: &str| sysfs.join(devpath.trim_start_matches('/'));
        match ev.action.as_str() {
            "add" | "change" => insert(&mut self.changed, at(&ev.devpath)),
            "remove" => insert(&mut self.removed, at(&ev.devpath)),
            "move" => {
                if let Some(old) = &ev.devpath_old {
                    insert(&mut self.removed, at(old));
                }
                insert(&mut self.changed, at(&ev.devpath));
            }
            // bind, unbind, online, offline: libvirt 9.0 sends nothing.
            _ => {}
        }
    }

    /// Adds what `other` noted (an enumeration that lost to a newer one
    /// gives its paths back).
    pub fn merge(&mut self, other: Touched) {
        for p in other.changed {
            insert(&mut self.changed, p);
        }
        for p in other.removed {
            insert(&mut self.removed, p);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.removed.is_empty()
    }
}

fn insert(set: &mut HashSet<PathBuf>, p: PathBuf) {
    if set.len() < MAX_TOUCHED {
        set.insert(p);
    }
}

/// Raised by the kernel's device events; lowered by an enumeration.
#[derive(Debug)]
pub struct Monitor {
    changed: Arc<AtomicBool>,
    touched: Arc<Mutex<Touched>>,
    wake: Arc<Notify>,
}

impl Monitor {
    /// Listens for kernel uevents on a thread of its own; `None` (logged)
    /// when the socket cannot be made. Paths are noted below `sysfs`.
    pub fn start(sysfs: &Path) -> Option<Monitor> {
        use nix::sys::socket::{AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, socket};
        let made = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .and_then(|fd| bind(fd.as_raw_fd(), &NetlinkAddr::new(0, UEVENT_GROUP)).map(|()| fd));
        let fd: OwnedFd = match made {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(target: "nodedev", "cannot listen for device events ({e}): every list reads sysfs again");
                return None;
            }
        };
        let m = Monitor {
            changed: Arc::new(AtomicBool::new(true)),
            touched: Arc::default(),
            wake: Arc::new(Notify::new()),
        };
        let (flag, touched, wake) = (m.changed.clone(), m.touched.clone(), m.wake.clone());
        let sysfs = sysfs.to_owned();
        let raise = move || {
            flag.store(true, Ordering::Release);
            wake.notify_one();
        };
        let spawned = std::thread::Builder::new().name("nodedev-uevents".into()).spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::empty()) {
                    Ok(n) => {
                        if let Some(ev) = parse(&buf[..n]) {
                            tracing::trace!(target: "nodedev", "uevent {} {}", ev.action, ev.devpath);
                            touched.lock().unwrap_or_else(|e| e.into_inner()).note(&sysfs, &ev);
                        }
                        raise();
                    }
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::ENOBUFS) => raise(),
                    Err(e) => {
                        tracing::warn!(target: "nodedev", "device events stopped ({e}): every list reads sysfs again");
                        // Stay raised for good: every list enumerates again.
                        raise();
                        return;
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(target: "nodedev", "cannot start the device event thread ({e}): every list reads sysfs again");
            return None;
        }
        Some(m)
    }

    /// Whether a device changed since the last call (and lowers the flag:
    /// the caller enumerates now).
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel)
    }

    /// Raises the flag again (an enumeration failed).
    pub fn mark_changed(&self) {
        self.changed.store(true, Ordering::Release);
    }

    /// The paths events named since the last call.
    pub fn take_touched(&self) -> Touched {
        std::mem::take(&mut *self.touched.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Gives back paths an enumeration took but did not use.
    pub fn give_back(&self, t: Touched) {
        if !t.is_empty() {
            self.touched.lock().unwrap_or_else(|e| e.into_inner()).merge(t);
        }
    }

    /// Woken (once, however many came) after device events.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_raised_and_lowers_once_taken() {
        let Some(m) = Monitor::start(Path::new("/sys")) else {
            panic!("uevent socket refused (tests run as root)");
        };
        assert!(m.take_changed(), "the first list enumerates");
        m.mark_changed();
        assert!(m.take_changed());
    }

    #[test]
    fn kernel_messages_give_action_path_and_old_path() {
        let msg = b"change@/devices/virtual/net/lo\0ACTION=change\0DEVPATH=/devices/virtual/net/lo\0SUBSYSTEM=net\0";
        assert_eq!(
            parse(msg),
            Some(Uevent {
                action: "change".into(),
                devpath: "/devices/virtual/net/lo".into(),
                devpath_old: None,
            })
        );
        let moved = b"move@/devices/virtual/net/ens3\0ACTION=move\0DEVPATH_OLD=/devices/virtual/net/eth0\0";
        assert_eq!(
            parse(moved).and_then(|e| e.devpath_old),
            Some("/devices/virtual/net/eth0".into())
        );
        // udev's own messages, empty datagrams and garbage are not uevents.
        for bad in [
            &b"libudev\0\xfe\xed\xca\xfe"[..],
            b"",
            b"@/devices/x\0",
            b"add@devices/x\0",
            b"\xff\xfe@/devices\0",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn actions_note_changed_and_removed_paths_as_libvirt_reads_them() {
        let sys = Path::new("/sys");
        let ev = |action: &str, path: &str, old: Option<&str>| Uevent {
            action: action.into(),
            devpath: path.into(),
            devpath_old: old.map(str::to_owned),
        };
        let mut t = Touched::default();
        t.note(sys, &ev("change", "/devices/virtual/net/lo", None));
        t.note(sys, &ev("add", "/devices/pci0000:00/0000:00:19.0", None));
        t.note(sys, &ev("bind", "/devices/pci0000:00/0000:00:1f.2", None));
        t.note(sys, &ev("remove", "/devices/virtual/net/dummy0", None));
        t.note(
            sys,
            &ev(
                "move",
                "/devices/virtual/net/ens3",
                Some("/devices/virtual/net/eth0"),
            ),
        );
        let set = |v: &[&str]| v.iter().map(PathBuf::from).collect::<HashSet<_>>();
        assert_eq!(
            t.changed,
            set(&[
                "/sys/devices/virtual/net/lo",
                "/sys/devices/pci0000:00/0000:00:19.0",
                "/sys/devices/virtual/net/ens3"
            ])
        );
        assert_eq!(
            t.removed,
            set(&["/sys/devices/virtual/net/dummy0", "/sys/devices/virtual/net/eth0"])
        );
        // Given back, merged; bounded either way.
        let mut u = Touched::default();
        u.merge(t.clone());
        assert_eq!(u, t);
        for i in 0..MAX_TOUCHED + 10 {
            u.note(sys, &ev("change", &format!("/devices/x{i}"), None));
        }
        assert_eq!(u.changed.len(), MAX_TOUCHED);
    }
}
