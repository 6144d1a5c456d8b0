//! The network driver of `virtnetworkd`, as a library so its parts can be
//! tested on their own:
//!
//! - [`network`]: libvirt's network XML — the model, parsing (with
//!   libvirt's errors and defaults) and formatting for `net-dumpxml`. No I/O.
//! - [`driver`]: the REMOTE network procedures on top of it, with
//!   definitions on disk and active networks as host bridges.

pub mod driver;
pub mod network;
