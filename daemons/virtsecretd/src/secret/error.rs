//! [`SecretXmlError`]: every way a secret XML can be refused, with the
//! libvirt error number, error domain and message libvirt gives for it.
//!
//! libvirt's secret configuration code reports from `VIR_FROM_SECRET`; its
//! XML helper that checks the root element reports from `VIR_FROM_XML`.

/// libvirt's `virErrorNumber` values this module produces.
pub mod code {
    /// `VIR_ERR_INTERNAL_ERROR`
    pub const INTERNAL_ERROR: i32 = 1;
    /// `VIR_ERR_XML_ERROR`
    pub const XML_ERROR: i32 = 27;
    /// `VIR_ERR_XML_DETAIL`
    pub const XML_DETAIL: i32 = 35;
    /// `VIR_ERR_CONFIG_UNSUPPORTED`
    pub const CONFIG_UNSUPPORTED: i32 = 67;
}

/// libvirt's `virErrorDomain` values this module produces.
pub mod origin {
    /// `VIR_FROM_XML`
    pub const XML: i32 = 5;
    /// `VIR_FROM_SECRET`
    pub const SECRET: i32 = 30;
}

/// A secret XML document that cannot be turned into a
/// [`SecretDef`](super::SecretDef). `Display` is libvirt's full message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretXmlError {
    /// Not well-formed XML, or a `<!DOCTYPE>` (`VIR_ERR_XML_DETAIL`).
    #[error(transparent)]
    Syntax(modvirt_xml::XmlError),
    /// The root element is not `<secret>`.
    #[error("XML error: expecting root element of 'secret', not '{found}'")]
    WrongRoot { found: String },
    /// `ephemeral` or `private` is neither `yes` nor `no`.
    #[error("XML error: invalid value of '{attribute}'")]
    YesNo { attribute: &'static str },
    /// A `<uuid>` that is not a UUID.
    #[error("internal error: malformed uuid element")]
    MalformedUuid,
    /// `<usage>` without a `type`.
    #[error("XML error: unknown secret usage type")]
    MissingUsageType,
    /// `<usage type='…'>` naming no usage libvirt knows.
    #[error("unsupported configuration: unknown secret usage type {0}")]
    UnknownUsageType(String),
    /// A usage without the child that identifies what it is for
    /// (`volume usage specified, but volume path is missing`, …).
    #[error("internal error: {0}")]
    MissingUsageId(&'static str),
}

impl From<modvirt_xml::XmlError> for SecretXmlError {
    fn from(e: modvirt_xml::XmlError) -> Self {
        Self::Syntax(e)
    }
}

impl SecretXmlError {
    /// libvirt's `virErrorNumber` for this error.
    pub fn code(&self) -> i32 {
        match self {
            Self::Syntax(_) => code::XML_DETAIL,
            Self::WrongRoot { .. } | Self::YesNo { .. } | Self::MissingUsageType => code::XML_ERROR,
            Self::MalformedUuid | Self::MissingUsageId(_) => code::INTERNAL_ERROR,
            Self::UnknownUsageType(_) => code::CONFIG_UNSUPPORTED,
        }
    }

    /// libvirt's `virErrorDomain` for this error.
    pub fn domain(&self) -> i32 {
        match self {
            Self::WrongRoot { .. } => origin::XML,
            _ => origin::SECRET,
        }
    }

    /// The message as libvirt prints it.
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
                SecretXmlError::WrongRoot {
                    found: "network".into(),
                },
                27,
                5,
                "XML error: expecting root element of 'secret', not 'network'",
            ),
            (
                SecretXmlError::YesNo { attribute: "private" },
                27,
                30,
                "XML error: invalid value of 'private'",
            ),
            (
                SecretXmlError::MalformedUuid,
                1,
                30,
                "internal error: malformed uuid element",
            ),
            (
                SecretXmlError::MissingUsageType,
                27,
                30,
                "XML error: unknown secret usage type",
            ),
            (
                SecretXmlError::UnknownUsageType("disk".into()),
                67,
                30,
                "unsupported configuration: unknown secret usage type disk",
            ),
            (
                SecretXmlError::MissingUsageId("TLS usage specified, but name is missing"),
                1,
                30,
                "internal error: TLS usage specified, but name is missing",
            ),
        ];
        for (e, code, domain, message) in cases {
            assert_eq!((e.code(), e.domain()), (code, domain), "{e:?}");
            assert_eq!(e.message(), message);
        }
        let e = SecretXmlError::from(modvirt_xml::XmlError::NotWellFormed {
            detail: "x".into(),
            line: 1,
            column: 2,
            element: None,
        });
        assert_eq!((e.code(), e.domain()), (35, 30));
        assert_eq!(e.message(), "XML error: x at line 1, column 2");
    }
}
