//! REMOTE nwfilter procedures' arguments and return values (being written).
