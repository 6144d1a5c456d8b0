//! The async half of a daemon's life: from the pid file to exit.

use super::{DaemonShared, StartError, Startup, load_config};
use crate::activation::{ActivatedRole, ActivatedSocket, ActivationError};
use crate::admin::AdminProgram;
use crate::client;
use crate::daemonize::StartupReport;
use crate::dispatch::ProgramHandler;
use crate::idle::IdleTimer;
use crate::listener::{self, BoundSocket, ListenError, PidFile};
use crate::logging::LogLevel;
use crate::notify::Notifier;
use crate::observe::gate::Closing;
use crate::observe::lifecycle::StateDir;
use crate::observe::metrics::Metrics;
use crate::observe::program::ObserveProgram;
use crate::paths::{RuntimePaths, SocketRole};
use crate::remote::RemoteProgram;
use crate::server::Server;
use modvirt_wire::observe::{ExitReason, Lifecycle};
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio::signal::unix::{SignalKind, signal};

/// A socket the daemon accepts on, and which role it plays.
struct Service {
    role: SocketRole,
    listener: StdUnixListener,
    /// Keeps a bound socket's file until shutdown (removed on drop).
    bound: Option<BoundSocket>,
}

/// The sockets to serve: the UNIX ones (passed by systemd or bound here),
/// and the TCP ones systemd passed (`<d>-tcp.socket`, `<d>-tls.socket`;
/// only a daemon that listens on the network is given these).
struct Sockets {
    unix: Vec<Service>,
    network: Vec<ActivatedSocket>,
    /// Whether systemd passed the sockets (then none is created here).
    activated: bool,
}

fn services(s: &mut Startup<'_>) -> Result<Sockets, StartError> {
    match s.activated.take() {
        Some(fds) => {
            let mut sockets = Sockets {
                unix: Vec::new(),
                network: Vec::new(),
                activated: true,
            };
            for a in fds {
                match a.role {
                    ActivatedRole::Unix(role) => sockets.unix.push(Service {
                        role,
                        listener: StdUnixListener::from(a.fd),
                        bound: None,
                    }),
                    ActivatedRole::Tcp | ActivatedRole::Tls => sockets.network.push(a),
                }
            }
            Ok(sockets)
        }
        None => {
            let unix = listener::bind_all(&s.paths)?
                .into_iter()
                .map(|b| {
                    let l = b.listener.try_clone().map_err(|source| ListenError::Bind {
                        path: b.path.clone(),
                        source,
                    })?;
                    Ok(Service {
                        role: b.role,
                        listener: l,
                        bound: Some(b),
                    })
                })
                .collect::<Result<_, StartError>>()?;
            Ok(Sockets {
                unix,
                network: Vec::new(),
                activated: false,
            })
        }
    }
}

/// Runs the daemon; records a start-up failure in the lifecycle log.
pub(super) async fn run(s: Startup<'_>, report: &mut StartupReport) -> Result<(), StartError> {
    let observer = s.observer.clone();
    let spans = s.spans.clone();
    let result = serve(s, report).await;
    if let Err(e) = &result {
        observer.exited(
            ExitReason::StartupFailed,
            Lifecycle::StartupFailed { error: e.to_string() },
        );
    }
    spans.shutdown().await;
    result
}

async fn serve(mut s: Startup<'_>, report: &mut StartupReport) -> Result<(), StartError> {
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
    let phases = s.observer.phases.clone();

    let phase = phases.begin("pid-file");
    let pid_path = s.cli.pid_file.clone().unwrap_or_else(|| s.paths.pid_file.clone());
    let pid_file = PidFile::acquire(&name, &pid_path)?;
    match StateDir::open(&s.paths.run_dir, &name) {
        Ok(dir) => s
            .observer
            .attach_state_dir(dir, &s.paths.socket(SocketRole::Admin).display().to_string()),
        Err(e) => {
            tracing::warn!(target: "observe.state", "no state file: cannot create {}/modvirt: {e}", s.paths.run_dir.display())
        }
    }
    drop(phase);

    let phase = phases.begin("sockets");
    let sockets = services(&mut s)?;
    phase.detail(format!("{} sockets", sockets.unix.len() + sockets.network.len()));
    drop(phase);

    let phase = phases.begin("servers");
    match s.spans.start_export_from_env(&tokio::runtime::Handle::current()) {
        Ok(true) => phase.detail("spans exported over OTLP"),
        Ok(false) => {}
        Err(e) => tracing::warn!(target: "observe.otlp", "span export disabled: {e}"),
    }
    let daemon = Arc::new(DaemonShared {
        name: name.clone(),
        paths: s.paths.clone(),
        idle: idle.clone(),
        logging: s.logging.clone(),
        observer: s.observer.clone(),
        metrics: Metrics::new(&name, env!("CARGO_PKG_VERSION")),
        spans: s.spans.clone(),
        peers: crate::peer::Peers::new(&name).with_call_timeout(s.settings.peer_call_timeout),
        servers: OnceLock::new(),
    });
    let remote: Arc<dyn ProgramHandler> = Arc::new(RemoteProgram::new(s.spec.driver.clone()));
    let main = Server::new(&name, &s.settings.main, vec![remote])?;
    let admin_programs: Vec<Arc<dyn ProgramHandler>> =
        vec![Arc::new(AdminProgram), Arc::new(ObserveProgram::default())];
    let admin = Server::new("admin", &s.settings.admin, admin_programs)?;
    let _ = daemon.servers.set(vec![main.clone(), admin.clone()]);
    drop(phase);

    let phase = phases.begin("driver");
    s.spec
        .driver
        .init(daemon.clone(), phase)
        .await
        .map_err(StartError::Driver)?;

    let mut accept_tasks = Vec::new();
    let mut keep = Vec::new();
    for svc in sockets.unix {
        let server = if svc.role == SocketRole::Admin {
            admin.clone()
        } else {
            main.clone()
        };
        svc.listener.set_nonblocking(true).map_err(StartError::Runtime)?;
        let l = tokio::net::UnixListener::from_std(svc.listener).map_err(StartError::Runtime)?;
        accept_tasks.push(tokio::spawn(accept_loop(daemon.clone(), server, l, svc.role)));
        keep.push(svc.bound);
    }
    if s.cli.listen && !s.spec.driver.listens_on_network() {
        return Err(StartError::NetListen(format!(
            "{name} does not listen on TCP/TLS; use virtproxyd --listen"
        )));
    }
    if !sockets.network.is_empty() {
        let phase = phases.begin("network listeners");
        for a in sockets.network {
            accept_tasks.push(serve_passed(&daemon, &main, &s.settings, &s.paths, a)?);
        }
        drop(phase);
    }
    if s.cli.listen && sockets.activated {
        // As libvirt's virtproxyd: under socket activation the units say
        // what to listen on, and the daemon creates no socket of its own.
        tracing::warn!(
            target: "daemon",
            "--listen is ignored under systemd socket activation: serving the sockets systemd passed \
             (enable {name}-tls.socket or {name}-tcp.socket to listen on the network)"
        );
    } else if s.cli.listen {
        let phase = phases.begin("network listeners");
        accept_tasks.extend(listen_on_network(&daemon, &main, &s.settings, &s.paths).await?);
        drop(phase);
    }
    drop(startup_hold);
    s.observer.ready();
    let elapsed = s.exec_time.elapsed();
    tracing::info!(target: "daemon", "{name} ready in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    s.notifier.send("READY=1\nSTATUS=Running");
    report.report(Ok(()));
    let ended = loop {
        tokio::select! {
            _ = idle.expired() => {
                if let Some(gate) = s.observer.exit_gate() {
                    match gate.close(|| idle.is_expired(), crate::observe::gate::MAX_WAIT).await {
                        // Held until the process is gone: the kernel lets go
                        // of the lock only then, after the sockets are closed
                        // and the state file says `exited`.
                        Closing::Exit(closed) => std::mem::forget(closed),
                        Closing::Stay => continue,
                    }
                }
                tracing::info!(target: "daemon", "idle for {} s with no clients: exiting", idle.timeout());
                break (ExitReason::IdleExit, Lifecycle::IdleExit { timeout_s: idle.timeout() });
            }
            _ = sigterm.recv() => {
                tracing::info!(target: "daemon", "SIGTERM: shutting down");
                break (ExitReason::Signal, Lifecycle::Stopped { signal: "SIGTERM".into() });
            }
            _ = sigint.recv() => {
                tracing::info!(target: "daemon", "SIGINT: shutting down");
                break (ExitReason::Signal, Lifecycle::Stopped { signal: "SIGINT".into() });
            }
            _ = sighup.recv() => reload(&daemon, s.conf_path.as_deref(), &s.paths, s.cli.config.is_some(), &s.notifier),
        }
    };
    s.observer.stopping();
    s.notifier.send("STOPPING=1\nSTATUS=Shutting down");
    for t in accept_tasks {
        t.abort();
    }
    for srv in daemon.servers() {
        for c in srv.clients() {
            c.close();
        }
    }
    if tokio::time::timeout(super::SHUTDOWN_LIMIT, s.spec.driver.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            target: "daemon",
            "driver shutdown did not finish within {} s: exiting anyway",
            super::SHUTDOWN_LIMIT.as_secs()
        );
    }
    drop(keep);
    s.observer.exited(ended.0, ended.1);
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
            d.observer.set_call_spans(st.call_spans);
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

/// libvirt's certificates live in /etc/pki, beside /etc/libvirt.
#[cfg(feature = "tls")]
fn pki_dir(paths: &RuntimePaths) -> std::path::PathBuf {
    paths
        .config_dir
        .parent()
        .map_or_else(|| Path::new("/etc/pki").to_owned(), |etc| etc.join("pki"))
}

#[cfg(feature = "tls")]
async fn listen_on_network(
    daemon: &Arc<DaemonShared>,
    main: &Arc<Server>,
    settings: &crate::config::DaemonSettings,
    paths: &RuntimePaths,
) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
    crate::netlisten::start(daemon.clone(), main.clone(), &settings.net, &pki_dir(paths))
        .await
        .map_err(|e| StartError::NetListen(e.to_string()))
}

#[cfg(not(feature = "tls"))]
async fn listen_on_network(
    _: &Arc<DaemonShared>,
    _: &Arc<Server>,
    _: &crate::config::DaemonSettings,
    _: &RuntimePaths,
) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
    Err(StartError::NetListen(
        "built without TLS support (feature \"tls\")".into(),
    ))
}

/// Serves a TCP socket systemd passed (`<d>-tls.socket`, `<d>-tcp.socket`)
/// on the main server, as `--listen` serves its own.
#[cfg(feature = "tls")]
fn serve_passed(
    daemon: &Arc<DaemonShared>,
    main: &Arc<Server>,
    settings: &crate::config::DaemonSettings,
    paths: &RuntimePaths,
    socket: ActivatedSocket,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    use crate::netlisten::NetService;
    let name = socket.role.fd_name(&daemon.name);
    let service = match socket.role {
        ActivatedRole::Tls => NetService::Tls,
        _ => NetService::Tcp,
    };
    crate::netlisten::serve_passed(daemon, main, &settings.net, &pki_dir(paths), service, socket.fd)
        .map_err(|e| ActivationError::Serve {
            name,
            detail: e.to_string(),
        })
        .map_err(StartError::from)
}

#[cfg(not(feature = "tls"))]
fn serve_passed(
    daemon: &Arc<DaemonShared>,
    _: &Arc<Server>,
    _: &crate::config::DaemonSettings,
    _: &RuntimePaths,
    socket: ActivatedSocket,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    Err(StartError::Activation(ActivationError::Serve {
        name: socket.role.fd_name(&daemon.name),
        detail: "built without TLS support (feature \"tls\")".into(),
    }))
}

async fn accept_loop(
    daemon: Arc<DaemonShared>,
    server: Arc<Server>,
    l: tokio::net::UnixListener,
    role: SocketRole,
) {
    loop {
        match l.accept().await {
            Ok((stream, _)) => {
                daemon.metrics.client_connected(&server.name, role.label());
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
                tokio::spawn(client::serve(daemon.clone(), server.clone(), stream, role));
            }
            Err(e) => {
                tracing::error!(target: "rpc.listener", "accept on the {} socket failed: {e}", role.label());
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
