//! [`StorageXmlError`]: every way a pool or volume XML can be refused,
//! with the libvirt error number (`virErrorNumber`), error domain
//! (`virErrorDomain`) and the message libvirt gives, so the driver puts
//! them on the wire unchanged.
//!
//! Where an error comes from decides its domain: the storage configuration
//! code reports from `VIR_FROM_STORAGE`, libvirt's XML helpers (root
//! element, attribute values, forbidden characters) from `VIR_FROM_XML`,
//! and its number scaling (`virScaleInteger`) from `VIR_FROM_NONE`.

/// libvirt's `virErrorNumber` values this module produces.
pub mod code {
    /// `VIR_ERR_INVALID_ARG`
    pub const INVALID_ARG: i32 = 8;
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
    /// `VIR_FROM_NONE`: libvirt's utility code (number scaling).
    pub const NONE: i32 = 0;
    /// `VIR_FROM_XML`: libvirt's XML helpers.
    pub const XML: i32 = 5;
    /// `VIR_FROM_STORAGE`: the storage configuration and driver.
    pub const STORAGE: i32 = 18;
}

/// A pool or volume document that cannot be turned into a definition.
/// `Display` (and [`message`](Self::message)) is libvirt's full error
/// text, prefix included (`XML error: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageXmlError {
    /// Not well-formed XML, or a `<!DOCTYPE>` (reported, as the network
    /// driver does, as `VIR_ERR_XML_DETAIL` from the storage domain).
    #[error(transparent)]
    Syntax(modvirt_xml::XmlError),
    /// The root element is not the one expected (`pool`, `volume`,
    /// `poolstate`).
    #[error("XML error: expecting root element of '{expected}', not '{found}'")]
    WrongRoot { expected: &'static str, found: String },
    /// A required attribute is missing (`virXMLPropEnum` with
    /// `VIR_XML_PROP_REQUIRED`).
    #[error("XML error: Missing required attribute '{attribute}' in element '{element}'")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    /// An attribute value out of its set (`virXMLPropEnum`).
    #[error("XML error: Invalid value for attribute '{attribute}' in element '{element}': '{value}'.")]
    InvalidAttribute {
        element: &'static str,
        attribute: &'static str,
        value: String,
    },
    /// A character libvirt does not allow in a name
    /// (`virXMLCheckIllegalChars`).
    #[error("invalid char in {field}: {ch}")]
    IllegalChar { field: &'static str, ch: char },
    /// A value the storage parser refuses (`VIR_ERR_XML_ERROR`).
    #[error("XML error: {0}")]
    Invalid(String),
    /// A construct the storage driver does not support
    /// (`VIR_ERR_CONFIG_UNSUPPORTED`).
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// A path that is not absolute (libvirt refuses it when it builds the
    /// pool; modvirt already when it reads the definition).
    #[error("invalid argument: path '{0}' is not absolute")]
    NotAbsolute(String),
    /// A size unit `virScaleInteger` does not know.
    #[error("invalid argument: unknown suffix '{0}'")]
    UnknownSuffix(String),
    /// A size that does not fit once scaled (libvirt's limit: `LLONG_MAX`
    /// bytes).
    #[error("numerical overflow: value too large: {value}{suffix}")]
    TooLarge { value: u64, suffix: String },
}

impl From<modvirt_xml::XmlError> for StorageXmlError {
    fn from(e: modvirt_xml::XmlError) -> Self {
        Self::Syntax(e)
    }
}

impl StorageXmlError {
    /// libvirt's `virErrorNumber` for this error.
    pub fn code(&self) -> i32 {
        match self {
            Self::WrongRoot { .. }
            | Self::MissingAttribute { .. }
            | Self::InvalidAttribute { .. }
            | Self::Invalid(_) => code::XML_ERROR,
            Self::Syntax(_) | Self::IllegalChar { .. } => code::XML_DETAIL,
            Self::Unsupported(_) => code::CONFIG_UNSUPPORTED,
            Self::NotAbsolute(_) | Self::UnknownSuffix(_) => code::INVALID_ARG,
            Self::TooLarge { .. } => code::OVERFLOW,
        }
    }

    /// libvirt's `virErrorDomain` for this error (see the module comment).
    pub fn domain(&self) -> i32 {
        match self {
            Self::WrongRoot { .. }
            | Self::MissingAttribute { .. }
            | Self::InvalidAttribute { .. }
            | Self::IllegalChar { .. } => origin::XML,
            Self::UnknownSuffix(_) | Self::TooLarge { .. } => origin::NONE,
            _ => origin::STORAGE,
        }
    }

    /// The message as libvirt prints it, e.g. `XML error: …`.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_domains_and_messages() {
        let cases = [
            (
                StorageXmlError::WrongRoot {
                    expected: "pool",
                    found: "network".into(),
                },
                27,
                5,
                "XML error: expecting root element of 'pool', not 'network'",
            ),
            (
                StorageXmlError::MissingAttribute {
                    element: "pool",
                    attribute: "type",
                },
                27,
                5,
                "XML error: Missing required attribute 'type' in element 'pool'",
            ),
            (
                StorageXmlError::InvalidAttribute {
                    element: "pool",
                    attribute: "type",
                    value: "nfs".into(),
                },
                27,
                5,
                "XML error: Invalid value for attribute 'type' in element 'pool': 'nfs'.",
            ),
            (
                StorageXmlError::IllegalChar {
                    field: "name",
                    ch: '\n',
                },
                35,
                5,
                "invalid char in name: \n",
            ),
            (
                StorageXmlError::Invalid("missing volume name element".into()),
                27,
                18,
                "XML error: missing volume name element",
            ),
            (
                StorageXmlError::Unsupported("x".into()),
                67,
                18,
                "unsupported configuration: x",
            ),
            (
                StorageXmlError::NotAbsolute("rel/dir".into()),
                8,
                18,
                "invalid argument: path 'rel/dir' is not absolute",
            ),
            (
                StorageXmlError::UnknownSuffix("QB".into()),
                8,
                0,
                "invalid argument: unknown suffix 'QB'",
            ),
            (
                StorageXmlError::TooLarge {
                    value: 9,
                    suffix: "EiB".into(),
                },
                82,
                0,
                "numerical overflow: value too large: 9EiB",
            ),
        ];
        for (e, code, domain, message) in cases {
            assert_eq!((e.code(), e.domain()), (code, domain), "{e:?}");
            assert_eq!(e.message(), message);
        }
        let e = StorageXmlError::from(modvirt_xml::XmlError::NotWellFormed {
            detail: "x".into(),
            line: 1,
            column: 2,
            element: None,
        });
        assert_eq!((e.code(), e.domain()), (35, 18));
        assert_eq!(e.message(), "XML error: x at line 1, column 2");
    }
}
