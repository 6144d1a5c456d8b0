//! [`NwFilterXmlError`]: every way a network filter XML can be refused,
//! with the libvirt error number, error domain and message libvirt gives.
//!
//! libvirt's nwfilter configuration code reports from `VIR_FROM_NWFILTER`;
//! its XML helpers (root element, forbidden characters) from `VIR_FROM_XML`.

/// libvirt's `virErrorNumber` values this module produces.
pub mod code {
    /// `VIR_ERR_INTERNAL_ERROR`
    pub const INTERNAL_ERROR: i32 = 1;
    /// `VIR_ERR_INVALID_ARG`
    pub const INVALID_ARG: i32 = 8;
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
    /// `VIR_FROM_NWFILTER`
    pub const NWFILTER: i32 = 33;
}

/// A network filter document that cannot be turned into an
/// [`NwFilterDef`](super::NwFilterDef). `Display` is libvirt's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NwFilterXmlError {
    /// Not well-formed XML, or a `<!DOCTYPE>` (`VIR_ERR_XML_DETAIL`).
    #[error(transparent)]
    Syntax(modvirt_xml::XmlError),
    /// The root element is not `<filter>`.
    #[error("XML error: expecting root element of 'filter', not '{found}'")]
    WrongRoot { found: String },
    /// No `name` attribute, or an empty one.
    #[error("internal error: filter has no name")]
    NoName,
    /// A character a name may not have (it names the file `NAME.xml`).
    #[error("invalid char in name: {ch}")]
    IllegalChar { ch: char },
    /// `priority` on `<filter>` is not a number.
    #[error("invalid argument: Could not parse chain priority '{0}'")]
    ChainPriority(String),
    /// `priority` on `<filter>` outside [-1000, 1000].
    #[error("invalid argument: Priority '{0}' is outside valid range of [-1000,1000]")]
    ChainPriorityRange(i32),
    #[error("invalid argument: Name of chain is longer than 12 characters")]
    ChainTooLong,
    #[error("invalid argument: Chain name contains invalid characters")]
    ChainChars,
    /// A chain that neither is `root` nor starts with a known prefix.
    #[error(
        "invalid argument: Invalid chain name '{0}'. Please use a chain name called 'root' or any of the following prefixes: mac, vlan, stp, arp, rarp, ipv4, ipv6"
    )]
    ChainName(String),
    /// A `<uuid>` that is not a UUID.
    #[error("XML error: malformed uuid element")]
    MalformedUuid,
    #[error("internal error: rule node requires action attribute")]
    MissingAction,
    #[error("unsupported configuration: unknown rule action attribute value")]
    UnknownAction,
    #[error("internal error: rule node requires direction attribute")]
    MissingDirection,
    #[error("unsupported configuration: unknown rule direction attribute value")]
    UnknownDirection,
    /// A protocol attribute whose value its type refuses.
    #[error("internal error: {attribute} has illegal value {value}")]
    IllegalValue { attribute: &'static str, value: String },
    /// Ports in an `ip`/`ipv6` rule without a port-carrying protocol.
    #[error(
        "internal error: {0} rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)"
    )]
    PortsNeedProtocol(&'static str),
    /// `<filterref>` without `filter` (libvirt reuses the rule's wording).
    #[error("internal error: rule node requires action attribute")]
    MissingFilterRef,
}

impl From<modvirt_xml::XmlError> for NwFilterXmlError {
    fn from(e: modvirt_xml::XmlError) -> Self {
        Self::Syntax(e)
    }
}

impl NwFilterXmlError {
    /// libvirt's `virErrorNumber` for this error.
    pub fn code(&self) -> i32 {
        match self {
            Self::Syntax(_) | Self::IllegalChar { .. } => code::XML_DETAIL,
            Self::WrongRoot { .. } | Self::MalformedUuid => code::XML_ERROR,
            Self::ChainPriority(_)
            | Self::ChainPriorityRange(_)
            | Self::ChainTooLong
            | Self::ChainChars
            | Self::ChainName(_) => code::INVALID_ARG,
            Self::UnknownAction | Self::UnknownDirection => code::CONFIG_UNSUPPORTED,
            Self::NoName
            | Self::MissingAction
            | Self::MissingDirection
            | Self::IllegalValue { .. }
            | Self::PortsNeedProtocol(_)
            | Self::MissingFilterRef => code::INTERNAL_ERROR,
        }
    }

    /// libvirt's `virErrorDomain` for this error.
    pub fn domain(&self) -> i32 {
        match self {
            Self::WrongRoot { .. } | Self::IllegalChar { .. } => origin::XML,
            _ => origin::NWFILTER,
        }
    }

    /// The message as libvirt prints it.
    pub fn message(&self) -> String {
        self.to_string()
    }
}
