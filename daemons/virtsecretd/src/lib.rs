//! The secret driver of `virtsecretd` (being written).
