//! The storage driver of `virtstoraged` (being written).
