//! libvirt's storage pool and volume XML: the model, parsing (with
//! libvirt's errors and defaults) and formatting for `virsh pool-dumpxml`
//! and `vol-dumpxml`. No I/O: the UUID a pool XML leaves out comes from the
//! caller's randomness.
//!
//! ```text
//! <pool type='dir'> ──PoolDef::parse──▶ PoolDef ──to_xml──▶ pool-dumpxml
//!                                              ──to_state_xml──▶ <poolstate> status file
//! <volume>          ──VolDef::parse───▶ VolDef  ──to_xml──▶ vol-dumpxml
//! ```
//!
//! Modelled: pools of type `dir` (`name`, `uuid`, `capacity`,
//! `allocation`, `available`, `<target>` with `path` and `permissions`);
//! other pool types are refused as unsupported. Volumes: `type`, `name`,
//! `key`, `capacity`/`allocation` with libvirt's units, `physical`,
//! `<target>` with `path`, `format`, `permissions`, `timestamps`, and
//! qcow2's `compat`, `clusterSize` and `features`. A `<backingStore>` or
//! `<encryption>` is refused; anything else (`<source>`, `<features><cow>`,
//! `<refresh>`, `<nocow>`) is read past.
//!
//! Documents with a `<!DOCTYPE>` are refused, so no entity is ever
//! declared or expanded.

mod error;
mod format;
mod model;
mod parse;

#[cfg(test)]
mod tests;

pub use error::{StorageXmlError, code, origin};
pub use model::*;
pub use modvirt_xml::{RandomSource, format_uuid};
pub use parse::{sanitize_path, scaled_size, validate_pool_name};

impl PoolDef {
    /// Parses a pool XML document as `virStoragePoolDefineXML` and
    /// `virStoragePoolCreateXML` read it: a missing UUID is generated with
    /// `rng`; refusals carry libvirt's code, domain and message.
    pub fn parse(xml: &str, rng: &mut dyn RandomSource) -> Result<Self, StorageXmlError> {
        parse::parse_pool(xml, rng)
    }

    /// Parses a status file written by [`to_state_xml`](Self::to_state_xml).
    pub fn parse_state(xml: &str, rng: &mut dyn RandomSource) -> Result<Self, StorageXmlError> {
        parse::parse_pool_state(xml, rng)
    }

    /// The definition as `virsh pool-dumpxml` prints it; parsing it gives
    /// back the same definition, except the sizes (which a refresh sets).
    pub fn to_xml(&self) -> String {
        format::format_pool(self)
    }

    /// The status file of an active pool: `<poolstate>` around its live
    /// definition.
    pub fn to_state_xml(&self) -> String {
        format::format_pool_state(self)
    }

    /// The UUID as libvirt prints it.
    pub fn uuid_string(&self) -> String {
        format_uuid(&self.uuid)
    }
}

impl VolDef {
    /// Parses a volume XML document as `virStorageVolCreateXML` reads it
    /// for a `dir` pool (a capacity is required; the format defaults to
    /// `raw`).
    pub fn parse(xml: &str) -> Result<Self, StorageXmlError> {
        parse::parse_volume(xml)
    }

    /// The volume as `virsh vol-dumpxml` prints it.
    pub fn to_xml(&self) -> String {
        format::format_volume(self)
    }
}
