//! Running QEMU: the command line ([`cmdline`]), the process ([`process`])
//! and its QMP monitor ([`qmp`]).
//!
//! These parts take plain parameters, not the domain XML model: the driver
//! maps a definition to a [`cmdline::LaunchSpec`], starts it with
//! [`process::start`] and keeps the [`qmp::Qmp`] handle and event stream.

pub mod cmdline;
pub mod process;
pub mod qmp;

pub use cmdline::{Accel, LaunchSpec};
pub use process::{ProcessError, QemuProcess};
pub use qmp::{Qmp, QmpError, QmpEvent, QmpEvents};
