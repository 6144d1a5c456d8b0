//! libvirt-style logging on top of `tracing`: a global level, filters and outputs
//! in libvirt's syntax, changeable at run time (virt-admin `daemon-log-filters` and
//! `daemon-log-outputs`).
//!
//! * Levels: `1` debug, `2` info, `3` warning, `4` error. `tracing`'s TRACE and
//!   DEBUG are debug, INFO info, WARN warning, ERROR error.
//! * Filters: space-separated `LEVEL:match`, e.g. `1:rpc 3:util`. An event passes
//!   if the first filter whose match is a substring of its target (also tried
//!   with `::` written as `.`) has a level at or below the event's; if no filter
//!   matches, the global level decides. A leading `+` on the match is accepted
//!   and ignored (libvirt uses it for stack traces).
//! * Outputs: space-separated `LEVEL:stderr`, `LEVEL:file:/abs/path`,
//!   `LEVEL:syslog:ident` or `LEVEL:journald`. A passing event is written to
//!   every output whose level is at or below its own.
//!
//! Lines written to stderr and files look like libvirt's:
//! `2026-11-26 01:28:57.123+0000: 4242: warning : modvirt_runtime::server : message key=value`.
//! journald receives native-protocol datagrams (`MESSAGE=`, `PRIORITY=`,
//! `SYSLOG_IDENTIFIER=`, …) on `/run/systemd/journal/socket`; syslog receives
//! `<PRI>ident[pid]: …` datagrams on `/dev/log`.
//!
//! The live configuration sits behind an `RwLock<Arc<…>>`: an event takes the
//! read lock only long enough to clone the `Arc`, and an atomic lower bound on
//! interesting levels rejects most filtered-out events without any lock.
//! Writing never blocks on sockets and never panics; failed writes are counted
//! in [`Logging::dropped`].

mod layer;
mod sink;

pub use layer::LogLayer;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use sink::{Sink, SocketPaths};

/// A libvirt log priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug = 1,
    Info = 2,
    Warning = 3,
    Error = 4,
}

impl LogLevel {
    /// The word libvirt prints in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }

    /// The number used in configuration strings.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<u32> for LogLevel {
    type Error = LogConfigError;

    fn try_from(value: u32) -> Result<LogLevel, LogConfigError> {
        match value {
            1 => Ok(LogLevel::Debug),
            2 => Ok(LogLevel::Info),
            3 => Ok(LogLevel::Warning),
            4 => Ok(LogLevel::Error),
            _ => Err(LogConfigError::InvalidLevel { value }),
        }
    }
}

impl From<tracing::Level> for LogLevel {
    fn from(level: tracing::Level) -> LogLevel {
        match level {
            tracing::Level::TRACE | tracing::Level::DEBUG => LogLevel::Debug,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::WARN => LogLevel::Warning,
            _ => LogLevel::Error,
        }
    }
}

/// `LEVEL:pattern`: events whose target contains `pattern` pass at `level` and above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFilter {
    pub pattern: String,
    pub level: LogLevel,
}

/// Where an output writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogDest {
    Stderr,
    File(PathBuf),
    /// Syslog via `/dev/log`, with this identifier.
    Syslog(String),
    Journald,
}

/// `LEVEL:destination`: passing events at `level` and above go to `dest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOutput {
    pub level: LogLevel,
    pub dest: LogDest,
}

/// A log level, filter or output that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogConfigError {
    #[error("Invalid log level {value}: level must be 1 (debug) .. 4 (error)")]
    InvalidLevel { value: u32 },
    #[error("Invalid log filter '{spec}': {reason}")]
    InvalidFilter { spec: String, reason: String },
    #[error("Invalid log output '{spec}': {reason}")]
    InvalidOutput { spec: String, reason: String },
    #[error("cannot open log file {}: {reason}", path.display())]
    OpenFile { path: PathBuf, reason: String },
    #[error("{dest} is not available: {reason}")]
    Unavailable { dest: &'static str, reason: String },
    #[error("cannot install the logger: a global tracing subscriber is already set")]
    AlreadyInitialized,
}

const LEVEL_RANGE: &str = "level must be 1 (debug) .. 4 (error)";

fn parse_level(s: &str) -> Option<LogLevel> {
    s.parse::<u32>().ok().and_then(|n| LogLevel::try_from(n).ok())
}

/// Parses space-separated `LEVEL:match` filters.
pub fn parse_filters(s: &str) -> Result<Vec<LogFilter>, LogConfigError> {
    s.split_whitespace()
        .map(|spec| {
            let err = |reason: &str| LogConfigError::InvalidFilter {
                spec: spec.to_owned(),
                reason: reason.to_owned(),
            };
            let (level, pattern) = spec.split_once(':').ok_or_else(|| err("expected LEVEL:MATCH"))?;
            let level = parse_level(level).ok_or_else(|| err(LEVEL_RANGE))?;
            let pattern = pattern.strip_prefix('+').unwrap_or(pattern);
            if pattern.is_empty() {
                return Err(err("the match must not be empty"));
            }
            Ok(LogFilter {
                pattern: pattern.to_owned(),
                level,
            })
        })
        .collect()
}

/// Formats filters the way [`parse_filters`] reads them: `1:rpc 3:util`.
pub fn format_filters(filters: &[LogFilter]) -> String {
    let specs: Vec<String> = filters
        .iter()
        .map(|f| format!("{}:{}", f.level.as_u32(), f.pattern))
        .collect();
    specs.join(" ")
}

/// Parses space-separated outputs: `LEVEL:stderr`, `LEVEL:file:/abs/path`,
/// `LEVEL:syslog:ident`, `LEVEL:journald`. Nothing is opened.
pub fn parse_outputs(s: &str) -> Result<Vec<LogOutput>, LogConfigError> {
    s.split_whitespace().map(parse_output).collect()
}

fn parse_output(spec: &str) -> Result<LogOutput, LogConfigError> {
    let err = |reason: &str| LogConfigError::InvalidOutput {
        spec: spec.to_owned(),
        reason: reason.to_owned(),
    };
    let (level, rest) = spec
        .split_once(':')
        .ok_or_else(|| err("expected LEVEL:DESTINATION"))?;
    let level = parse_level(level).ok_or_else(|| err(LEVEL_RANGE))?;
    let (kind, arg) = match rest.split_once(':') {
        Some((kind, arg)) => (kind, Some(arg)),
        None => (rest, None),
    };
    let dest = match (kind, arg) {
        ("stderr", None) => LogDest::Stderr,
        ("journald", None) => LogDest::Journald,
        ("stderr" | "journald", Some(_)) => return Err(err(&format!("{kind} takes no argument"))),
        ("file", None | Some("")) => return Err(err("file output needs a path")),
        ("file", Some(path)) if !path.starts_with('/') => {
            return Err(err("file path must be absolute"));
        }
        ("file", Some(path)) => LogDest::File(PathBuf::from(path)),
        ("syslog", None | Some("")) => return Err(err("syslog output needs an identifier")),
        ("syslog", Some(ident)) => LogDest::Syslog(ident.to_owned()),
        _ => {
            return Err(err(&format!(
                "unknown destination '{kind}': expected stderr, file, syslog or journald"
            )));
        }
    };
    Ok(LogOutput { level, dest })
}

/// Formats outputs the way [`parse_outputs`] reads them: `3:stderr 1:file:/x.log`.
pub fn format_outputs(outputs: &[LogOutput]) -> String {
    let specs: Vec<String> = outputs
        .iter()
        .map(|o| {
            let level = o.level.as_u32();
            match &o.dest {
                LogDest::Stderr => format!("{level}:stderr"),
                LogDest::File(path) => format!("{level}:file:{}", path.display()),
                LogDest::Syslog(ident) => format!("{level}:syslog:{ident}"),
                LogDest::Journald => format!("{level}:journald"),
            }
        })
        .collect();
    specs.join(" ")
}

/// A filter with its match precomputed in `::` form, so matching allocates nothing.
#[derive(Debug)]
struct CompiledFilter {
    filter: LogFilter,
    /// `pattern` with `.` written as `::`, if it contains a `.`.
    colons: Option<String>,
}

impl CompiledFilter {
    fn new(filter: LogFilter) -> CompiledFilter {
        let colons = filter
            .pattern
            .contains('.')
            .then(|| filter.pattern.replace('.', "::"));
        CompiledFilter { filter, colons }
    }

    fn matches(&self, target: &str) -> bool {
        target.contains(self.filter.pattern.as_str())
            || self.colons.as_deref().is_some_and(|c| target.contains(c))
    }
}

/// One immutable configuration; replaced as a whole on every change.
#[derive(Debug)]
struct LiveConfig {
    level: LogLevel,
    filters: Arc<[CompiledFilter]>,
    outputs: Arc<[OpenOutput]>,
}

/// An output and its opened destination.
#[derive(Debug)]
struct OpenOutput {
    output: LogOutput,
    sink: Sink,
}

/// Stored in [`Shared::min_level`] when no event can be written at all.
const NOTHING_PASSES: u8 = 5;

impl LiveConfig {
    /// Whether an event passes the filters, or the global level if none matches.
    fn passes(&self, level: LogLevel, target: &str) -> bool {
        match self.filters.iter().find(|f| f.matches(target)) {
            Some(f) => f.filter.level <= level,
            None => self.level <= level,
        }
    }

    /// The lowest level an event can have and still be written somewhere.
    fn min_level(&self) -> u8 {
        let Some(output) = self.outputs.iter().map(|o| o.output.level).min() else {
            return NOTHING_PASSES;
        };
        let filtered = self
            .filters
            .iter()
            .map(|f| f.filter.level)
            .chain([self.level])
            .min()
            .unwrap_or(self.level);
        output.max(filtered) as u8
    }
}

#[derive(Debug)]
struct Shared {
    program: String,
    default_outputs: Vec<LogOutput>,
    sockets: SocketPaths,
    live: RwLock<Arc<LiveConfig>>,
    /// `LiveConfig::min_level` of `live`, readable without the lock.
    min_level: AtomicU8,
    dropped: AtomicU64,
}

impl Shared {
    fn snapshot(&self) -> Arc<LiveConfig> {
        Arc::clone(&self.live.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the live configuration with `change(current)`, atomically with
    /// respect to other changes.
    fn update(&self, change: impl FnOnce(&LiveConfig) -> LiveConfig) {
        let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
        let next = change(&live);
        self.min_level.store(next.min_level(), Ordering::Relaxed);
        *live = Arc::new(next);
    }

    fn open_outputs(&self, outputs: Vec<LogOutput>) -> Result<Arc<[OpenOutput]>, LogConfigError> {
        outputs
            .into_iter()
            .map(|o| {
                let sink = Sink::open(&o.dest, &self.program, &self.sockets)?;
                Ok(OpenOutput { output: o, sink })
            })
            .collect()
    }
}

/// A cheap, cloneable handle on the live logging configuration.
#[derive(Clone, Debug)]
pub struct Logging {
    shared: Arc<Shared>,
}

impl Logging {
    /// Builds the configuration and installs `tracing_subscriber::registry()` with
    /// our layer as the global subscriber. `program` identifies the daemon to
    /// journald; `default_outputs` is used when `outputs` is `None` or empty.
    pub fn init(
        program: &str,
        level: LogLevel,
        filters: Option<&str>,
        outputs: Option<&str>,
        default_outputs: &str,
    ) -> Result<Logging, LogConfigError> {
        let nothing = tracing_subscriber::layer::Identity::new();
        Logging::init_with(program, level, filters, outputs, default_outputs, nothing)
    }

    /// Like [`Logging::init`], with one more layer (the span recorder)
    /// stacked on the same subscriber.
    pub fn init_with<L>(
        program: &str,
        level: LogLevel,
        filters: Option<&str>,
        outputs: Option<&str>,
        default_outputs: &str,
        extra: L,
    ) -> Result<Logging, LogConfigError>
    where
        L: tracing_subscriber::Layer<
                tracing_subscriber::layer::Layered<LogLayer, tracing_subscriber::Registry>,
            > + Send
            + Sync
            + 'static,
    {
        use tracing_subscriber::layer::SubscriberExt;

        let (logging, layer) = Logging::new_layer(program, level, filters, outputs, default_outputs)?;
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer).with(extra))
            .map_err(|_| LogConfigError::AlreadyInitialized)?;
        Ok(logging)
    }

    /// Like [`Logging::init`] but installs nothing: returns the handle and the
    /// layer, e.g. for `tracing::subscriber::with_default` in tests.
    pub fn new_layer(
        program: &str,
        level: LogLevel,
        filters: Option<&str>,
        outputs: Option<&str>,
        default_outputs: &str,
    ) -> Result<(Logging, LogLayer), LogConfigError> {
        let sockets = SocketPaths::default();
        Logging::build(program, level, filters, outputs, default_outputs, sockets)
    }

    fn build(
        program: &str,
        level: LogLevel,
        filters: Option<&str>,
        outputs: Option<&str>,
        default_outputs: &str,
        sockets: SocketPaths,
    ) -> Result<(Logging, LogLayer), LogConfigError> {
        let default_outputs = parse_outputs(default_outputs)?;
        let filters = parse_filters(filters.unwrap_or(""))?;
        let outputs = match outputs.map(str::trim) {
            None | Some("") => default_outputs.clone(),
            Some(s) => parse_outputs(s)?,
        };
        let empty = LiveConfig {
            level,
            filters: Arc::from([]),
            outputs: Arc::from([]),
        };
        let shared = Arc::new(Shared {
            program: program.to_owned(),
            default_outputs,
            sockets,
            min_level: AtomicU8::new(empty.min_level()),
            live: RwLock::new(Arc::new(empty)),
            dropped: AtomicU64::new(0),
        });
        let outputs = shared.open_outputs(outputs)?;
        let filters: Arc<[CompiledFilter]> = filters.into_iter().map(CompiledFilter::new).collect();
        shared.update(|_| LiveConfig {
            level,
            filters,
            outputs,
        });
        let layer = LogLayer::new(Arc::clone(&shared));
        Ok((Logging { shared }, layer))
    }

    /// Replaces the outputs; `""` restores the default outputs. Every output is
    /// opened first: if any fails, nothing changes.
    pub fn set_outputs(&self, s: &str) -> Result<(), LogConfigError> {
        let outputs = match s.trim() {
            "" => self.shared.default_outputs.clone(),
            s => parse_outputs(s)?,
        };
        let outputs = self.shared.open_outputs(outputs)?;
        self.shared.update(|cur| LiveConfig {
            level: cur.level,
            filters: Arc::clone(&cur.filters),
            outputs,
        });
        Ok(())
    }

    /// Replaces the filters; `""` removes them all.
    pub fn set_filters(&self, s: &str) -> Result<(), LogConfigError> {
        let filters: Arc<[CompiledFilter]> = parse_filters(s)?.into_iter().map(CompiledFilter::new).collect();
        self.shared.update(|cur| LiveConfig {
            level: cur.level,
            filters,
            outputs: Arc::clone(&cur.outputs),
        });
        Ok(())
    }

    /// Sets the level applied to events no filter matches.
    pub fn set_level(&self, level: LogLevel) {
        self.shared.update(|cur| LiveConfig {
            level,
            filters: Arc::clone(&cur.filters),
            outputs: Arc::clone(&cur.outputs),
        });
    }

    /// The global level.
    pub fn level(&self) -> LogLevel {
        self.shared.snapshot().level
    }

    /// The live outputs, formatted as [`format_outputs`] does.
    pub fn outputs(&self) -> String {
        let live = self.shared.snapshot();
        let outputs: Vec<LogOutput> = live.outputs.iter().map(|o| o.output.clone()).collect();
        format_outputs(&outputs)
    }

    /// The live filters, formatted as [`format_filters`] does.
    pub fn filters(&self) -> String {
        let live = self.shared.snapshot();
        let filters: Vec<LogFilter> = live.filters.iter().map(|f| f.filter.clone()).collect();
        format_filters(&filters)
    }

    pub fn noutputs(&self) -> u32 {
        u32::try_from(self.shared.snapshot().outputs.len()).unwrap_or(u32::MAX)
    }

    pub fn nfilters(&self) -> u32 {
        u32::try_from(self.shared.snapshot().filters.len()).unwrap_or(u32::MAX)
    }

    /// Log lines that could not be written (full socket, closed file, …) since start.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(level: LogLevel, pattern: &str) -> LogFilter {
        LogFilter {
            pattern: pattern.to_owned(),
            level,
        }
    }

    fn output_err(s: &str) -> String {
        match parse_outputs(s) {
            Err(e) => e.to_string(),
            Ok(o) => panic!("{s:?} parsed as {o:?}"),
        }
    }

    fn filter_err(s: &str) -> String {
        match parse_filters(s) {
            Err(e) => e.to_string(),
            Ok(f) => panic!("{s:?} parsed as {f:?}"),
        }
    }

    #[test]
    fn levels_convert() {
        assert_eq!(LogLevel::try_from(1).ok(), Some(LogLevel::Debug));
        assert_eq!(LogLevel::try_from(4).ok(), Some(LogLevel::Error));
        assert_eq!(
            LogLevel::try_from(0).err().map(|e| e.to_string()).as_deref(),
            Some("Invalid log level 0: level must be 1 (debug) .. 4 (error)")
        );
        assert!(LogLevel::try_from(5).is_err());
        assert_eq!(LogLevel::from(tracing::Level::TRACE), LogLevel::Debug);
        assert_eq!(LogLevel::from(tracing::Level::DEBUG), LogLevel::Debug);
        assert_eq!(LogLevel::from(tracing::Level::INFO), LogLevel::Info);
        assert_eq!(LogLevel::from(tracing::Level::WARN), LogLevel::Warning);
        assert_eq!(LogLevel::from(tracing::Level::ERROR), LogLevel::Error);
        assert!(LogLevel::Debug < LogLevel::Error);
        assert_eq!(LogLevel::Warning.to_string(), "warning");
    }

    #[test]
    fn filters_round_trip() {
        let parsed = parse_filters("  1:rpc\t3:util.json  +2:+qemu ").ok();
        assert_eq!(
            parsed,
            Some(vec![
                filter(LogLevel::Debug, "rpc"),
                filter(LogLevel::Warning, "util.json"),
                filter(LogLevel::Info, "qemu"),
            ])
        );
        let text = format_filters(&parsed.unwrap_or_default());
        assert_eq!(text, "1:rpc 3:util.json 2:qemu");
        assert_eq!(parse_filters(&text).ok().map(|f| format_filters(&f)), Some(text));
        assert_eq!(parse_filters("").ok(), Some(vec![]));
        assert_eq!(format_filters(&[]), "");
    }

    #[test]
    fn filter_errors() {
        assert_eq!(
            filter_err("1:rpc 9:util"),
            "Invalid log filter '9:util': level must be 1 (debug) .. 4 (error)"
        );
        assert_eq!(
            filter_err("rpc"),
            "Invalid log filter 'rpc': expected LEVEL:MATCH"
        );
        assert_eq!(
            filter_err("x:rpc"),
            "Invalid log filter 'x:rpc': level must be 1 (debug) .. 4 (error)"
        );
        assert_eq!(
            filter_err("1:"),
            "Invalid log filter '1:': the match must not be empty"
        );
        assert_eq!(
            filter_err("1:+"),
            "Invalid log filter '1:+': the match must not be empty"
        );
    }

    #[test]
    fn outputs_round_trip() {
        let text = "3:stderr 1:file:/var/log/libvirt/virtqemud.log 2:syslog:virtqemud 4:journald";
        let parsed = parse_outputs(text).ok();
        assert_eq!(
            parsed,
            Some(vec![
                LogOutput {
                    level: LogLevel::Warning,
                    dest: LogDest::Stderr
                },
                LogOutput {
                    level: LogLevel::Debug,
                    dest: LogDest::File(PathBuf::from("/var/log/libvirt/virtqemud.log"))
                },
                LogOutput {
                    level: LogLevel::Info,
                    dest: LogDest::Syslog("virtqemud".to_owned())
                },
                LogOutput {
                    level: LogLevel::Error,
                    dest: LogDest::Journald
                },
            ])
        );
        assert_eq!(format_outputs(&parsed.unwrap_or_default()), text);
        // A file path may contain colons.
        let odd = parse_outputs("1:file:/tmp/a:b.log").ok().unwrap_or_default();
        assert_eq!(format_outputs(&odd), "1:file:/tmp/a:b.log");
        assert_eq!(parse_outputs(" \n ").ok(), Some(vec![]));
    }

    #[test]
    fn output_errors() {
        let cases = [
            ("9:stderr", "level must be 1 (debug) .. 4 (error)"),
            ("0:stderr", "level must be 1 (debug) .. 4 (error)"),
            ("x:stderr", "level must be 1 (debug) .. 4 (error)"),
            ("3", "expected LEVEL:DESTINATION"),
            ("1:file:rel", "file path must be absolute"),
            ("1:file", "file output needs a path"),
            ("1:file:", "file output needs a path"),
            ("1:syslog", "syslog output needs an identifier"),
            ("1:syslog:", "syslog output needs an identifier"),
            ("1:stderr:x", "stderr takes no argument"),
            ("1:journald:x", "journald takes no argument"),
            (
                "1:tcp",
                "unknown destination 'tcp': expected stderr, file, syslog or journald",
            ),
        ];
        for (spec, reason) in cases {
            assert_eq!(
                output_err(&format!("3:stderr {spec}")),
                format!("Invalid log output '{spec}': {reason}")
            );
        }
    }

    #[test]
    fn filter_matching_uses_substrings_and_dotted_targets() {
        let f = CompiledFilter::new(filter(LogLevel::Debug, "rpc.server"));
        assert!(f.matches("modvirt_runtime::rpc::server"));
        assert!(f.matches("libvirt.rpc.server"));
        assert!(!f.matches("modvirt_runtime::rpc::client"));
        let f = CompiledFilter::new(filter(LogLevel::Debug, "rpc"));
        assert!(f.matches("modvirt_runtime::rpc::server"));
        assert!(!f.matches("modvirt_runtime::util"));
    }

    #[test]
    fn first_matching_filter_decides() {
        let filters: Arc<[CompiledFilter]> = parse_filters("4:rpc.keepalive 1:rpc")
            .ok()
            .unwrap_or_default()
            .into_iter()
            .map(CompiledFilter::new)
            .collect();
        let live = LiveConfig {
            level: LogLevel::Warning,
            filters,
            outputs: Arc::from([]),
        };
        // Matches "rpc.keepalive" first: only errors pass.
        assert!(!live.passes(LogLevel::Warning, "modvirt_runtime::rpc::keepalive"));
        assert!(live.passes(LogLevel::Error, "modvirt_runtime::rpc::keepalive"));
        // Matches "rpc": debug passes although the global level is warning.
        assert!(live.passes(LogLevel::Debug, "modvirt_runtime::rpc::server"));
        // No match: the global level decides.
        assert!(!live.passes(LogLevel::Info, "modvirt_runtime::daemon"));
        assert!(live.passes(LogLevel::Warning, "modvirt_runtime::daemon"));
    }

    #[test]
    fn min_level_bounds_what_can_pass() {
        let live = |level, filters: &str, outputs: &[LogLevel]| LiveConfig {
            level,
            filters: parse_filters(filters)
                .ok()
                .unwrap_or_default()
                .into_iter()
                .map(CompiledFilter::new)
                .collect(),
            outputs: outputs
                .iter()
                .map(|&level| {
                    let o = LogOutput {
                        level,
                        dest: LogDest::Stderr,
                    };
                    OpenOutput {
                        output: o,
                        sink: Sink::Stderr,
                    }
                })
                .collect(),
        };
        assert_eq!(live(LogLevel::Debug, "", &[]).min_level(), NOTHING_PASSES);
        assert_eq!(live(LogLevel::Warning, "", &[LogLevel::Debug]).min_level(), 3);
        assert_eq!(
            live(LogLevel::Warning, "1:rpc", &[LogLevel::Debug]).min_level(),
            1
        );
        assert_eq!(
            live(LogLevel::Debug, "", &[LogLevel::Error, LogLevel::Info]).min_level(),
            2
        );
    }
}
