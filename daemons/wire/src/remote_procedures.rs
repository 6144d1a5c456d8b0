//! Placeholder; replaced by the full table.
use crate::program::{Driver, Priority, ProcKind, Procedure};

pub static REMOTE_PROCEDURES: &[Procedure] = &[Procedure {
    number: 66,
    name: "AUTH_LIST",
    readonly_ok: true,
    priority: Priority::High,
    driver: Driver::Connection,
    kind: ProcKind::Call,
}];
