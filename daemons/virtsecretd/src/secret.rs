//! libvirt's secret XML: the model, parsing (with libvirt's errors and
//! defaults) and formatting for `virsh secret-dumpxml`. No I/O: a UUID the
//! XML leaves out is made from the caller's randomness.
//!
//! ```text
//! <secret ephemeral='yes|no' private='yes|no'>   both default to 'no'
//!   <uuid>…</uuid>                               generated when absent
//!   <description>…</description>                 optional, kept verbatim
//!   <usage type='volume'><volume>PATH</volume></usage>
//!   <usage type='ceph|tls|vtpm'><name>NAME</name></usage>
//!   <usage type='iscsi'><target>IQN</target></usage>
//! </secret>
//! ```
//!
//! Anything else in the document is read past and does not appear in the
//! output, as in libvirt. Documents with a `<!DOCTYPE>` are refused.

mod error;
#[cfg(test)]
mod tests;

pub use error::{SecretXmlError, code, origin};
use modvirt_wire::secret::usage;
use modvirt_xml::{Element, RandomSource, escape, format_uuid, generate_uuid, parse_tree};

/// What a secret is for (`virSecretUsageType`) and the id that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// No usage (`<usage type='none'/>` or no `<usage>`).
    None,
    /// A storage volume's path.
    Volume(String),
    /// A Ceph user name.
    Ceph(String),
    /// An iSCSI target.
    Iscsi(String),
    /// A TLS credential name.
    Tls(String),
    /// A vTPM name.
    Vtpm(String),
}

impl Usage {
    /// `virSecretUsageType` as on the wire.
    pub fn type_code(&self) -> i32 {
        match self {
            Usage::None => usage::NONE,
            Usage::Volume(_) => usage::VOLUME,
            Usage::Ceph(_) => usage::CEPH,
            Usage::Iscsi(_) => usage::ISCSI,
            Usage::Tls(_) => usage::TLS,
            Usage::Vtpm(_) => usage::VTPM,
        }
    }

    /// The usage id (the empty string for [`Usage::None`], as libvirt sends it).
    pub fn id(&self) -> &str {
        match self {
            Usage::None => "",
            Usage::Volume(s) | Usage::Ceph(s) | Usage::Iscsi(s) | Usage::Tls(s) | Usage::Vtpm(s) => s,
        }
    }

    /// The `type` attribute's value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Usage::None => "none",
            Usage::Volume(_) => "volume",
            Usage::Ceph(_) => "ceph",
            Usage::Iscsi(_) => "iscsi",
            Usage::Tls(_) => "tls",
            Usage::Vtpm(_) => "vtpm",
        }
    }

    /// The child element that carries the id.
    fn id_element(&self) -> &'static str {
        match self {
            Usage::Volume(_) => "volume",
            Usage::Iscsi(_) => "target",
            _ => "name",
        }
    }
}

/// A secret's definition (libvirt's `virSecretDef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDef {
    /// Kept in memory only: neither definition nor value touches disk.
    pub ephemeral: bool,
    /// The value is never returned to a client.
    pub private: bool,
    pub uuid: [u8; 16],
    pub description: Option<String>,
    pub usage: Usage,
}

impl SecretDef {
    /// Parses a secret XML document as libvirt's `virSecretDefParse`
    /// does for `virSecretDefineXML`; a missing UUID is generated with `rng`.
    pub fn parse(xml: &str, rng: &mut dyn RandomSource) -> Result<Self, SecretXmlError> {
        let root = parse_tree(xml, "secret")?;
        if root.name != "secret" {
            return Err(SecretXmlError::WrongRoot { found: root.name });
        }
        let ephemeral = yes_no(&root, "ephemeral")?;
        let private = yes_no(&root, "private")?;
        let uuid = match root.child("uuid").map(string_value).filter(|s| !s.is_empty()) {
            None => generate_uuid(rng),
            Some(text) => modvirt_xml::parse_uuid(&text).ok_or(SecretXmlError::MalformedUuid)?,
        };
        let description = root
            .child("description")
            .map(string_value)
            .filter(|s| !s.is_empty());
        let usage = match root.child("usage") {
            Some(u) => parse_usage(u)?,
            None => Usage::None,
        };
        Ok(SecretDef {
            ephemeral,
            private,
            uuid,
            description,
            usage,
        })
    }

    /// The definition as `virsh secret-dumpxml` prints it (and as libvirt
    /// stores it in `UUID.xml`).
    pub fn to_xml(&self) -> String {
        let yn = |b: bool| if b { "yes" } else { "no" };
        let mut out = format!(
            "<secret ephemeral='{}' private='{}'>\n  <uuid>{}</uuid>\n",
            yn(self.ephemeral),
            yn(self.private),
            format_uuid(&self.uuid)
        );
        if let Some(d) = &self.description {
            out.push_str(&format!("  <description>{}</description>\n", escape(d)));
        }
        if self.usage != Usage::None {
            let child = self.usage.id_element();
            out.push_str(&format!(
                "  <usage type='{}'>\n    <{child}>{}</{child}>\n  </usage>\n",
                self.usage.type_name(),
                escape(self.usage.id())
            ));
        }
        out.push_str("</secret>\n");
        out
    }

    pub fn uuid_string(&self) -> String {
        format_uuid(&self.uuid)
    }
}

/// The string value of an element (its text and its descendants'), as
/// XPath's `string()` gives it.
fn string_value(e: &Element) -> String {
    let mut out = e.text.clone();
    for c in &e.children {
        out.push_str(&string_value(c));
    }
    out
}

/// `ephemeral` / `private`: absent or empty means `no`; otherwise exactly
/// `yes` or `no` (libvirt's `virStringParseYesNo`).
fn yes_no(root: &Element, attribute: &'static str) -> Result<bool, SecretXmlError> {
    match root.attr(attribute) {
        None | Some("") | Some("no") => Ok(false),
        Some("yes") => Ok(true),
        Some(_) => Err(SecretXmlError::YesNo { attribute }),
    }
}

fn parse_usage(u: &Element) -> Result<Usage, SecretXmlError> {
    let kind = u
        .attr("type")
        .filter(|t| !t.is_empty())
        .ok_or(SecretXmlError::MissingUsageType)?;
    let id = |child: &str, missing: &'static str| {
        u.child(child)
            .map(string_value)
            .filter(|s| !s.is_empty())
            .ok_or(SecretXmlError::MissingUsageId(missing))
    };
    Ok(match kind {
        "none" => Usage::None,
        "volume" => Usage::Volume(id(
            "volume",
            "volume usage specified, but volume path is missing",
        )?),
        "ceph" => Usage::Ceph(id("name", "Ceph usage specified, but name is missing")?),
        "iscsi" => Usage::Iscsi(id("target", "iSCSI usage specified, but target is missing")?),
        "tls" => Usage::Tls(id("name", "TLS usage specified, but name is missing")?),
        "vtpm" => Usage::Vtpm(id("name", "vTPM usage specified, but name is missing")?),
        other => return Err(SecretXmlError::UnknownUsageType(other.to_owned())),
    })
}
