//! [`NetworkXmlError`]: every way a network XML can be refused, each with
//! the libvirt error number (`virErrorNumber`), error domain
//! (`virErrorDomain`) and the message text libvirt gives for it, so that
//! the driver can put them on the wire unchanged.
//!
//! Where an error comes from matters to the domain: the network
//! configuration code reports from `VIR_FROM_NETWORK`, libvirt's XML
//! helpers (root element, attribute values, forbidden characters) from
//! `VIR_FROM_XML`, and its socket address helpers (address parsing, range
//! checks) from `VIR_FROM_NONE`.

/// libvirt's `virErrorNumber` values this module produces.
pub mod code {
    /// `VIR_ERR_INTERNAL_ERROR`
    pub const INTERNAL_ERROR: i32 = 1;
    /// `VIR_ERR_INVALID_ARG`
    pub const INVALID_ARG: i32 = 8;
    /// `VIR_ERR_NO_NAME`
    pub const NO_NAME: i32 = 21;
    /// `VIR_ERR_XML_ERROR`
    pub const XML_ERROR: i32 = 27;
    /// `VIR_ERR_XML_DETAIL`
    pub const XML_DETAIL: i32 = 35;
    /// `VIR_ERR_SYSTEM_ERROR`
    pub const SYSTEM_ERROR: i32 = 38;
    /// `VIR_ERR_CONFIG_UNSUPPORTED`
    pub const CONFIG_UNSUPPORTED: i32 = 67;
}

/// libvirt's `virErrorDomain` values this module produces.
pub mod origin {
    /// `VIR_FROM_NONE`: libvirt's utility code (socket addresses).
    pub const NONE: i32 = 0;
    /// `VIR_FROM_XML`: libvirt's XML helpers.
    pub const XML: i32 = 5;
    /// `VIR_FROM_NETWORK`: the network configuration and driver.
    pub const NETWORK: i32 = 19;
}

/// A network XML document that cannot be turned into a
/// [`NetworkDef`](super::NetworkDef), or a definition the network driver
/// refuses. `Display` (and [`message`](Self::message)) is libvirt's full
/// error text, prefix included (`XML error: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkXmlError {
    /// The document is not well-formed XML, or has a `<!DOCTYPE>`
    /// (libvirt reports its parser's errors as `VIR_ERR_XML_DETAIL` from
    /// the network domain; the text is modvirt's).
    #[error(transparent)]
    Syntax(modvirt_xml::XmlError),
    /// The root element is not `<network>`.
    #[error("XML error: expecting root element of 'network', not '{found}'")]
    WrongRoot { found: String },
    /// No `<name>`, or an empty one.
    #[error("missing name information")]
    MissingName,
    /// A character libvirt does not allow in a name
    /// (`virXMLCheckIllegalChars`: the character itself is printed).
    #[error("invalid char in {field}: {ch}")]
    IllegalChar { field: &'static str, ch: char },
    /// An attribute value out of its set or not a number (libvirt's
    /// `virXMLProp*` helpers, wording included).
    #[error(
        "XML error: Invalid value for attribute '{attribute}' in element '{element}': '{value}'.{}",
        expected.map(|e| format!(" Expected {e}")).unwrap_or_default()
    )]
    InvalidAttribute {
        element: &'static str,
        attribute: &'static str,
        value: String,
        expected: Option<&'static str>,
    },
    /// A value the network parser refuses (`VIR_ERR_XML_ERROR`).
    #[error("XML error: {0}")]
    Invalid(String),
    /// A value the network parser refuses as `VIR_ERR_XML_DETAIL` (libvirt
    /// prints the detail alone).
    #[error("{0}")]
    Detail(String),
    /// A configuration the network driver does not support
    /// (`VIR_ERR_CONFIG_UNSUPPORTED`).
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// What libvirt's network code reports as an internal error although
    /// the input is at fault, e.g. `malformed uuid element`.
    #[error("internal error: {0}")]
    Internal(String),
    /// An address range refused by libvirt's socket address helpers
    /// (`virSocketAddrGetRange`, an internal error from `VIR_FROM_NONE`).
    #[error("internal error: {0}")]
    Range(String),
    /// An address `getaddrinfo` cannot parse as a number
    /// (`virSocketAddrParse`: `VIR_ERR_SYSTEM_ERROR` from `VIR_FROM_NONE`).
    #[error("Cannot parse socket address '{text}': Name or service not known")]
    Address { text: String },
    /// A bad argument (`VIR_ERR_INVALID_ARG`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl From<modvirt_xml::XmlError> for NetworkXmlError {
    fn from(e: modvirt_xml::XmlError) -> Self {
        match e {
            modvirt_xml::XmlError::BadMac(m) => Self::InvalidArgument(m),
            syntax => Self::Syntax(syntax),
        }
    }
}

impl NetworkXmlError {
    /// libvirt's `virErrorNumber` for this error.
    pub fn code(&self) -> i32 {
        match self {
            Self::WrongRoot { .. } | Self::InvalidAttribute { .. } | Self::Invalid(_) => code::XML_ERROR,
            Self::Syntax(_) | Self::IllegalChar { .. } | Self::Detail(_) => code::XML_DETAIL,
            Self::MissingName => code::NO_NAME,
            Self::Unsupported(_) => code::CONFIG_UNSUPPORTED,
            Self::Internal(_) | Self::Range(_) => code::INTERNAL_ERROR,
            Self::Address { .. } => code::SYSTEM_ERROR,
            Self::InvalidArgument(_) => code::INVALID_ARG,
        }
    }

    /// libvirt's `virErrorDomain` for this error (see the module comment).
    pub fn domain(&self) -> i32 {
        match self {
            Self::WrongRoot { .. } | Self::InvalidAttribute { .. } | Self::IllegalChar { .. } => origin::XML,
            Self::Range(_) | Self::Address { .. } => origin::NONE,
            _ => origin::NETWORK,
        }
    }

    /// The message as libvirt prints it, e.g. `XML error: …`.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// `virXMLPropEnum`/`virXMLPropTristateBool`'s refusal.
    pub(crate) fn bad_value(element: &'static str, attribute: &'static str, value: &str) -> Self {
        Self::InvalidAttribute {
            element,
            attribute,
            value: value.to_owned(),
            expected: None,
        }
    }

    /// `virXMLPropUInt`'s refusal.
    pub(crate) fn bad_uint(element: &'static str, attribute: &'static str, value: &str) -> Self {
        Self::InvalidAttribute {
            element,
            attribute,
            value: value.to_owned(),
            expected: Some("non-negative integer value"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_domains_and_prefixes() {
        let cases = [
            (NetworkXmlError::MissingName, 21, 19, "missing name information"),
            (
                NetworkXmlError::IllegalChar {
                    field: "name",
                    ch: '/',
                },
                35,
                5,
                "invalid char in name: /",
            ),
            (
                NetworkXmlError::bad_value("network", "trustGuestRxFilters", "maybe"),
                27,
                5,
                "XML error: Invalid value for attribute 'trustGuestRxFilters' in element 'network': 'maybe'.",
            ),
            (
                NetworkXmlError::bad_uint("ip", "prefix", "-1"),
                27,
                5,
                "XML error: Invalid value for attribute 'prefix' in element 'ip': '-1'. Expected non-negative integer value",
            ),
            (NetworkXmlError::Invalid("x".into()), 27, 19, "XML error: x"),
            (NetworkXmlError::Detail("x".into()), 35, 19, "x"),
            (
                NetworkXmlError::Unsupported("x".into()),
                67,
                19,
                "unsupported configuration: x",
            ),
            (NetworkXmlError::Internal("x".into()), 1, 19, "internal error: x"),
            (NetworkXmlError::Range("x".into()), 1, 0, "internal error: x"),
            (
                NetworkXmlError::Address { text: "x".into() },
                38,
                0,
                "Cannot parse socket address 'x': Name or service not known",
            ),
            (
                NetworkXmlError::WrongRoot {
                    found: "domain".into(),
                },
                27,
                5,
                "XML error: expecting root element of 'network', not 'domain'",
            ),
        ];
        for (e, code, domain, message) in cases {
            assert_eq!((e.code(), e.domain()), (code, domain), "{e:?}");
            assert_eq!(e.message(), message);
        }
    }

    #[test]
    fn from_xml_error() {
        let e = NetworkXmlError::from(modvirt_xml::XmlError::NotWellFormed {
            detail: "x".into(),
            line: 2,
            column: 3,
            element: Some("name".into()),
        });
        assert_eq!((e.code(), e.domain()), (35, 19));
        assert_eq!(
            e.message(),
            "XML error: x at line 2, column 3 (in element 'name')"
        );
        let e = NetworkXmlError::from(modvirt_xml::XmlError::BadMac("m".into()));
        assert_eq!((e.code(), e.message()), (8, "invalid argument: m".to_owned()));
    }
}
