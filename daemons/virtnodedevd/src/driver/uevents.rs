//! Knowing when the device list is stale, as libvirt's udev monitor does:
//! a `NETLINK_KOBJECT_UEVENT` socket hears every device the kernel adds,
//! removes or changes, and raises a flag; list calls enumerate sysfs again
//! only when it is up (or the last enumeration is older than
//! [`MAX_AGE`], for events a network namespace never sees). Only for the
//! real `/sys`: a test's fake sysfs has no events, so it is read every time.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Re-enumerate at least this often, whatever the events say.
pub const MAX_AGE: Duration = Duration::from_secs(10);

/// The kernel's uevent multicast group.
const UEVENT_GROUP: u32 = 1;

/// Raised by the kernel's device events; lowered by an enumeration.
#[derive(Debug)]
pub struct Monitor {
    changed: Arc<AtomicBool>,
}

impl Monitor {
    /// Listens for kernel uevents on a thread of its own; `None` (logged)
    /// when the socket cannot be made.
    pub fn start() -> Option<Monitor> {
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
        let changed = Arc::new(AtomicBool::new(true));
        let flag = changed.clone();
        let spawned = std::thread::Builder::new().name("nodedev-uevents".into()).spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::empty()) {
                    Ok(_) => flag.store(true, Ordering::Release),
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::ENOBUFS) => flag.store(true, Ordering::Release),
                    Err(e) => {
                        tracing::warn!(target: "nodedev", "device events stopped ({e}): every list reads sysfs again");
                        // Stay raised for good: every list enumerates again.
                        flag.store(true, Ordering::Release);
                        return;
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(target: "nodedev", "cannot start the device event thread ({e}): every list reads sysfs again");
            return None;
        }
        Some(Monitor { changed })
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_raised_and_lowers_once_taken() {
        let Some(m) = Monitor::start() else {
            panic!("uevent socket refused (tests run as root)");
        };
        assert!(m.take_changed(), "the first list enumerates");
        m.mark_changed();
        assert!(m.take_changed());
    }
}
