//! The daemon: one generic entry point that every modvirt daemon binary
//! calls with its [`DaemonSpec`].
//!
//! Start-up, in order: flags → paths (`--root`/`MODVIRT_ROOT`) →
//! configuration file → (`-d`: fork and detach) → systemd activation fds and
//! `NOTIFY_SOCKET` (taken while single-threaded) → logging → tokio runtime →
//! pid file lock → sockets (activated, or bound here) → the two servers
//! (`<d>` with the REMOTE program, `admin` with the ADMIN program) → ready
//! (`READY=1`). Then it serves until the idle timer expires, or SIGTERM /
//! SIGINT arrive; SIGHUP reloads the configuration file. On the way out it
//! sends `STOPPING=1`, closes its clients and removes the sockets it bound
//! and its pid file.

use crate::activation::{self, ActivatedSocket, ActivationError};
use crate::admin::AdminProgram;
use crate::cli::Cli;
use crate::client;
use crate::config::{ConfFile, ConfigError, DaemonSettings};
use crate::daemonize::{self, StartupReport};
use crate::idle::IdleTimer;
use crate::listener::{self, BoundSocket, ListenError, PidFile};
use crate::logging::{LogConfigError, LogLevel, Logging};
use crate::notify::Notifier;
use crate::paths::{RuntimePaths, SocketRole};
use crate::pool::PoolError;
use crate::remote::{DriverInfo, RemoteProgram};
use crate::server::Server;
use clap::Parser;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use thiserror::Error;
use tokio::signal::unix::{SignalKind, signal};

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
    pub started: Instant,
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
    let cli = match Cli::try_parse() {
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

fn start(name: &str, spec: &DaemonSpec, mut cli: Cli, report: &mut StartupReport) -> Result<(), StartError> {
    let exec_time = Instant::now();
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
    let (settings, conf_path) = load_config(cli.config.as_deref(), &paths.config_file())?;
    if cli.daemon {
        // SAFETY: no thread has been started yet.
        *report = unsafe { daemonize::daemonize(name) }.map_err(StartError::Daemonize)?;
    }
    // SAFETY: still single-threaded: the runtime is built below.
    let activated = unsafe { activation::take_from_env(name) }?;
    // SAFETY: as above.
    let notifier = unsafe { Notifier::from_env() };
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
    let logging = Logging::init(
        name,
        level,
        settings.log_filters.as_deref(),
        settings.log_outputs.as_deref(),
        &default_outputs,
    )?;
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
        exec_time,
    };
    runtime.block_on(run(startup, report))
}

struct Startup<'a> {
    name: &'a str,
    spec: &'a DaemonSpec,
    cli: &'a Cli,
    paths: RuntimePaths,
    settings: DaemonSettings,
    conf_path: Option<PathBuf>,
    activated: Option<Vec<ActivatedSocket>>,
    notifier: Notifier,
    logging: Logging,
    exec_time: Instant,
}

/// A socket the daemon accepts on: which server, and read-only or not.
struct Service {
    role: SocketRole,
    listener: StdUnixListener,
    /// Keeps a bound socket's file until shutdown (removed on drop).
    _bound: Option<BoundSocket>,
}

fn services(s: &mut Startup<'_>) -> Result<Vec<Service>, StartError> {
    match s.activated.take() {
        Some(fds) => Ok(fds
            .into_iter()
            .map(|a| Service {
                role: a.role,
                listener: StdUnixListener::from(a.fd),
                _bound: None,
            })
            .collect()),
        None => listener::bind_all(&s.paths)?
            .into_iter()
            .map(|b| {
                let l = b.listener.try_clone().map_err(|source| ListenError::Bind {
                    path: b.path.clone(),
                    source,
                })?;
                Ok(Service {
                    role: b.role,
                    listener: l,
                    _bound: Some(b),
                })
            })
            .collect(),
    }
}

async fn run(mut s: Startup<'_>, report: &mut StartupReport) -> Result<(), StartError> {
    let name = s.name.to_owned();
    let idle = IdleTimer::new(s.cli.timeout.unwrap_or(0));
    let startup_hold = idle.inhibit("start-up");
    tracing::info!(target: "daemon", "{name} (modvirt {}) starting, libvirt API 9.0.0", env!("CARGO_PKG_VERSION"));
    if let Ok(h) = nix::unistd::gethostname() {
        tracing::info!(target: "daemon", "hostname: {}", h.to_string_lossy());
    }
    // Before the pid file and the sockets exist: a SIGTERM that arrives as
    // soon as a client can connect must still shut down cleanly.
    let mut sigterm = signal(SignalKind::terminate()).map_err(StartError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(StartError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(StartError::Signals)?;
    s.notifier.status("Starting: acquiring pid file");
    let pid_path = s.cli.pid_file.clone().unwrap_or_else(|| s.paths.pid_file.clone());
    let pid_file = PidFile::acquire(&name, &pid_path)?;
    s.notifier.status("Starting: opening sockets");
    let services = services(&mut s)?;
    let daemon = Arc::new(DaemonShared {
        name: name.clone(),
        paths: s.paths.clone(),
        idle: idle.clone(),
        logging: s.logging.clone(),
        started: s.exec_time,
        servers: OnceLock::new(),
    });
    s.notifier.status("Starting: servers");
    let main = Server::new(
        &name,
        &s.settings.main,
        Arc::new(RemoteProgram::new(s.spec.driver.clone())),
    )?;
    let admin = Server::new("admin", &s.settings.admin, Arc::new(AdminProgram))?;
    let _ = daemon.servers.set(vec![main.clone(), admin.clone()]);
    let mut accept_tasks = Vec::new();
    let mut keep = Vec::new();
    for svc in services {
        let server = if svc.role == SocketRole::Admin {
            admin.clone()
        } else {
            main.clone()
        };
        let readonly = svc.role == SocketRole::ReadOnly;
        svc.listener.set_nonblocking(true).map_err(StartError::Runtime)?;
        let l = tokio::net::UnixListener::from_std(svc.listener).map_err(StartError::Runtime)?;
        accept_tasks.push(tokio::spawn(accept_loop(
            daemon.clone(),
            server,
            l,
            readonly,
            svc.role,
        )));
        keep.push(svc._bound);
    }
    drop(startup_hold);
    let elapsed = s.exec_time.elapsed();
    tracing::info!(target: "daemon", "{name} ready in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    s.notifier.send("READY=1\nSTATUS=Running");
    report.report(Ok(()));
    loop {
        tokio::select! {
            _ = idle.expired() => {
                tracing::info!(target: "daemon", "idle for {} s with no clients: exiting", idle.timeout());
                break;
            }
            _ = sigterm.recv() => { tracing::info!(target: "daemon", "SIGTERM: shutting down"); break; }
            _ = sigint.recv() => { tracing::info!(target: "daemon", "SIGINT: shutting down"); break; }
            _ = sighup.recv() => reload(&daemon, s.conf_path.as_deref(), &s.paths, s.cli.config.is_some(), &s.notifier),
        }
    }
    s.notifier.send("STOPPING=1\nSTATUS=Shutting down");
    for t in accept_tasks {
        t.abort();
    }
    for srv in daemon.servers() {
        for c in srv.clients() {
            c.close();
        }
    }
    drop(keep);
    drop(pid_file);
    Ok(())
}

/// SIGHUP: re-reads the configuration and applies what can change live
/// (logging, worker pools, client limits). A bad file changes nothing.
fn reload(d: &DaemonShared, conf_path: Option<&Path>, paths: &RuntimePaths, explicit: bool, n: &Notifier) {
    n.send("RELOADING=1");
    let path = conf_path
        .map(Path::to_owned)
        .unwrap_or_else(|| paths.config_file());
    let result = load_config(explicit.then_some(path.as_path()), &path)
        .map_err(StartError::from)
        .and_then(|(st, _)| {
            let level = LogLevel::try_from(st.log_level).unwrap_or(LogLevel::Warning);
            d.logging.set_filters(st.log_filters.as_deref().unwrap_or(""))?;
            d.logging.set_outputs(st.log_outputs.as_deref().unwrap_or(""))?;
            d.logging.set_level(level);
            let servers = d.servers();
            if let [main, admin] = servers {
                main.apply(&st.main)?;
                admin.apply(&st.admin)?;
            }
            Ok(())
        });
    match result {
        Ok(()) => tracing::info!(target: "daemon", "SIGHUP: reloaded configuration from {}", path.display()),
        Err(e) => {
            tracing::error!(target: "daemon", "SIGHUP: configuration not reloaded, keeping the old one: {e}")
        }
    }
    n.send("READY=1");
}

async fn accept_loop(
    daemon: Arc<DaemonShared>,
    server: Arc<Server>,
    l: tokio::net::UnixListener,
    readonly: bool,
    role: SocketRole,
) {
    loop {
        match l.accept().await {
            Ok((stream, _)) => {
                // As libvirt: while the server is full, stop accepting; this
                // client and the next ones wait (in the backlog) for room.
                if server.is_full() {
                    tracing::warn!(
                        target: "rpc.server",
                        "Temporarily suspending services on server {}: max_clients ({}) reached",
                        server.name,
                        server.limits().max_clients
                    );
                    server.wait_for_room().await;
                    tracing::info!(target: "rpc.server", "Re-enabling services on server {}", server.name);
                }
                tokio::spawn(client::serve(daemon.clone(), server.clone(), stream, readonly));
            }
            Err(e) => {
                tracing::error!(target: "rpc.listener", "accept on the {} socket failed: {e}", role.label());
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
