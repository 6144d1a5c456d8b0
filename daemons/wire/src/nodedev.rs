//! REMOTE nodedev procedures' arguments and return values (being written).
