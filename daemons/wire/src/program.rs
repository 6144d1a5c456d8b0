//! Programs and the procedure table.
//!
//! Every RPC call names a program (`REMOTE`, `ADMIN`, `KEEPALIVE`, …), its
//! version and a procedure number. Procedures are data: one [`Procedure`]
//! row each, with whether the read-only socket may call it, its dispatch
//! priority and the driver that owns it. The read-only check, the worker
//! pool's priority lane and (later) the router read these rows; nothing
//! else decides those questions.

pub const REMOTE_PROGRAM: u32 = 0x2000_8086;
pub const REMOTE_VERSION: u32 = 1;
pub const QEMU_PROGRAM: u32 = 0x2000_8087;
pub const LXC_PROGRAM: u32 = 0x0006_8000;
pub const ADMIN_PROGRAM: u32 = 0x0690_0690;
pub const ADMIN_VERSION: u32 = 1;
pub const KEEPALIVE_PROGRAM: u32 = 0x6b65_6570;
pub const KEEPALIVE_VERSION: u32 = 1;
pub const KEEPALIVE_PING: i32 = 1;
pub const KEEPALIVE_PONG: i32 = 2;

/// Which driver (and so, in the modular split, which daemon) owns a procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// Connection-level: answered by whichever daemon the client is connected to.
    Connection,
    /// The hypervisor driver (`virtqemud`, `virtxend`, `virtlxcd`).
    Hypervisor,
    Network,
    Storage,
    Secret,
    NodeDevice,
    Interface,
    NwFilter,
    /// The admin program of the daemon itself.
    Admin,
}

/// Dispatch priority (`@priority: high` in libvirt's protocol files):
/// high-priority calls may run on the priority workers when all normal
/// workers are busy, so that e.g. `destroy` works while other calls hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    Normal,
    High,
}

/// Whether the procedure is a call a client makes or an event the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcKind {
    Call,
    /// Server → client `MESSAGE` (events); a client calling it gets an error.
    Event,
}

/// One row of a program's procedure table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Procedure {
    pub number: i32,
    pub name: &'static str,
    /// May a client on the read-only socket call it?
    pub readonly_ok: bool,
    pub priority: Priority,
    pub driver: Driver,
    pub kind: ProcKind,
}

/// A program: its number, version and procedure table sorted by number.
#[derive(Debug)]
pub struct Program {
    pub id: u32,
    pub version: u32,
    pub name: &'static str,
    pub procedures: &'static [Procedure],
}

impl Program {
    /// Looks a procedure up by number (binary search; tables are sorted).
    pub fn procedure(&self, number: i32) -> Option<&'static Procedure> {
        self.procedures
            .binary_search_by_key(&number, |p| p.number)
            .ok()
            .map(|i| &self.procedures[i])
    }

    /// Looks a procedure up by name (linear; for tools and tests).
    pub fn procedure_by_name(&self, name: &str) -> Option<&'static Procedure> {
        self.procedures.iter().find(|p| p.name == name)
    }
}

pub static REMOTE: Program = Program {
    id: REMOTE_PROGRAM,
    version: REMOTE_VERSION,
    name: "REMOTE",
    procedures: crate::remote_procedures::REMOTE_PROCEDURES,
};

pub static ADMIN: Program = Program {
    id: ADMIN_PROGRAM,
    version: ADMIN_VERSION,
    name: "ADMIN",
    procedures: ADMIN_PROCEDURES,
};

const fn admin(number: i32, name: &'static str, readonly_ok: bool) -> Procedure {
    Procedure {
        number,
        name,
        readonly_ok,
        priority: Priority::Normal,
        driver: Driver::Admin,
        kind: ProcKind::Call,
    }
}

/// `admin_protocol.x`, procedures 1–19. The admin socket is root-only and has
/// no read-only variant; `readonly_ok` records whether the call only reads.
pub static ADMIN_PROCEDURES: &[Procedure] = &[
    admin(1, "CONNECT_OPEN", true),
    admin(2, "CONNECT_CLOSE", true),
    admin(3, "CONNECT_GET_LIB_VERSION", true),
    admin(4, "CONNECT_LIST_SERVERS", true),
    admin(5, "CONNECT_LOOKUP_SERVER", true),
    admin(6, "SERVER_GET_THREADPOOL_PARAMETERS", true),
    admin(7, "SERVER_SET_THREADPOOL_PARAMETERS", false),
    admin(8, "SERVER_LIST_CLIENTS", true),
    admin(9, "SERVER_LOOKUP_CLIENT", true),
    admin(10, "CLIENT_GET_INFO", true),
    admin(11, "CLIENT_CLOSE", false),
    admin(12, "SERVER_GET_CLIENT_LIMITS", true),
    admin(13, "SERVER_SET_CLIENT_LIMITS", false),
    admin(14, "CONNECT_GET_LOGGING_OUTPUTS", true),
    admin(15, "CONNECT_GET_LOGGING_FILTERS", true),
    admin(16, "CONNECT_SET_LOGGING_OUTPUTS", false),
    admin(17, "CONNECT_SET_LOGGING_FILTERS", false),
    admin(18, "SERVER_UPDATE_TLS_FILES", false),
    admin(19, "CONNECT_SET_DAEMON_TIMEOUT", false),
];

/// The header of a keepalive PING or PONG (a MESSAGE with serial 0).
pub fn keepalive_header(proc_: i32) -> crate::message::Header {
    crate::message::Header {
        prog: KEEPALIVE_PROGRAM,
        vers: KEEPALIVE_VERSION,
        proc_,
        type_: crate::message::MessageType::Message,
        serial: 0,
        status: crate::message::Status::Ok,
    }
}

/// A whole keepalive PING or PONG frame (it has no payload).
pub fn keepalive_frame(proc_: i32) -> Vec<u8> {
    crate::message::encode_frame(&keepalive_header(proc_), |_| {})
}

/// Name of a procedure for logs and errors, whatever the program.
pub fn procedure_name(prog: u32, number: i32) -> Option<&'static str> {
    match prog {
        REMOTE_PROGRAM => REMOTE.procedure(number).map(|p| p.name),
        ADMIN_PROGRAM => ADMIN.procedure(number).map(|p| p.name),
        crate::observe::OBSERVE_PROGRAM => crate::observe::OBSERVE.procedure(number).map(|p| p.name),
        KEEPALIVE_PROGRAM => match number {
            KEEPALIVE_PING => Some("PING"),
            KEEPALIVE_PONG => Some("PONG"),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_sorted(p: &Program) {
        for w in p.procedures.windows(2) {
            assert!(
                w[0].number < w[1].number,
                "{} table not sorted at {}",
                p.name,
                w[1].number
            );
        }
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        check_sorted(&REMOTE);
        check_sorted(&ADMIN);
    }

    #[test]
    fn lookups() {
        assert_eq!(
            ADMIN.procedure(19).map(|p| p.name),
            Some("CONNECT_SET_DAEMON_TIMEOUT")
        );
        assert_eq!(REMOTE.procedure(66).map(|p| p.name), Some("AUTH_LIST"));
        assert_eq!(
            REMOTE.procedure_by_name("CONNECT_OPEN").map(|p| p.number),
            Some(1)
        );
        assert!(REMOTE.procedure(0).is_none());
    }
}
