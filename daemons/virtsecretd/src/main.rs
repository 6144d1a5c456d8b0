//! `virtsecretd` (being written).

fn main() {}
