//! Checks on a parsed definition: names, sizes, counts and duplicates that
//! libvirt (or its QEMU driver) refuses, with their messages.

use super::DomainXmlError as E;
use super::model::*;

/// Longest domain name accepted, in bytes: the name becomes a file name
/// (`<name>.xml`) under the configuration directory.
pub const MAX_NAME_BYTES: usize = 255;
/// Largest `<memory>` accepted: 16 TiB, in KiB.
pub const MAX_MEMORY_KIB: u64 = 16 << 30;
/// Most vCPUs any machine type is accepted with.
pub const MAX_VCPUS: u32 = 4096;

/// Checks a domain name: not empty, no `/`, no control characters, at
/// most [`MAX_NAME_BYTES`] bytes.
pub fn validate_name(name: &str) -> Result<(), E> {
    if name.is_empty() {
        return Err(E::MissingName);
    }
    if name.contains('/') {
        return Err(E::Invalid(format!("name {name} cannot contain '/'")));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        // libvirt refuses '\n' this way (virXMLCheckIllegalChars); we
        // refuse every control character, printed in hex.
        return Err(E::Detail(format!("invalid char in name: 0x{:02x}", u32::from(c))));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(E::InvalidArgument(format!(
            "domain name is {} bytes long, more than the {MAX_NAME_BYTES} allowed",
            name.len()
        )));
    }
    Ok(())
}

/// The most vCPUs QEMU accepts for a machine type (i440fx: 255, isapc:
/// 1); others get [`MAX_VCPUS`].
pub fn machine_max_vcpus(machine: &str) -> u32 {
    if machine == "isapc" {
        1
    } else if machine == "pc"
        || machine.starts_with("pc-i440fx")
        || machine.starts_with("pc-0.")
        || machine.starts_with("pc-1.")
    {
        255
    } else {
        MAX_VCPUS
    }
}

pub(crate) fn validate_def(def: &DomainDef) -> Result<(), E> {
    if def.memory_kib == 0 {
        return Err(E::Invalid(
            "Memory size must be specified via <memory> or in the <numa> configuration".into(),
        ));
    }
    if def.memory_kib > MAX_MEMORY_KIB {
        return Err(E::Unsupported(format!(
            "memory size {} KiB is more than the {MAX_MEMORY_KIB} KiB (16 TiB) allowed",
            def.memory_kib
        )));
    }
    if def.vcpu.max == 0 || def.vcpu.current == 0 {
        return Err(E::Unsupported("Domain requires at least 1 vCPU".into()));
    }
    let limit = machine_max_vcpus(&def.os.machine);
    if def.vcpu.max > limit {
        return Err(E::Unsupported(format!(
            "Maximum CPUs greater than specified machine type limit {limit}"
        )));
    }
    let disks = &def.devices.disks;
    for (i, a) in disks.iter().enumerate() {
        if let Some(b) = disks[..i].iter().find(|b| b.target_dev == a.target_dev) {
            let src = |d: &Disk| d.source.clone().unwrap_or_else(|| "<null>".to_owned());
            return Err(E::Invalid(format!(
                "target '{}' duplicated for disk sources '{}' and '{}'",
                a.target_dev,
                src(b),
                src(a)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_name("trace-vm"), Ok(()));
        assert_eq!(validate_name("ünïcode vm.1"), Ok(()));
        assert_eq!(validate_name(""), Err(E::MissingName));
        let e = validate_name("a/b").unwrap_err();
        assert_eq!(e.message(), "XML error: name a/b cannot contain '/'");
        assert_eq!(e.code(), 27);
        let e = validate_name("a\nb").unwrap_err();
        assert_eq!(e.message(), "invalid char in name: 0x0a");
        assert_eq!(e.code(), 35);
        assert!(validate_name("a\u{7f}").is_err());
        assert_eq!(validate_name(&"x".repeat(255)), Ok(()));
        let e = validate_name(&"x".repeat(256)).unwrap_err();
        assert_eq!(
            e.message(),
            "invalid argument: domain name is 256 bytes long, more than the 255 allowed"
        );
        assert_eq!(e.code(), 8);
    }

    #[test]
    fn machine_limits() {
        assert_eq!(machine_max_vcpus("pc"), 255);
        assert_eq!(machine_max_vcpus("pc-i440fx-7.2"), 255);
        assert_eq!(machine_max_vcpus("q35"), MAX_VCPUS);
        assert_eq!(machine_max_vcpus("pc-q35-7.2"), MAX_VCPUS);
        assert_eq!(machine_max_vcpus("isapc"), 1);
    }
}
