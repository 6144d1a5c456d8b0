//! [`DomainXmlError`]: every way a domain XML can be refused, each with the
//! libvirt error number (`virErrorNumber`), error domain (`virErrorDomain`)
//! and the message text libvirt gives for it, so that the driver can put
//! them on the wire unchanged.

/// libvirt's `virErrorNumber` values this module produces.
pub mod code {
    /// `VIR_ERR_INTERNAL_ERROR`
    pub const INTERNAL_ERROR: i32 = 1;
    /// `VIR_ERR_INVALID_ARG`
    pub const INVALID_ARG: i32 = 8;
    /// `VIR_ERR_NO_SOURCE`
    pub const NO_SOURCE: i32 = 19;
    /// `VIR_ERR_NO_TARGET`
    pub const NO_TARGET: i32 = 20;
    /// `VIR_ERR_NO_NAME`
    pub const NO_NAME: i32 = 21;
    /// `VIR_ERR_XML_ERROR`
    pub const XML_ERROR: i32 = 27;
    /// `VIR_ERR_XML_DETAIL`
    pub const XML_DETAIL: i32 = 35;
    /// `VIR_ERR_CONFIG_UNSUPPORTED`
    pub const CONFIG_UNSUPPORTED: i32 = 67;
    /// `VIR_ERR_OVERFLOW`
    pub const OVERFLOW: i32 = 82;
}

/// libvirt's `virErrorDomain` values this module produces.
pub mod origin {
    /// `VIR_FROM_XML`: the XML parser and libvirt's attribute helpers.
    pub const XML: i32 = 5;
    /// `VIR_FROM_QEMU`: checks of the QEMU driver.
    pub const QEMU: i32 = 10;
    /// `VIR_FROM_DOMAIN`: the domain configuration parser.
    pub const DOMAIN: i32 = 20;
}

/// A domain XML document that cannot be turned into a
/// [`DomainDef`](super::DomainDef). `Display` (and [`message`](Self::message))
/// is libvirt's full error text, prefix included (`XML error: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainXmlError {
    /// The document is not well-formed XML, or has a `<!DOCTYPE>`.
    #[error(transparent)]
    Syntax(modvirt_xml::XmlError),
    /// The root element is not `<domain>`.
    #[error("XML error: expecting root element of 'domain', not '{found}'")]
    WrongRoot { found: String },
    /// No `<name>`, or an empty one.
    #[error("missing name information")]
    MissingName,
    /// A required attribute is absent (libvirt's `virXMLProp*` helpers).
    #[error("XML error: Missing required attribute '{attribute}' in element '{element}'")]
    MissingAttribute { element: String, attribute: String },
    /// An attribute value out of its set or not a number (libvirt's
    /// `virXMLProp*` helpers, wording included).
    #[error(
        "XML error: Invalid value for attribute '{attribute}' in element '{element}': '{value}'.{}",
        expected.as_ref().map(|e| format!(" Expected {e}")).unwrap_or_default()
    )]
    InvalidAttribute {
        element: String,
        attribute: String,
        value: String,
        expected: Option<String>,
    },
    /// A disk without `<target dev>`.
    #[error("missing target information for device{}", disk_source.as_ref().map(|s| format!(" {s}")).unwrap_or_default())]
    MissingTarget { disk_source: Option<String> },
    /// A non-removable disk without a source.
    #[error("missing source information for device {target}")]
    MissingSource { target: String },
    /// A value the domain parser refuses (`VIR_ERR_XML_ERROR`).
    #[error("XML error: {0}")]
    Invalid(String),
    /// A forbidden character (`VIR_ERR_XML_DETAIL`; libvirt prints the detail alone).
    #[error("{0}")]
    Detail(String),
    /// A configuration the QEMU driver does not support (`VIR_ERR_CONFIG_UNSUPPORTED`).
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// A bad argument, such as an unknown size unit (`VIR_ERR_INVALID_ARG`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A number too large for its field (`VIR_ERR_OVERFLOW`).
    #[error("numerical overflow: {0}")]
    Overflow(String),
    /// What libvirt reports as an internal error although the input is at
    /// fault, e.g. `malformed uuid element` (`VIR_ERR_INTERNAL_ERROR`).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<modvirt_xml::XmlError> for DomainXmlError {
    fn from(e: modvirt_xml::XmlError) -> Self {
        match e {
            modvirt_xml::XmlError::BadMac(m) => Self::InvalidArgument(m),
            syntax => Self::Syntax(syntax),
        }
    }
}

impl DomainXmlError {
    /// libvirt's `virErrorNumber` for this error.
    pub fn code(&self) -> i32 {
        match self {
            Self::Syntax(_)
            | Self::WrongRoot { .. }
            | Self::MissingAttribute { .. }
            | Self::InvalidAttribute { .. }
            | Self::Invalid(_) => code::XML_ERROR,
            Self::MissingName => code::NO_NAME,
            Self::MissingTarget { .. } => code::NO_TARGET,
            Self::MissingSource { .. } => code::NO_SOURCE,
            Self::Detail(_) => code::XML_DETAIL,
            Self::Unsupported(_) => code::CONFIG_UNSUPPORTED,
            Self::InvalidArgument(_) => code::INVALID_ARG,
            Self::Overflow(_) => code::OVERFLOW,
            Self::Internal(_) => code::INTERNAL_ERROR,
        }
    }

    /// libvirt's `virErrorDomain` for this error: the XML layer for syntax
    /// and attribute errors, the QEMU driver for what it does not support,
    /// the domain configuration for the rest.
    pub fn domain(&self) -> i32 {
        match self {
            Self::Syntax(_)
            | Self::WrongRoot { .. }
            | Self::MissingAttribute { .. }
            | Self::InvalidAttribute { .. }
            | Self::Detail(_) => origin::XML,
            Self::Unsupported(_) => origin::QEMU,
            _ => origin::DOMAIN,
        }
    }

    /// The message as libvirt prints it, e.g. `XML error: …`.
    pub fn message(&self) -> String {
        self.to_string()
    }

    pub(crate) fn invalid_attr(element: &str, attribute: &str, value: &str) -> Self {
        Self::InvalidAttribute {
            element: element.to_owned(),
            attribute: attribute.to_owned(),
            value: value.to_owned(),
            expected: None,
        }
    }

    pub(crate) fn invalid_attr_expecting(
        element: &str,
        attribute: &str,
        value: &str,
        expected: &str,
    ) -> Self {
        Self::InvalidAttribute {
            element: element.to_owned(),
            attribute: attribute.to_owned(),
            value: value.to_owned(),
            expected: Some(expected.to_owned()),
        }
    }

    pub(crate) fn missing_attr(element: &str, attribute: &str) -> Self {
        Self::MissingAttribute {
            element: element.to_owned(),
            attribute: attribute.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_attribute_matches_libvirt_trace_text() {
        // From virsh-define-invalid-xml.txt (libvirt 9.0).
        let e = DomainXmlError::invalid_attr("graphics", "type", "none");
        assert_eq!(
            e.message(),
            "XML error: Invalid value for attribute 'type' in element 'graphics': 'none'."
        );
        assert_eq!((e.code(), e.domain()), (27, 5));
    }

    #[test]
    fn codes_and_prefixes() {
        assert_eq!(DomainXmlError::MissingName.message(), "missing name information");
        assert_eq!(DomainXmlError::MissingName.code(), 21);
        let e = DomainXmlError::Unsupported("Domain requires at least 1 vCPU".into());
        assert_eq!(
            e.message(),
            "unsupported configuration: Domain requires at least 1 vCPU"
        );
        assert_eq!(e.code(), 67);
        assert_eq!(DomainXmlError::Overflow("x".into()).code(), 82);
        assert_eq!(
            DomainXmlError::MissingTarget { disk_source: None }.message(),
            "missing target information for device"
        );
        let e = DomainXmlError::from(modvirt_xml::XmlError::NotWellFormed {
            detail: "x".into(),
            line: 2,
            column: 3,
            element: Some("name".into()),
        });
        assert_eq!(e.code(), 27);
        assert_eq!(
            e.message(),
            "XML error: x at line 2, column 3 (in element 'name')"
        );
    }
}
