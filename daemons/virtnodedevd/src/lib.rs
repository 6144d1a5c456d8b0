//! The host device driver of `virtnodedevd` (being written).
