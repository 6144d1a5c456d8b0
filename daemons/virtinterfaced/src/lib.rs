//! The host interface driver of `virtinterfaced` (being written).
