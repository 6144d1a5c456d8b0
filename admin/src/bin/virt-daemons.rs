//! `virt-daemons`: which modvirt daemons run on this host, why, what keeps
//! them alive, how they started, where they hang, and what they traced.
//!
//! Discovery reads state files, lifecycle logs and (where systemd runs)
//! unit states; only daemons found running are asked anything, over the
//! passive OBSERVE program of their admin socket — observing never wakes a
//! sleeping daemon and never keeps one awake. Everything printed is built
//! by `modvirt_admin::report`; this file only parses flags and does I/O.
//!
//! Exit status: 0 on success, 1 on errors (e.g. an unknown daemon name).

use clap::{Parser, Subcommand, ValueEnum};
use modvirt_admin::client::ClientError;
use modvirt_admin::discover::systemd::{Systemctl, UnitSource};
use modvirt_admin::discover::{DiscoverOptions, KnownDaemon, Root, discover, procfs};
use modvirt_admin::observe::{ObserveError, Watched};
use modvirt_admin::report::{self, boot, hangs, status, trace, watch, why};
use modvirt_wire::observe::WatchEvent;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "virt-daemons",
    version,
    about = "Observe the modvirt daemons without waking them"
)]
struct Cli {
    /// Root prefix the daemons run under (their files are in DIR/run/libvirt).
    #[arg(long, value_name = "DIR", env = "MODVIRT_ROOT", global = true)]
    root: Option<PathBuf>,
    /// Seconds a running daemon gets to answer.
    #[arg(long, value_name = "SECS", default_value_t = 2.0, global = true)]
    timeout: f64,
    /// Ask systemd for unit states: auto = only for the host's own daemons (no --root).
    #[arg(long, value_enum, default_value_t = SystemdMode::Auto, global = true)]
    systemd: SystemdMode,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SystemdMode {
    Auto,
    On,
    Off,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// One line per daemon: state, pid, uptime, cause, clients, calls, idle countdown.
    Status {
        #[arg(long)]
        json: bool,
        /// Also list modvirt daemons that never ran here.
        #[arg(long)]
        all: bool,
    },
    /// Why a daemon runs and what keeps it alive (or how its last run ended).
    Why { name: String },
    /// Start-up phases of every running daemon, slowest first.
    Boot,
    /// In-flight calls older than a threshold, with their wait-for chains.
    Hangs {
        /// Threshold in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 5.0)]
        older_than: f64,
        #[arg(long)]
        json: bool,
    },
    /// Recent spans of the running daemons, as waterfalls per trace.
    Trace {
        #[arg(long)]
        json: bool,
        /// Show at most N traces (newest first).
        #[arg(long, value_name = "N", default_value_t = 10)]
        limit: usize,
        /// Only traces that touch this daemon.
        #[arg(long, value_name = "NAME")]
        daemon: Option<String>,
    },
    /// Follow a running daemon live: its state, then one line per change.
    Watch {
        name: String,
        /// How often the daemon compares its state (it allows at least 100).
        #[arg(long, value_name = "N", default_value_t = 1000,
              value_parser = clap::value_parser!(u32).range(1..))]
        interval_ms: u32,
        /// Stop after K events.
        #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Each event as one JSON line (`{"type":"full"|"changes"|"ended",…}`).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Watch { .. } = &cli.command {
        return match run_watch(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("virt-daemons: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&cli) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("virt-daemons: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `--timeout`, the root and (where asked for) systemd.
fn setup(cli: &Cli) -> Result<(Duration, Root, Option<Systemctl>), String> {
    if !(cli.timeout.is_finite() && cli.timeout > 0.0) {
        return Err(format!(
            "--timeout must be a positive number of seconds, not {}",
            cli.timeout
        ));
    }
    let timeout = Duration::from_secs_f64(cli.timeout.min(3600.0));
    let root = Root::resolve(cli.root.as_deref());
    let systemctl = match cli.systemd {
        SystemdMode::Off => None,
        SystemdMode::Auto if root.explicit => None,
        SystemdMode::Auto | SystemdMode::On => Systemctl::detect(!root.system, timeout),
    };
    Ok((timeout, root, systemctl))
}

fn run(cli: &Cli) -> Result<String, String> {
    let (timeout, root, systemctl) = setup(cli)?;
    let units = systemctl.as_ref().map(|s| s as &dyn UnitSource);
    let all = match &cli.command {
        Cmd::Status { all, .. } => *all,
        Cmd::Why { .. } | Cmd::Watch { .. } => true,
        _ => false,
    };
    let discovery = discover(&root, &DiscoverOptions { all, units });

    // Trace asks for spans, not STATUS.
    let snapshot = move |ask_status: bool| {
        if ask_status {
            report::observe_all(discovery, timeout)
        } else {
            report::unobserved(discovery)
        }
    };
    Ok(match &cli.command {
        Cmd::Status { json: true, .. } => to_json(&status::render_json(&snapshot(true))),
        Cmd::Status { .. } => status::render_text(&snapshot(true)),
        Cmd::Why { name } => why::render_named(&snapshot(true), name)?,
        Cmd::Boot => boot::render_text(&snapshot(true)),
        Cmd::Hangs {
            older_than,
            json: true,
        } => to_json(&hangs::render_json(&snapshot(true), *older_than)),
        Cmd::Hangs { older_than, .. } => hangs::render_text(&snapshot(true), *older_than),
        Cmd::Trace { json, limit, daemon } => {
            let snap = snapshot(false);
            let got = trace::collect(&snap, timeout);
            let traces = trace::build(&got.pages, daemon.as_deref(), *limit);
            if *json {
                to_json(&trace::render_json(&traces, &got.errors, &got.pages))
            } else {
                trace::render_text(&traces, &got.errors)
            }
        }
        Cmd::Watch { .. } => return Err("watch streams: see run_watch".into()),
    })
}

/// Set by the first Ctrl-C; the watch stops at the next event or quiet spell.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The first SIGINT asks the watch to stop cleanly (UNWATCH, CLOSE); the
/// handler resets itself, so a second one kills at once.
fn catch_sigint() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_sigint),
        SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    let _ = unsafe { sigaction(Signal::SIGINT, &action) };
}

/// Why a watch ended.
enum End {
    /// `--count` reached, Ctrl-C, or stdout closed: the user is done.
    Done,
    /// The daemon went away.
    Gone(String),
}

/// `watch NAME`: connects only if discovery finds NAME running (the rule-1
/// check of `KnownDaemon::observe`), then prints each event as it comes.
fn run_watch(cli: &Cli) -> Result<(), String> {
    let Cmd::Watch {
        name,
        interval_ms,
        count,
        json,
    } = &cli.command
    else {
        return Err("not a watch command".into());
    };
    let (timeout, root, systemctl) = setup(cli)?;
    let units = systemctl.as_ref().map(|s| s as &dyn UnitSource);
    let discovery = discover(&root, &DiscoverOptions { all: true, units });
    let daemon = watch::find(&discovery, name)?;
    let mut client = daemon.observe(timeout).map_err(|e| e.to_string())?;
    catch_sigint();

    let mut watcher = watch::Watcher::new(std::process::id() as i32);
    let mut printer = Printer {
        out: std::io::stdout().lock(),
        name,
        json: *json,
        count: *count,
        shown: 0,
    };
    let mut end = End::Done;
    let interval = Duration::from_millis(u64::from(*interval_ms));
    let result = client.watch(interval, |w| {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return ControlFlow::Break(());
        }
        match w {
            Watched::Event(ev) => match watcher.accept(ev) {
                Some(ev) => printer.show(&ev),
                None => ControlFlow::Continue(()),
            },
            Watched::Quiet(_) if !still_running(daemon) => {
                end = End::Gone(format!("{name} exited"));
                ControlFlow::Break(())
            }
            Watched::Quiet(_) => ControlFlow::Continue(()),
        }
    });
    let shown = printer.shown;
    let mut out = printer.out;
    let done = matches!(end, End::Done);
    match result {
        Ok(()) => {
            let _ = client.close();
        }
        // The events the user asked for were all shown; the daemon
        // leaving during UNWATCH changes nothing.
        Err(_) if done && count.is_some_and(|k| shown >= k) => {}
        Err(e) if gone(&e) => end = End::Gone(format!("{name} closed the connection (it exited)")),
        Err(e) if INTERRUPTED.load(Ordering::SeqCst) => drop(e),
        Err(e) => return Err(format!("watching {name}: {e}")),
    }
    if let End::Gone(reason) = end {
        let line = if *json {
            watch::render_ended_json(name, &reason)
        } else {
            watch::render_ended_text(name, &reason, report::now_ms())
        };
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }
    Ok(())
}

/// Prints events, one line each, and counts them.
struct Printer<'a> {
    out: std::io::StdoutLock<'a>,
    name: &'a str,
    json: bool,
    count: Option<u64>,
    shown: u64,
}

impl Printer<'_> {
    /// `Break` once `--count` events are shown, or if stdout is closed
    /// (`| head`: nobody reads any more).
    fn show(&mut self, ev: &WatchEvent) -> ControlFlow<()> {
        let line = if self.json {
            watch::render_json(ev)
        } else {
            watch::render_text(self.name, ev, report::now_ms())
        };
        if self
            .out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.flush())
            .is_err()
        {
            return ControlFlow::Break(());
        }
        self.shown += 1;
        if self.count.is_some_and(|k| self.shown >= k) {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Whether the process the state file names is still the daemon (a quiet
/// spell may be a hung daemon, or one that died without closing).
fn still_running(daemon: &KnownDaemon) -> bool {
    daemon
        .state_file
        .as_ref()
        .is_some_and(|sf| procfs::liveness(sf.pid, sf.pid_start_ticks) == procfs::Liveness::Alive)
}

/// The daemon hung up (it exited, or is exiting).
fn gone(e: &ObserveError) -> bool {
    use std::io::ErrorKind as K;
    match e {
        ObserveError::Call { source, .. } => match source {
            ClientError::Closed => true,
            ClientError::Io(io) => matches!(
                io.kind(),
                K::UnexpectedEof | K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted
            ),
            _ => false,
        },
        _ => false,
    }
}

fn to_json(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
