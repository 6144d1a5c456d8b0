//! Tap devices through `/dev/net/tun`.
//!
//! Opening `/dev/net/tun` and issuing `TUNSETIFF` with `IFF_TAP | IFF_NO_PI`
//! creates a tap device in the calling thread's network namespace and binds
//! it to the file descriptor: closing the descriptor deletes the device
//! unless `TUNSETPERSIST` was set. A name containing `%d` lets the kernel
//! pick the first free number; the chosen name comes back in the request.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::libc;

use crate::error::{NetlinkError, Operation, check_name};

/// `struct ifreq` as `TUNSETIFF` reads and writes it: the name, then the
/// `short` flags of the union, padded to the union's 24 bytes.
#[repr(C)]
#[derive(Debug)]
struct TunRequest {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _union_rest: [u8; 22],
}

// TUNSETIFF is declared `_IOW('T', 202, int)` but reads and writes a
// `struct ifreq`; TUNSETPERSIST takes its argument by value.
nix::ioctl_readwrite_bad!(tun_set_iff, libc::TUNSETIFF, TunRequest);
nix::ioctl_write_int_bad!(tun_set_persist, libc::TUNSETPERSIST);

/// How to create a tap device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapOptions {
    /// `IFF_VNET_HDR`: frames carry a `virtio_net_hdr` (for virtio-net
    /// guests with offloads).
    pub vnet_hdr: bool,
    /// `TUNSETPERSIST`: the device outlives the descriptor and must be
    /// deleted explicitly.
    pub persist: bool,
}

/// Creates a tap device (`IFF_TAP | IFF_NO_PI`) named `name_template`
/// (e.g. `vnet%d`) and returns its actual name and the descriptor that keeps
/// it alive.
pub fn create_tap(name_template: &str) -> Result<(String, OwnedFd), NetlinkError> {
    create_tap_with(name_template, TapOptions::default())
}

/// [`create_tap`] with options.
pub fn create_tap_with(name_template: &str, options: TapOptions) -> Result<(String, OwnedFd), NetlinkError> {
    let op = Operation::CreateTap {
        template: name_template.to_owned(),
    };
    check_name(&op, name_template, true)?;
    let fail = |step, errno| NetlinkError::Tap {
        op: op.clone(),
        step,
        errno,
    };

    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| {
            fail(
                "open /dev/net/tun",
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })?;
    let fd = OwnedFd::from(file);

    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
    if options.vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    let mut request = TunRequest {
        name: [0; libc::IFNAMSIZ],
        // IFF_TAP | IFF_NO_PI | IFF_VNET_HDR is 0x5002: it fits a short.
        flags: flags as libc::c_short,
        _union_rest: [0; 22],
    };
    // check_name bounded the name to IFNAMSIZ - 1 bytes: the NUL stays.
    request.name[..name_template.len()].copy_from_slice(name_template.as_bytes());

    // SAFETY: `fd` is an open /dev/net/tun descriptor; `request` is a live,
    // exclusively borrowed `struct ifreq`-sized buffer that the kernel reads
    // and writes (the chosen name) during the call only.
    unsafe { tun_set_iff(fd.as_raw_fd(), &raw mut request) }.map_err(|errno| fail("TUNSETIFF", errno))?;
    if options.persist {
        // SAFETY: `fd` is the tap descriptor configured above; the argument
        // is passed by value.
        unsafe { tun_set_persist(fd.as_raw_fd(), 1) }.map_err(|errno| fail("TUNSETPERSIST", errno))?;
    }

    let end = request
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(request.name.len());
    let name = String::from_utf8_lossy(&request.name[..end]).into_owned();
    Ok((name, fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_the_size_of_struct_ifreq() {
        assert_eq!(size_of::<TunRequest>(), 40);
    }

    #[test]
    fn bad_template_is_refused_before_opening_anything() {
        let err = create_tap("vnet%d%d").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "cannot create tap device 'vnet%d%d': name template 'vnet%d%d' must contain '%d' once and no other '%'"
            )
        );
        assert!(create_tap("a-very-long-tap-name%d").is_err());
    }
}
