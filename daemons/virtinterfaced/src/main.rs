//! `virtinterfaced` (being written).

fn main() {}
