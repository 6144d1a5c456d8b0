//! REMOTE interface procedures' arguments and return values (being written).
