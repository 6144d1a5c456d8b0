//! The network filter driver of `virtnwfilterd` (being written).
