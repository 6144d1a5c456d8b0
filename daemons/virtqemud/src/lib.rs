//! The QEMU driver of `virtqemud`, as a library so its parts can be tested
//! on their own:
//!
//! - [`domain`]: libvirt's domain XML — the model, parsing (with libvirt's
//!   errors) and formatting for `dumpxml`. No I/O.
//! - [`qemu`]: running QEMU — the command line built from a definition,
//!   the process, and the QMP monitor.
//! - [`driver`]: the REMOTE domain procedures on top of both, with the
//!   state kept on disk and guests found again after a restart.
//! - [`version`]: what `CONNECT_GET_TYPE` / `CONNECT_GET_VERSION` report.

pub mod domain;
pub mod driver;
pub mod qemu;
pub mod version;
