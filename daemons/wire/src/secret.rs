//! REMOTE secret procedures' arguments and return values (being written).
