//! A seed from the kernel, for a daemon's generators (e.g. the
//! `modvirt_xml::SharedRng` its driver makes UUIDs and MACs with).

/// 64 bits from `/dev/urandom`; the clock and the pid if it cannot be read.
pub fn random_seed() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => u64::from_ne_bytes(b),
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_differ() {
        assert_ne!(super::random_seed(), super::random_seed());
    }
}
