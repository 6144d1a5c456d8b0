//! The modvirt daemon framework, shared by every daemon binary.
//!
//! Layering, as libvirt's: a socket ([`listener`], [`activation`]) feeds
//! clients ([`client`]) of a server ([`server`]: worker [`pool`], limits,
//! keepalive) that dispatches calls ([`dispatch`]) to a program's handlers
//! ([`remote`] for `<d>-sock`, [`admin`] for `<d>-admin-sock`); the daemon
//! ([`daemon`]) owns the servers, signals, the [`idle`] timer, [`notify`]
//! and the pid file. Drivers never see sockets.

pub mod activation;
pub mod admin;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod daemonize;
pub mod dispatch;
pub mod entropy;
pub mod events;
pub mod fsutil;
pub mod identity;
pub mod idle;
pub mod listener;
pub mod logging;
#[cfg(feature = "tls")]
pub mod netlisten;
pub mod notify;
pub mod observe;
pub mod paths;
pub mod peer;
pub mod pool;
pub mod quiet;
pub mod remote;
pub mod route;
pub mod server;

pub use daemon::{DaemonShared, DaemonSpec, main};
pub use entropy::random_seed;
pub use remote::{DriverInfo, InitFuture, ShutdownFuture, VersionFuture};
