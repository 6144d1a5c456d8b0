//! The secret driver of `virtsecretd`, as a library so its parts can be
//! tested on their own:
//!
//! - [`secret`]: libvirt's secret XML — the model, parsing (with libvirt's
//!   errors and defaults) and formatting for `secret-dumpxml`. No I/O.
//! - [`base64`]: how values are kept on disk.
//! - [`driver`]: the REMOTE secret procedures on top of it, with persistent
//!   secrets under `etc/libvirt/secrets` and ephemeral ones in memory.

pub mod base64;
pub mod driver;
pub mod secret;
