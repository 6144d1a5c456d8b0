//! Opened log destinations and the bytes each one receives.
//!
//! * stderr and files get the formatted text line;
//! * journald gets one datagram in its native protocol: `FIELD=value\n` per
//!   field, or `FIELD\n` + 64-bit little-endian length + value + `\n` when the
//!   value contains a newline;
//! * syslog gets one RFC 3164-style datagram `<PRI>ident[pid]: text` with
//!   facility daemon; the receiver stamps the time.
//!
//! Sockets are non-blocking and unconnected (each datagram is addressed), so a
//! restarted journald is picked up and a full socket drops the line instead of
//! stalling the caller.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::{LogConfigError, LogDest, LogLevel};

/// Where the journald and syslog sockets live (overridden in tests).
#[derive(Clone, Debug)]
pub(super) struct SocketPaths {
    pub(super) journald: PathBuf,
    pub(super) syslog: PathBuf,
}

impl Default for SocketPaths {
    fn default() -> SocketPaths {
        SocketPaths {
            journald: PathBuf::from("/run/systemd/journal/socket"),
            syslog: PathBuf::from("/dev/log"),
        }
    }
}

/// One event, ready to be written: what every destination needs.
#[derive(Debug)]
pub(super) struct Record<'a> {
    pub(super) level: LogLevel,
    pub(super) target: &'a str,
    /// The message followed by ` key=value` fields.
    pub(super) text: &'a str,
    /// The full libvirt-style line, newline included.
    pub(super) line: &'a str,
    pub(super) file: Option<&'a str>,
    pub(super) line_no: Option<u32>,
}

/// An opened destination.
#[derive(Debug)]
pub(super) enum Sink {
    Stderr,
    File(File),
    Syslog {
        socket: UnixDatagram,
        path: PathBuf,
        ident: String,
    },
    Journald {
        socket: UnixDatagram,
        path: PathBuf,
        ident: String,
    },
}

impl Sink {
    /// Opens `dest`: creates or appends to a file (mode 0600), or checks that the
    /// socket exists. `program` is the journald identifier.
    pub(super) fn open(dest: &LogDest, program: &str, sockets: &SocketPaths) -> Result<Sink, LogConfigError> {
        match dest {
            LogDest::Stderr => Ok(Sink::Stderr),
            LogDest::File(path) => open_file(path).map(Sink::File),
            LogDest::Syslog(ident) => Ok(Sink::Syslog {
                socket: open_socket("syslog", &sockets.syslog)?,
                path: sockets.syslog.clone(),
                ident: ident.clone(),
            }),
            LogDest::Journald => Ok(Sink::Journald {
                socket: open_socket("journald", &sockets.journald)?,
                path: sockets.journald.clone(),
                ident: program.to_owned(),
            }),
        }
    }

    /// Writes one record. Errors are for the caller to count, never to panic on.
    pub(super) fn write(&self, record: &Record<'_>) -> io::Result<()> {
        match self {
            Sink::Stderr => io::stderr().lock().write_all(record.line.as_bytes()),
            Sink::File(file) => (&*file).write_all(record.line.as_bytes()),
            Sink::Syslog { socket, path, ident } => {
                send(socket, path, syslog_datagram(record, ident).as_bytes())
            }
            Sink::Journald { socket, path, ident } => send(socket, path, &journald_datagram(record, ident)),
        }
    }
}

fn send(socket: &UnixDatagram, path: &Path, datagram: &[u8]) -> io::Result<()> {
    let sent = socket.send_to(datagram, path)?;
    if sent == datagram.len() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::WriteZero, "truncated datagram"))
    }
}

fn open_file(path: &Path) -> Result<File, LogConfigError> {
    let err = |reason: String| LogConfigError::OpenFile {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = path.parent()
        && !dir.is_dir()
    {
        return Err(err(format!("directory {} does not exist", dir.display())));
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| err(io_reason(&e)))
}

fn open_socket(dest: &'static str, path: &Path) -> Result<UnixDatagram, LogConfigError> {
    let err = |reason: String| LogConfigError::Unavailable { dest, reason };
    if !path.exists() {
        return Err(err(format!("{} does not exist", path.display())));
    }
    let socket = UnixDatagram::unbound().map_err(|e| err(io_reason(&e)))?;
    socket.set_nonblocking(true).map_err(|e| err(io_reason(&e)))?;
    Ok(socket)
}

/// The text of an I/O error without Rust's " (os error N)" suffix.
fn io_reason(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_owned(),
        None => err.to_string(),
    }
}

/// The syslog severity of a level (also journald's `PRIORITY=`).
fn syslog_severity(level: LogLevel) -> u8 {
    match level {
        LogLevel::Debug => 7,
        LogLevel::Info => 6,
        LogLevel::Warning => 4,
        LogLevel::Error => 3,
    }
}

/// Syslog facility "daemon".
const FACILITY_DAEMON: u8 = 3;

fn syslog_datagram(record: &Record<'_>, ident: &str) -> String {
    let pri = FACILITY_DAEMON * 8 + syslog_severity(record.level);
    format!(
        "<{pri}>{ident}[{}]: {} : {} : {}",
        std::process::id(),
        record.level,
        record.target,
        record.text
    )
}

fn journald_datagram(record: &Record<'_>, ident: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.text.len() + 128);
    journald_field(&mut out, "MESSAGE", record.text);
    journald_field(&mut out, "PRIORITY", &syslog_severity(record.level).to_string());
    journald_field(&mut out, "SYSLOG_IDENTIFIER", ident);
    journald_field(&mut out, "MODVIRT_TARGET", record.target);
    if let Some(file) = record.file {
        journald_field(&mut out, "CODE_FILE", file);
    }
    if let Some(line) = record.line_no {
        journald_field(&mut out, "CODE_LINE", &line.to_string());
    }
    out
}

fn journald_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn record(text: &str) -> Record<'_> {
        Record {
            level: LogLevel::Warning,
            target: "modvirt_runtime::rpc",
            text,
            line: "",
            file: Some("src/rpc.rs"),
            line_no: Some(42),
        }
    }

    #[test]
    fn journald_fields_use_binary_form_for_newlines() {
        let mut out = Vec::new();
        journald_field(&mut out, "A", "plain");
        journald_field(&mut out, "B", "two\nlines");
        let mut expected = b"A=plain\nB\n".to_vec();
        expected.extend_from_slice(&9u64.to_le_bytes());
        expected.extend_from_slice(b"two\nlines\n");
        assert_eq!(out, expected);
    }

    #[test]
    fn journald_datagram_has_the_standard_fields() {
        let datagram = journald_datagram(&record("hello x=1"), "virtqemud");
        let text = String::from_utf8_lossy(&datagram);
        assert_eq!(
            text,
            "MESSAGE=hello x=1\nPRIORITY=4\nSYSLOG_IDENTIFIER=virtqemud\n\
             MODVIRT_TARGET=modvirt_runtime::rpc\nCODE_FILE=src/rpc.rs\nCODE_LINE=42\n"
        );
    }

    #[test]
    fn syslog_datagram_is_rfc3164_like() {
        let datagram = syslog_datagram(&record("hello"), "libvirtd");
        assert_eq!(
            datagram,
            format!(
                "<28>libvirtd[{}]: warning : modvirt_runtime::rpc : hello",
                std::process::id()
            )
        );
    }

    #[test]
    fn files_are_created_private_and_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.log");
        std::fs::write(&path, "old\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let sink = Sink::open(&LogDest::File(path.clone()), "p", &SocketPaths::default());
        let mut rec = record("x");
        rec.line = "new\n";
        assert!(sink.expect("open").write(&rec).is_ok());
        assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some("old\nnew\n"));

        let fresh = dir.path().join("fresh.log");
        Sink::open(&LogDest::File(fresh.clone()), "p", &SocketPaths::default()).expect("open");
        let mode = std::fs::metadata(&fresh).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn file_errors_are_clear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nodir").join("x.log");
        let err = Sink::open(&LogDest::File(missing), "p", &SocketPaths::default()).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(format!(
                "cannot open log file {0}/nodir/x.log: directory {0}/nodir does not exist",
                dir.path().display()
            ))
        );
        let err = Sink::open(
            &LogDest::File(dir.path().to_path_buf()),
            "p",
            &SocketPaths::default(),
        )
        .err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(format!(
                "cannot open log file {}: Is a directory",
                dir.path().display()
            ))
        );
    }

    #[test]
    fn missing_sockets_are_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sockets = SocketPaths {
            journald: dir.path().join("journal"),
            syslog: dir.path().join("log"),
        };
        let err = Sink::open(&LogDest::Journald, "p", &sockets).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(format!(
                "journald is not available: {}/journal does not exist",
                dir.path().display()
            ))
        );
        let err = Sink::open(&LogDest::Syslog("x".into()), "p", &sockets).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(format!(
                "syslog is not available: {}/log does not exist",
                dir.path().display()
            ))
        );
    }

    #[test]
    fn sockets_receive_datagrams_and_a_gone_listener_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sockets = SocketPaths {
            journald: dir.path().join("journal"),
            syslog: dir.path().join("log"),
        };
        let journal = UnixDatagram::bind(&sockets.journald).expect("bind");
        let sink = Sink::open(&LogDest::Journald, "virtqemud", &sockets).expect("open");
        assert!(sink.write(&record("hi")).is_ok());
        let mut buf = [0u8; 1024];
        let n = journal.recv(&mut buf).expect("recv");
        assert!(buf[..n].starts_with(b"MESSAGE=hi\nPRIORITY=4\nSYSLOG_IDENTIFIER=virtqemud\n"));
        drop(journal);
        assert!(sink.write(&record("lost")).is_err());
    }
}
