//! `virtnodedevd` (being written).

fn main() {}
