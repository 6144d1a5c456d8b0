//! Command-line flags, the same for every daemon (as libvirt's), plus
//! `--root`.

use clap::Parser;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(disable_version_flag = true)]
pub struct Cli {
    /// Exit after SECS seconds of inactivity (no clients, nothing running); 0 = never
    #[arg(short = 't', long, value_name = "SECS")]
    pub timeout: Option<u32>,

    /// Configuration file (default: <root>/etc/libvirt/<daemon>.conf)
    #[arg(short = 'f', long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// PID file (default: <root>/run/<daemon>.pid)
    #[arg(short = 'p', long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Verbose messages (log level info)
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Print the version and exit
    #[arg(short = 'V', long)]
    pub version: bool,

    /// Run as a daemon: fork, detach and log to <root>/var/log/libvirt/<daemon>.log
    #[arg(short = 'd', long)]
    pub daemon: bool,

    /// Listen for TCP/TLS connections too (virtproxyd; see its configuration file)
    #[arg(short = 'l', long)]
    pub listen: bool,

    /// Prefix every system path with DIR (sockets, config, state, logs)
    #[arg(long, value_name = "DIR", env = "MODVIRT_ROOT")]
    pub root: Option<PathBuf>,
}
