//! REMOTE storage procedures' arguments and return values (being written).
