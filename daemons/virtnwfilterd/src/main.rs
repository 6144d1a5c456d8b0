//! `virtnwfilterd` (being written).

fn main() {}
