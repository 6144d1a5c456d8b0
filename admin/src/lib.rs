//! Clients of the modvirt daemons, speaking libvirt's RPC wire protocol
//! (see `modvirt_wire`): a small blocking [`client`] used by tools, tests
//! and the benchmark, and the [`bench`] building blocks behind
//! `modvirt-rpc-bench` (cold start, memory, round trips, raw echo server).

pub mod bench;
pub mod client;

pub use client::{Client, ClientError, FrameReader};
pub mod discover;
pub mod observe;
pub mod report;
