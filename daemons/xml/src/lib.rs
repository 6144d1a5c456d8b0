//! What every libvirt XML document modvirt reads and writes shares, with
//! no I/O: the element tree of a document (quick-xml's pull reader; no
//! `<!DOCTYPE>`, so no entity is ever declared or expanded; errors with line,
//! column and the innermost open element), UUIDs and MAC addresses (made up
//! from a caller's [`RandomSource`] when a document leaves them out), and
//! escaping for output.
//!
//! Each document kind (domain, network, …) keeps its own model and error
//! type in its daemon and converts [`XmlError`] into it.

pub mod ids;
pub mod tree;
pub mod writer;

pub use ids::{MacAddr, RandomSource, SharedRng, format_uuid, generate_uuid, parse_mac, parse_uuid};
pub use tree::{Element, MAX_DEPTH, parse_tree};
pub use writer::{Attrs, XmlWriter};

/// Why a document could not be read, in libvirt's words (`XML error: …`,
/// `VIR_ERR_XML_ERROR` from `VIR_FROM_XML`), or a MAC address refused
/// (`VIR_ERR_INVALID_ARG`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The document is not well-formed XML.
    #[error("XML error: {detail} at line {line}, column {column}{}", in_element(element.as_deref()))]
    NotWellFormed {
        detail: String,
        line: u32,
        column: u32,
        /// The innermost element open where the error was found.
        element: Option<String>,
    },
    /// A `<!DOCTYPE>` (with or without entity declarations): refused, so no
    /// entity, internal or external, is ever defined or expanded.
    #[error(
        "XML error: {} are not allowed in {document} XML (line {line}, column {column})",
        if *entities { "entity declarations (<!ENTITY>)" } else { "DOCTYPE declarations" }
    )]
    Doctype {
        entities: bool,
        line: u32,
        column: u32,
        /// `domain`, `network`, …
        document: &'static str,
    },
    /// A MAC address that does not parse or is multicast (the message is
    /// libvirt's, after its `invalid argument: ` prefix).
    #[error("invalid argument: {0}")]
    BadMac(String),
}

fn in_element(element: Option<&str>) -> String {
    element
        .map(|e| format!(" (in element '{e}')"))
        .unwrap_or_default()
}

/// Declares a `Copy` enum whose variants are XML tokens, with `as_str`,
/// `from_xml` and `Display`.
#[macro_export]
macro_rules! xml_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $var),+
        }

        impl $name {
            /// The token as it appears in the XML.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$var => $s),+
                }
            }

            /// The variant named by an XML token, if any.
            pub fn from_xml(token: &str) -> Option<Self> {
                match token {
                    $($s => Some(Self::$var),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Escapes text or an attribute value (`&`, `<`, `>`, `'`, `"`), as libvirt
/// does for both.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    xml_enum! {
        /// For the test.
        Mode { Nat => "nat", Route => "route" }
    }

    #[test]
    fn xml_enums_map_tokens_both_ways() {
        assert_eq!(Mode::from_xml("route"), Some(Mode::Route));
        assert_eq!(Mode::from_xml("bridge"), None);
        assert_eq!(
            (Mode::Nat.as_str(), Mode::Nat.to_string()),
            ("nat", "nat".to_owned())
        );
    }

    #[test]
    fn escapes_all_five() {
        assert_eq!(escape("a&b<c>'d\"é"), "a&amp;b&lt;c&gt;&apos;d&quot;é");
        assert_eq!(escape(r#"a&b<c>d'e"f"#), "a&amp;b&lt;c&gt;d&apos;e&quot;f");
        assert_eq!(escape("plain é"), "plain é");
    }
}
