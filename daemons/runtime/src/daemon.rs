//! The daemon: one generic entry point that every modvirt daemon binary
//! calls with its [`DaemonSpec`].
//!
//! Start-up, in order (each step a timed phase, see `observe::phases`):
//! flags → paths (`--root`/`MODVIRT_ROOT`) → configuration file → (`-d`:
//! fork and detach) → systemd activation fds, `NOTIFY_SOCKET` and
//! `MODVIRT_SPAWNED_BY` (taken while single-threaded; they decide the
//! activation cause) → logging and span recording → tokio runtime → pid
//! file lock → state file → sockets (activated, or bound here) → the two
//! servers (`<d>` with the REMOTE program; `admin` with the ADMIN and
//! OBSERVE programs) → driver initialisation → ready (`READY=1`). Then it
//! serves (see [`run`]) until the idle timer expires, or SIGTERM / SIGINT
//! arrive; SIGHUP reloads the configuration file.

mod run;

use crate::activation::{self, ActivationError};
use crate::cli::Cli;
use crate::config::{ConfFile, ConfigError, DaemonSettings};
use crate::daemonize::{self, StartupReport};
use crate::idle::IdleTimer;
use crate::listener::ListenError;
use crate::logging::{LogConfigError, LogLevel, Logging};
use crate::notify::Notifier;
use crate::observe::metrics::Metrics;
use crate::observe::spans::SpanRecorder;
use crate::observe::{Observer, cause, unix_ms};
use crate::paths::RuntimePaths;
use crate::pool::PoolError;
use crate::remote::DriverInfo;
use crate::server::Server;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use thiserror::Error;

/// How many finished spans a daemon keeps for SPANS readers.
pub const SPAN_RING_CAPACITY: usize = 4096;

/// The longest a driver's shutdown may take before the daemon exits anyway.
pub const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What makes one daemon binary different from another.
pub struct DaemonSpec {
    /// `virtqemud`, `virtnetworkd`, …
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    pub driver: Arc<dyn DriverInfo>,
}

impl std::fmt::Debug for DaemonSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonSpec").field("name", &self.name).finish()
    }
}

/// State shared by every part of a running daemon.
pub struct DaemonShared {
    pub name: String,
    pub paths: RuntimePaths,
    pub idle: IdleTimer,
    pub logging: Logging,
    pub observer: Arc<Observer>,
    pub metrics: Metrics,
    pub spans: SpanRecorder,
    /// Connections to peer daemons, for drivers that call them.
    pub peers: crate::peer::Peers,
    servers: OnceLock<Vec<Arc<Server>>>,
}

impl std::fmt::Debug for DaemonShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonShared")
            .field("name", &self.name)
            .field("paths", &self.paths)
            .finish()
    }
}

impl DaemonShared {
    /// The servers in libvirt's order: `<d>`, then `admin`.
    pub fn servers(&self) -> &[Arc<Server>] {
        self.servers.get().map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Why a daemon could not start (or reload).
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Logging(#[from] LogConfigError),
    #[error("socket activation: {0}")]
    Activation(#[from] ActivationError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("invalid worker pool settings: {0}")]
    Pool(#[from] PoolError),
    #[error("cannot daemonize: {0}")]
    Daemonize(std::io::Error),
    #[error("cannot start the event loop: {0}")]
    Runtime(std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("driver initialisation failed: {0}")]
    Driver(String),
    #[error("--listen: {0}")]
    NetListen(String),
}

/// Reads the configuration: an explicit `-f` file must exist; the default
/// file is optional (libvirt's daemons start on built-in defaults).
fn load_config(
    explicit: Option<&Path>,
    default: &Path,
) -> Result<(DaemonSettings, Option<PathBuf>), ConfigError> {
    let conf = match explicit {
        Some(p) => Some(ConfFile::load(p)?),
        None if default.exists() => Some(ConfFile::load(default)?),
        None => None,
    };
    match conf {
        Some(c) => Ok((DaemonSettings::from_conf(&c)?, c.path().map(Path::to_owned))),
        None => Ok((DaemonSettings::default(), None)),
    }
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The entry point of every daemon binary.
pub fn main(spec: DaemonSpec) -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command()
        .name(spec.name)
        .about(spec.about)
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if cli.version {
        println!(
            "{} (modvirt) {} (libvirt API 9.0.0)",
            spec.name,
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    let mut report = StartupReport::none();
    match start(spec.name, &spec, cli, &mut report) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = e.to_string();
            tracing::error!(target: "daemon", "{msg}");
            eprintln!("{}: error: {msg}", spec.name);
            report.report(Err(&msg));
            ExitCode::FAILURE
        }
    }
}

/// What `start` hands to the async part.
struct Startup<'a> {
    name: &'a str,
    spec: &'a DaemonSpec,
    cli: &'a Cli,
    paths: RuntimePaths,
    settings: DaemonSettings,
    conf_path: Option<PathBuf>,
    activated: Option<Vec<activation::ActivatedSocket>>,
    notifier: Arc<Notifier>,
    logging: Logging,
    spans: SpanRecorder,
    observer: Arc<Observer>,
    exec_time: Instant,
}

fn start(name: &str, spec: &DaemonSpec, mut cli: Cli, report: &mut StartupReport) -> Result<(), StartError> {
    let exec_time = Instant::now();
    let exec_ms = unix_ms();
    // `-d` changes directory to `/`, and SIGHUP re-reads the config file
    // later: make the paths given on the command line absolute first.
    for p in [&mut cli.root, &mut cli.config, &mut cli.pid_file]
        .into_iter()
        .flatten()
    {
        if let Ok(abs) = std::path::absolute(&*p) {
            *p = abs;
        }
    }
    let paths = RuntimePaths::resolve(name, cli.root.as_deref(), nix::unistd::getuid().as_raw());
    let config_start = Instant::now();
    let (settings, conf_path) = load_config(cli.config.as_deref(), &paths.config_file())?;
    let config_end = Instant::now();
    if cli.daemon {
        // SAFETY: no thread has been started yet.
        *report = unsafe { daemonize::daemonize(name) }.map_err(StartError::Daemonize)?;
    }
    // SAFETY: still single-threaded: the runtime is built below.
    let activated = unsafe { activation::take_from_env(name, spec.driver.listens_on_network()) }?;
    // SAFETY: as above.
    let notifier = Arc::new(unsafe { Notifier::from_env() });
    let spawned_by = std::env::var(cause::SPAWNED_BY_ENV).ok();
    // SAFETY: as above; a daemon this one spawns must not inherit it.
    unsafe { std::env::remove_var(cause::SPAWNED_BY_ENV) };
    let activation = cause::detect(name, activated.as_deref(), spawned_by.as_deref());
    raise_fd_limit();
    let mut level = LogLevel::try_from(settings.log_level).unwrap_or(LogLevel::Warning);
    if cli.verbose && level > LogLevel::Info {
        level = LogLevel::Info;
    }
    // As libvirt: the default output carries the default log level.
    let default_outputs = if cli.daemon {
        let _ = std::fs::create_dir_all(&paths.log_dir);
        format!("{}:file:{}", level.as_u32(), paths.log_file().display())
    } else {
        format!("{}:stderr", level.as_u32())
    };
    let (spans, span_layer) = SpanRecorder::new(name, SPAN_RING_CAPACITY);
    let logging = Logging::init_with(
        name,
        level,
        settings.log_filters.as_deref(),
        settings.log_outputs.as_deref(),
        &default_outputs,
        span_layer,
    )?;
    let n = notifier.clone();
    let phases = crate::observe::phases::Phases::new(exec_time, move |t| n.status(t));
    phases.record("config", config_start, config_end);
    let observer = Arc::new(Observer::new(name, exec_ms, activation, phases));
    observer.set_call_spans(settings.call_spans);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(format!("{name}-rt"))
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let startup = Startup {
        name,
        spec,
        cli: &cli,
        paths,
        settings,
        conf_path,
        activated,
        notifier,
        logging,
        spans,
        observer,
        exec_time,
    };
    runtime.block_on(run::run(startup, report))
}
