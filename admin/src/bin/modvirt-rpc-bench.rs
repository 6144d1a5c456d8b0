//! `modvirt-rpc-bench`: measures an RPC daemon the way its clients feel it —
//! cold start, idle memory and threads, round trips per second — and serves
//! the raw UNIX-socket echo baseline that the same figures are compared with.
//! All calls speak libvirt's RPC framing (see `modvirt_admin::client`);
//! `benches/rpc-compare.sh` drives it against libvirtd, virtqemud and the echo.
//!
//! `--format kv` prints `key=value` lines for scripts instead of prose.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use modvirt_admin::bench::coldstart::{self, ColdStartConfig};
use modvirt_admin::bench::echo::EchoServer;
use modvirt_admin::bench::ms;
use modvirt_admin::bench::procstat::ProcStatus;
use modvirt_admin::bench::rtt::{self, Mode, RttConfig};
use modvirt_admin::client::Client;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "modvirt-rpc-bench",
    version,
    about = "Benchmark libvirt-protocol RPC daemons"
)]
struct Cli {
    /// Output style: prose for people, key=value lines for scripts.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    format: Format,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Kv,
}

/// How to open each connection: a libvirt URI, or nothing (echo server).
#[derive(Debug, clap::Args)]
#[group(required = false, multiple = false)]
struct Target {
    /// Open every connection with AUTH_LIST, SUPPORTS_FEATURE 10, CONNECT_OPEN(URI).
    #[arg(long, default_value = "qemu:///system")]
    uri: String,
    /// Skip the handshake: the peer is `echo-server`.
    #[arg(long)]
    raw: bool,
}

impl Target {
    fn mode(&self) -> Mode {
        if self.raw {
            Mode::Raw
        } else {
            Mode::Remote {
                uri: self.uri.clone(),
            }
        }
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the raw echo baseline: every CALL gets a 36-byte REPLY.
    EchoServer {
        #[arg(long)]
        socket: PathBuf,
    },
    /// Round trips of CONNECT_GET_LIB_VERSION on N connections, one thread each.
    Rtt {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long, default_value_t = 1)]
        conns: usize,
        /// Measuring window.
        #[arg(long, default_value = "3", value_parser = secs)]
        seconds: Duration,
        /// Warm-up before the window.
        #[arg(long, default_value = "0.5", value_parser = secs)]
        warmup: Duration,
        /// Per-call I/O timeout.
        #[arg(long, default_value = "10", value_parser = secs)]
        timeout: Duration,
        /// Make exactly this many calls in all (split across the
        /// connections, no warm-up) instead of calling for a time window.
        #[arg(long, conflicts_with_all = ["seconds", "warmup"])]
        calls: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
    /// Exec a daemon, poll its socket every ~1 ms, time the first answered AUTH_LIST.
    Coldstart {
        /// The socket the daemon will listen on.
        #[arg(long)]
        socket: PathBuf,
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// Command line split on whitespace (no quoting); or give it after `--`.
        #[arg(long, conflicts_with = "argv")]
        cmd: Option<String>,
        /// Command line, one argument per word.
        #[arg(last = true)]
        argv: Vec<String>,
        #[arg(long, default_value = "0.001", value_parser = secs)]
        poll: Duration,
        /// Give up on a run after this long.
        #[arg(long, default_value = "30", value_parser = secs)]
        timeout: Duration,
        /// SIGTERM → SIGKILL grace.
        #[arg(long, default_value = "10", value_parser = secs)]
        grace: Duration,
        /// Pause between runs.
        #[arg(long, default_value = "0.2", value_parser = secs)]
        pause: Duration,
        /// Another file to remove after each run (repeatable).
        #[arg(long)]
        cleanup: Vec<PathBuf>,
        /// Append the daemon's stdout/stderr here instead of discarding them.
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// VmRSS / Threads of a process now and, with --socket, after one client.
    Mem {
        #[arg(long)]
        pid: u32,
        /// Connect one client (open, one call, close) and measure again.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Wait after the client left before measuring.
        #[arg(long, default_value = "1", value_parser = secs)]
        settle: Duration,
        #[command(flatten)]
        target: Target,
    },
}

fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number of seconds: {e}"))?;
    Duration::try_from_secs_f64(v).map_err(|e| format!("{s:?}: {e}"))
}

/// Prints `key=value` (kv) or `label: value` (text).
struct Out(Format);

impl Out {
    fn val(&self, key: &str, label: &str, value: impl std::fmt::Display) {
        match self.0 {
            Format::Kv => println!("{key}={value}"),
            Format::Text => println!("{label:<28} {value}"),
        }
    }

    fn f(&self, key: &str, label: &str, value: f64) {
        match self.0 {
            Format::Kv => println!("{key}={value:.3}"),
            Format::Text => println!("{label:<28} {value:.2}"),
        }
    }

    /// [`f`](Self::f) for each `(key, label, value)`, in order.
    fn fs(&self, rows: &[(&str, &str, f64)]) {
        for &(key, label, value) in rows {
            self.f(key, label, value);
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let out = Out(cli.format);
    match cli.command {
        Cmd::EchoServer { socket } => {
            let server = EchoServer::bind(&socket)?;
            if cli.format == Format::Text {
                eprintln!("echo server listening on {}", socket.display());
            }
            server.run()?;
        }
        Cmd::Rtt {
            socket,
            conns,
            seconds,
            warmup,
            timeout,
            calls,
            target,
        } => {
            let r = rtt::run(&RttConfig {
                socket: socket.clone(),
                conns,
                warmup,
                duration: seconds,
                calls,
                mode: target.mode(),
                call_timeout: timeout,
            })
            .with_context(|| format!("round trips against {}", socket.display()))?;
            out.val("rtt_conns", "connections", r.conns);
            out.val("rtt_calls", "calls in window", r.calls);
            out.fs(&[
                ("rtt_seconds", "window (s)", r.window.as_secs_f64()),
                ("rtt_calls_per_sec", "calls/s (all conns)", r.calls_per_sec),
                ("rtt_us_per_call", "µs per call (wall/calls)", r.us_per_call),
                ("rtt_lat_p50_us", "latency p50 (µs)", r.latency_us.p50),
                ("rtt_lat_p90_us", "latency p90 (µs)", r.latency_us.p90),
                ("rtt_lat_p99_us", "latency p99 (µs)", r.latency_us.p99),
                ("rtt_lat_max_us", "latency max (µs)", r.latency_us.max),
                (
                    "rtt_conn_min_calls_per_sec",
                    "slowest conn calls/s",
                    r.per_conn.min,
                ),
                (
                    "rtt_conn_max_calls_per_sec",
                    "fastest conn calls/s",
                    r.per_conn.max,
                ),
            ]);
        }
        Cmd::Coldstart {
            socket,
            runs,
            cmd,
            argv,
            poll,
            timeout,
            grace,
            pause,
            cleanup,
            log,
        } => {
            let argv = match cmd {
                Some(c) => c.split_whitespace().map(str::to_owned).collect(),
                None => argv,
            };
            if argv.is_empty() {
                bail!("give the daemon's command line with --cmd '…' or after --");
            }
            let cfg = ColdStartConfig {
                argv,
                socket,
                runs,
                poll,
                timeout,
                stop_grace: grace,
                pause,
                cleanup,
                log,
            };
            let text = cli.format == Format::Text;
            let r = coldstart::run(&cfg, |i, run| {
                if text {
                    println!(
                        "run {:>2}: answered {:7.2} ms  (socket accepted {:7.2} ms, {} attempts; stop {:7.2} ms)",
                        i + 1,
                        ms(run.answered),
                        ms(run.connected),
                        run.attempts,
                        ms(run.stopped)
                    );
                }
            })
            .with_context(|| format!("cold start of {}", cfg.argv.join(" ")))?;
            out.val("coldstart_runs", "runs", r.answered_ms.n);
            out.fs(&[
                ("coldstart_ms_min", "cold start min (ms)", r.answered_ms.min),
                (
                    "coldstart_ms_median",
                    "cold start median (ms)",
                    r.answered_ms.median,
                ),
                ("coldstart_ms_max", "cold start max (ms)", r.answered_ms.max),
                (
                    "connect_ms_median",
                    "socket accepts, median (ms)",
                    r.connected_ms.median,
                ),
                (
                    "stop_ms_median",
                    "SIGTERM → exit, median (ms)",
                    r.stopped_ms.median,
                ),
            ]);
        }
        Cmd::Mem {
            pid,
            socket,
            settle,
            target,
        } => {
            let idle = ProcStatus::read(pid)?;
            out.val("idle_rss_kib", "idle VmRSS (KiB)", idle.rss_kib);
            out.val("idle_hwm_kib", "idle VmHWM (KiB)", idle.hwm_kib);
            out.val("idle_threads", "idle threads", idle.threads);
            if let Some(socket) = socket {
                one_client(&socket, &target.mode())
                    .with_context(|| format!("one client on {}", socket.display()))?;
                std::thread::sleep(settle);
                let after = ProcStatus::read(pid)?;
                out.val("client_rss_kib", "+1 client VmRSS (KiB)", after.rss_kib);
                out.val("client_hwm_kib", "+1 client VmHWM (KiB)", after.hwm_kib);
                out.val("client_threads", "+1 client threads", after.threads);
            }
        }
    }
    Ok(())
}

/// What a short-lived client such as `virsh uri` does: open, one call, close.
fn one_client(socket: &std::path::Path, mode: &Mode) -> Result<()> {
    let mut c = Client::connect(socket)?;
    c.set_timeout(Some(Duration::from_secs(30)))?;
    if let Mode::Remote { uri } = mode {
        c.remote_open(uri)?;
    }
    c.remote_lib_version()?;
    if matches!(mode, Mode::Remote { .. }) {
        c.remote_close()?;
    }
    Ok(())
}
