//! `virtstoraged` (being written).

fn main() {}
