//! The `tracing` layer that applies the live configuration to each event and
//! writes it to the outputs.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::sink::Record;
use super::{LogLevel, Shared};
use modvirt_wire::timestamp::libvirt as format_timestamp;

/// Writes the events that pass the live filters to the live outputs.
///
/// It filters in `on_event` only and never disables callsites, so layers
/// stacked beside it still see every event.
#[derive(Clone, Debug)]
pub struct LogLayer {
    shared: Arc<Shared>,
}

impl LogLayer {
    pub(super) fn new(shared: Arc<Shared>) -> LogLayer {
        LogLayer { shared }
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = LogLevel::from(*meta.level());
        // Cheap rejection of what no configuration change has made interesting.
        if (level as u8) < self.shared.min_level.load(Ordering::Relaxed) {
            return;
        }
        let live = self.shared.snapshot();
        if !live.passes(level, meta.target()) {
            return;
        }
        if !live.outputs.iter().any(|o| o.output.level <= level) {
            return;
        }
        let text = event_text(event);
        let line = format_line(SystemTime::now(), level, meta.target(), &text);
        let record = Record {
            level,
            target: meta.target(),
            text: &text,
            line: &line,
            file: meta.file(),
            line_no: meta.line(),
        };
        for open in live.outputs.iter().filter(|o| o.output.level <= level) {
            if open.sink.write(&record).is_err() {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// `<timestamp>: <thread id>: <level> : <target> : <text>\n`, as libvirt writes.
fn format_line(time: SystemTime, level: LogLevel, target: &str, text: &str) -> String {
    let tid = nix::unistd::gettid().as_raw();
    format!("{}: {tid}: {level} : {target} : {text}\n", format_timestamp(time))
}

/// The event's message followed by its other fields as ` key=value`.
fn event_text(event: &Event<'_>) -> String {
    let mut fields = FieldWriter::default();
    event.record(&mut fields);
    if fields.message.is_empty() {
        fields.rest.trim_start().to_owned()
    } else {
        fields.message.push_str(&fields.rest);
        fields.message
    }
}

#[derive(Default)]
struct FieldWriter {
    message: String,
    rest: String,
}

impl Visit for FieldWriter {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Writing to a String cannot fail.
        let _ = match field.name() {
            "message" => write!(self.message, "{value:?}"),
            name => write!(self.rest, " {name}={value:?}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::super::sink::SocketPaths;
    use super::super::{LogConfigError, Logging};
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::path::{Path, PathBuf};
    use tracing_subscriber::layer::SubscriberExt;

    const RPC: &str = "modvirt_runtime::rpc::server";
    const DAEMON: &str = "modvirt_runtime::daemon";

    struct Fixture {
        dir: tempfile::TempDir,
        sockets: SocketPaths,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().expect("tempdir");
            let sockets = SocketPaths {
                journald: dir.path().join("journal"),
                syslog: dir.path().join("devlog"),
            };
            Fixture { dir, sockets }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn file_output(&self, level: u32, name: &str) -> String {
            format!("{level}:file:{}", self.path(name).display())
        }

        fn logging(
            &self,
            level: LogLevel,
            filters: Option<&str>,
            outputs: Option<&str>,
            default_outputs: &str,
        ) -> (Logging, LogLayer) {
            let built = Logging::build(
                "virtqemud",
                level,
                filters,
                outputs,
                default_outputs,
                self.sockets.clone(),
            );
            match built {
                Ok(pair) => pair,
                Err(e) => panic!("cannot build logging: {e}"),
            }
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The `<level> : <target> : <text>` part of a line, checking the prefix.
    fn body(line: &str) -> String {
        let mut parts = line.splitn(3, ": ");
        let timestamp = parts.next().unwrap_or_default();
        let tid = parts.next().unwrap_or_default();
        assert_eq!(timestamp.len(), 28, "timestamp in {line:?}");
        assert!(timestamp.ends_with("+0000"), "timestamp in {line:?}");
        assert!(tid.parse::<i32>().is_ok(), "thread id in {line:?}");
        parts.next().unwrap_or_default().to_owned()
    }

    fn bodies(path: &Path) -> Vec<String> {
        lines(path).iter().map(|l| body(l)).collect()
    }

    fn with_layer(layer: LogLayer, f: impl FnOnce()) {
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    }

    #[test]
    fn lines_have_libvirt_format_and_fields() {
        let fx = Fixture::new();
        let (_log, layer) = fx.logging(LogLevel::Debug, None, None, &fx.file_output(1, "a.log"));
        with_layer(layer, || {
            tracing::info!(target: RPC, client = 7, name = "x", "hello {}", "world");
            tracing::warn!(target: DAEMON, reason = %"disk full");
            let err = std::io::Error::other("boom");
            tracing::error!(target: DAEMON, error = &err as &(dyn std::error::Error + 'static), "failed");
        });
        assert_eq!(
            bodies(&fx.path("a.log")),
            [
                "info : modvirt_runtime::rpc::server : hello world client=7 name=\"x\"",
                "warning : modvirt_runtime::daemon : reason=disk full",
                "error : modvirt_runtime::daemon : failed error=boom",
            ]
        );
    }

    #[test]
    fn global_and_output_levels_filter() {
        let fx = Fixture::new();
        let outputs = format!(
            "{} {}",
            fx.file_output(1, "all.log"),
            fx.file_output(4, "err.log")
        );
        let (log, layer) = fx.logging(LogLevel::Info, None, Some(&outputs), "3:stderr");
        with_layer(layer, || {
            tracing::trace!(target: DAEMON, "trace");
            tracing::debug!(target: DAEMON, "debug");
            tracing::info!(target: DAEMON, "info");
            tracing::warn!(target: DAEMON, "warn");
            tracing::error!(target: DAEMON, "error");
            log.set_level(LogLevel::Debug);
            tracing::debug!(target: DAEMON, "debug2");
            log.set_level(LogLevel::Error);
            tracing::warn!(target: DAEMON, "warn2");
        });
        let texts = |name: &str| -> Vec<String> {
            bodies(&fx.path(name))
                .iter()
                .map(|b| b.rsplit(" : ").next().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(texts("all.log"), ["info", "warn", "error", "debug2"]);
        assert_eq!(texts("err.log"), ["error"]);
        assert_eq!(log.level(), LogLevel::Error);
    }

    #[test]
    fn filters_override_the_global_level() {
        let fx = Fixture::new();
        let (log, layer) = fx.logging(
            LogLevel::Warning,
            Some("4:rpc.keepalive 1:rpc"),
            Some(&fx.file_output(1, "a.log")),
            "3:stderr",
        );
        with_layer(layer, || {
            tracing::debug!(target: RPC, "rpc debug");
            tracing::warn!(target: "modvirt_runtime::rpc::keepalive", "keepalive warn");
            tracing::error!(target: "modvirt_runtime::rpc::keepalive", "keepalive error");
            tracing::info!(target: DAEMON, "daemon info");
            tracing::warn!(target: DAEMON, "daemon warn");
            assert!(log.set_filters("").is_ok());
            tracing::debug!(target: RPC, "rpc debug after clear");
            tracing::warn!(target: RPC, "rpc warn after clear");
        });
        let got: Vec<String> = bodies(&fx.path("a.log"))
            .iter()
            .map(|b| b.rsplit(" : ").next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            got,
            [
                "rpc debug",
                "keepalive error",
                "daemon warn",
                "rpc warn after clear"
            ]
        );
        assert_eq!(log.nfilters(), 0);
    }

    #[test]
    fn set_outputs_switches_files() {
        let fx = Fixture::new();
        let (log, layer) = fx.logging(
            LogLevel::Debug,
            None,
            Some(&fx.file_output(1, "a.log")),
            "3:stderr",
        );
        with_layer(layer, || {
            tracing::info!(target: DAEMON, "first");
            assert!(log.set_outputs(&fx.file_output(2, "b.log")).is_ok());
            tracing::info!(target: DAEMON, "second");
            tracing::debug!(target: DAEMON, "below b's level");
        });
        assert_eq!(
            bodies(&fx.path("a.log")),
            ["info : modvirt_runtime::daemon : first"]
        );
        assert_eq!(
            bodies(&fx.path("b.log")),
            ["info : modvirt_runtime::daemon : second"]
        );
        assert_eq!(log.outputs(), fx.file_output(2, "b.log"));
        assert_eq!(log.noutputs(), 1);
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn failed_set_outputs_changes_nothing() {
        let fx = Fixture::new();
        let a = fx.file_output(1, "a.log");
        let (log, layer) = fx.logging(LogLevel::Debug, None, Some(&a), "3:stderr");
        let bad_dir = format!("1:file:{}", fx.path("nodir/x.log").display());
        with_layer(layer, || {
            // The first output opens, the second does not: neither is installed.
            let both = format!("{} {bad_dir}", fx.file_output(1, "b.log"));
            assert!(matches!(
                log.set_outputs(&both),
                Err(LogConfigError::OpenFile { .. })
            ));
            assert!(matches!(
                log.set_outputs("1:journald"),
                Err(LogConfigError::Unavailable { dest: "journald", .. })
            ));
            assert!(matches!(
                log.set_outputs("1:syslog:x"),
                Err(LogConfigError::Unavailable { dest: "syslog", .. })
            ));
            assert!(matches!(
                log.set_outputs("9:stderr"),
                Err(LogConfigError::InvalidOutput { .. })
            ));
            assert!(log.set_filters("1:rpc 0:x").is_err());
            tracing::info!(target: DAEMON, "still here");
        });
        assert_eq!(log.outputs(), a);
        assert_eq!(log.filters(), "");
        assert_eq!(
            bodies(&fx.path("a.log")),
            ["info : modvirt_runtime::daemon : still here"]
        );
        assert!(lines(&fx.path("b.log")).is_empty());
    }

    #[test]
    fn empty_outputs_mean_the_defaults() {
        let fx = Fixture::new();
        let default = fx.file_output(3, "default.log");
        let (log, layer) = fx.logging(LogLevel::Debug, None, Some(""), &default);
        assert_eq!(log.outputs(), default);
        with_layer(layer, || {
            assert!(log.set_outputs(&fx.file_output(1, "a.log")).is_ok());
            assert!(log.set_outputs("  ").is_ok());
            tracing::warn!(target: DAEMON, "to default");
        });
        assert_eq!(log.outputs(), default);
        assert_eq!(lines(&fx.path("default.log")).len(), 1);
        let (log, _layer) = fx.logging(LogLevel::Debug, None, None, &default);
        assert_eq!(log.outputs(), default);
    }

    #[test]
    fn accessors_report_the_live_configuration() {
        let fx = Fixture::new();
        let (log, _layer) = fx.logging(
            LogLevel::Warning,
            Some("1:rpc +3:util"),
            Some("3:stderr 4:stderr"),
            "",
        );
        assert_eq!(log.filters(), "1:rpc 3:util");
        assert_eq!(log.nfilters(), 2);
        assert_eq!(log.outputs(), "3:stderr 4:stderr");
        assert_eq!(log.noutputs(), 2);
        let clone = log.clone();
        assert!(clone.set_filters("2:qemu").is_ok());
        assert_eq!(log.filters(), "2:qemu");
    }

    #[test]
    fn bad_initial_configuration_is_rejected() {
        let sockets = SocketPaths::default();
        let build = |filters, outputs, default: &str| {
            Logging::build("p", LogLevel::Debug, filters, outputs, default, sockets.clone()).err()
        };
        assert!(matches!(
            build(None, None, "3:nowhere"),
            Some(LogConfigError::InvalidOutput { .. })
        ));
        assert!(matches!(
            build(Some("rpc"), None, "3:stderr"),
            Some(LogConfigError::InvalidFilter { .. })
        ));
        assert!(matches!(
            build(None, Some("1:file:/nonexistent-dir/x.log"), "3:stderr"),
            Some(LogConfigError::OpenFile { .. })
        ));
        assert!(matches!(
            Logging::new_layer("p", LogLevel::Debug, None, Some("x"), "3:stderr").err(),
            Some(LogConfigError::InvalidOutput { .. })
        ));
    }

    #[test]
    fn journald_receives_events_and_failures_are_counted() {
        let fx = Fixture::new();
        let journal = UnixDatagram::bind(&fx.sockets.journald).expect("bind");
        journal
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let (log, layer) = fx.logging(LogLevel::Debug, None, Some("2:journald"), "3:stderr");
        with_layer(layer, || {
            tracing::debug!(target: DAEMON, "not at this level");
            tracing::warn!(target: DAEMON, "multi\nline");
            drop(journal_recv(&journal));
            drop(journal);
            tracing::error!(target: DAEMON, "nobody listens");
        });
        assert_eq!(log.dropped(), 1);
    }

    fn journal_recv(journal: &UnixDatagram) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let n = journal.recv(&mut buf).expect("recv");
        buf.truncate(n);
        let mut expected = b"MESSAGE\n".to_vec();
        expected.extend_from_slice(&10u64.to_le_bytes());
        expected.extend_from_slice(b"multi\nline\nPRIORITY=4\nSYSLOG_IDENTIFIER=virtqemud\n");
        assert!(
            buf.starts_with(&expected),
            "got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf
    }

    #[test]
    fn syslog_receives_events() {
        let fx = Fixture::new();
        let devlog = UnixDatagram::bind(&fx.sockets.syslog).expect("bind");
        devlog
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let (log, layer) = fx.logging(LogLevel::Debug, None, Some("1:syslog:libvirtd"), "3:stderr");
        with_layer(layer, || tracing::info!(target: DAEMON, "hello"));
        let mut buf = [0u8; 1024];
        let n = devlog.recv(&mut buf).expect("recv");
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        let expected = format!(
            "<30>libvirtd[{}]: info : modvirt_runtime::daemon : hello",
            std::process::id()
        );
        assert_eq!(got, expected);
        assert_eq!(log.outputs(), "1:syslog:libvirtd");
    }

    #[test]
    fn no_outputs_write_nothing_and_never_panic() {
        let fx = Fixture::new();
        let (log, layer) = fx.logging(LogLevel::Debug, None, None, "");
        with_layer(layer, || tracing::error!(target: DAEMON, "into the void"));
        assert_eq!(log.noutputs(), 0);
        assert_eq!(log.dropped(), 0);
    }
}
