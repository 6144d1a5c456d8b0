//! The storage driver of `virtstoraged`, as a library so its parts can be
//! tested on their own:
//!
//! - [`conf`]: libvirt's storage pool and volume XML — the model, parsing
//!   (with libvirt's errors and defaults) and formatting for
//!   `pool-dumpxml` / `vol-dumpxml`. No I/O.
//! - [`driver`]: the REMOTE storage procedures on top of it, with `dir`
//!   pools as host directories, volumes as files in them (qcow2 ones made
//!   by `qemu-img`), and definitions and status files on disk.

pub mod conf;
pub mod driver;
