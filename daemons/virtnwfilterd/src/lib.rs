//! The network filter driver of `virtnwfilterd`, as a library so its
//! parts can be tested on their own:
//!
//! - [`nwfilter`]: libvirt's network filter XML — the model, parsing (with
//!   libvirt's checks and errors) and formatting for `nwfilter-dumpxml`.
//!   No I/O.
//! - [`driver`]: the REMOTE nwfilter procedures on top of it, with
//!   definitions under `etc/libvirt/nwfilter`.
//!
//! Filters are kept and served, not applied to traffic: no ebtables,
//! iptables or nftables rules are made from them.

pub mod driver;
pub mod nwfilter;
