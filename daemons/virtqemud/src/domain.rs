//! libvirt's domain XML: the model, parsing (with libvirt's errors and
//! defaults) and formatting for `dumpxml`. No I/O: randomness for the
//! UUIDs and MACs an XML leaves out comes from the caller.
//!
//! ```text
//! XML ──xml──▶ element tree ──parse/devices──▶ DomainDef ──defaults, validate──▶ DomainDef
//! DomainDef ──format (FormatOptions { id })──▶ XML as `virsh dumpxml` prints it
//! ```
//!
//! Modelled: `<domain type id>`, `name`, `uuid`, `title`, `description`,
//! `memory` / `currentMemory` (any libvirt unit, kept in KiB), `vcpu`,
//! `os` (type, arch, machine, boot), `features` (acpi, apic), `cpu`,
//! `clock` offset, `on_poweroff` / `on_reboot` / `on_crash`, and the
//! devices `emulator`, `disk`, `interface`, `serial`, `console`,
//! `graphics` (VNC) and `video`. Anything else is read past and does not
//! appear in the output.
//!
//! Documents with a `<!DOCTYPE>` are refused, so no entity is ever
//! declared or expanded (only the five predefined ones and character
//! references are resolved).

mod defaults;
mod devices;
mod error;
mod format;
mod model;
mod parse;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;

pub use defaults::DEFAULT_X86_CPU_MODEL;
pub use error::{DomainXmlError, code, origin};
pub use format::FormatOptions;
pub use model::*;
pub use modvirt_xml::escape;
pub use modvirt_xml::{MacAddr, RandomSource, format_uuid, generate_uuid, parse_uuid};
pub use parse::{host_arch, scale_to_bytes};
pub use validate::{MAX_MEMORY_KIB, MAX_NAME_BYTES, MAX_VCPUS, machine_max_vcpus, validate_name};

impl DomainDef {
    /// Parses a domain XML document the way libvirt's QEMU driver does for
    /// `virDomainDefineXML`: unknown elements are ignored, defaults filled
    /// in, a missing UUID or MAC generated with `rng`, and refusals carry
    /// libvirt's error code and message.
    pub fn parse(xml: &str, rng: &mut dyn RandomSource) -> Result<Self, DomainXmlError> {
        parse::parse_domain(xml, rng)
    }

    /// The UUID as libvirt prints it (`6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001`).
    pub fn uuid_string(&self) -> String {
        format_uuid(&self.uuid)
    }
}
