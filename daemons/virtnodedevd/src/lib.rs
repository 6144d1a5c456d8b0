//! The host device driver of `virtnodedevd` (`nodedev:///system`), as a
//! library so its parts can be tested on their own:
//!
//! - [`device`]: libvirt's node device model and its `<device>` XML. No I/O.
//! - [`sysfs`]: the host's devices read from sysfs (root configurable with
//!   `MODVIRT_SYSFS`), named and typed as libvirt's udev backend does.
//! - [`driver`]: the REMOTE node device procedures on top of them, with
//!   the first enumeration in the background.
//! - [`fakesys`]: a made-up sysfs tree for tests.

pub mod device;
pub mod driver;
pub mod fakesys;
pub mod sysfs;
