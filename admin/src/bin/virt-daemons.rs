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
use modvirt_admin::discover::systemd::{Systemctl, UnitSource};
use modvirt_admin::discover::{DiscoverOptions, Root, discover};
use modvirt_admin::report::{self, boot, hangs, status, trace, why};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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

fn run(cli: &Cli) -> Result<String, String> {
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
    let units = systemctl.as_ref().map(|s| s as &dyn UnitSource);
    let all = match &cli.command {
        Cmd::Status { all, .. } => *all,
        Cmd::Why { .. } => true,
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
    })
}

fn to_json(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
