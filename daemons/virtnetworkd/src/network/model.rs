//! The part of libvirt's network definition (`virNetworkDef`) that modvirt
//! models. Fields keep what libvirt keeps, including how a value was
//! written when libvirt prints it back that way (netmask or prefix, the
//! `family` attribute, a DHCP host's MAC as typed), so that formatting a
//! parsed definition gives what `virsh net-dumpxml` prints.

use std::net::{IpAddr, Ipv4Addr};

use modvirt_xml::MacAddr;

use modvirt_xml::xml_enum;

xml_enum! {
    /// `<forward mode>`. `None` is an isolated network: no `<forward>`
    /// element (or `mode='none'`), and nothing printed.
    #[derive(Default)]
    ForwardMode {
        #[default]
        None => "none",
        Nat => "nat",
        Route => "route",
        Open => "open",
        Bridge => "bridge",
        Private => "private",
        Vepa => "vepa",
        Passthrough => "passthrough",
        Hostdev => "hostdev",
    }
}

impl ForwardMode {
    /// The modes whose bridge, addresses, DHCP and firewall libvirt
    /// manages itself (isolated, nat, route, open): it creates their
    /// bridge device, gives it a MAC address and prints `stp`/`delay`.
    pub fn has_managed_bridge(self) -> bool {
        matches!(self, Self::None | Self::Nat | Self::Route | Self::Open)
    }
}

xml_enum! {
    /// `<forward><driver name>` (hostdev networks); libvirt's `default`
    /// is not accepted in the XML and is represented by its absence.
    ForwardDriver { Kvm => "kvm", Vfio => "vfio" }
}

xml_enum! {
    /// `<bridge macTableManager>`; libvirt's `default` is not accepted in
    /// the XML and is represented by its absence.
    MacTableManager { Kernel => "kernel", Libvirt => "libvirt" }
}

xml_enum! {
    /// `<ip family>`, kept only when the XML gives it (libvirt prints it
    /// back as given).
    IpFamily { Ipv4 => "ipv4", Ipv6 => "ipv6" }
}

/// A whole network definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDef {
    pub name: String,
    pub uuid: [u8; 16],
    /// `<network ipv6='yes'>`: guest-to-guest IPv6 without a gateway address.
    pub ipv6: bool,
    /// `<network trustGuestRxFilters>`.
    pub trust_guest_rx_filters: Option<bool>,
    pub forward: Forward,
    pub bridge: Bridge,
    /// `<mtu size>`.
    pub mtu: Option<u32>,
    /// `<mac address>`: the bridge's MAC address.
    pub mac: Option<MacAddr>,
    /// `<domain name localOnly>`: the DNS domain of the DHCP server.
    pub domain: Option<DnsDomain>,
    /// `<ip>` elements, in document order.
    pub ips: Vec<IpDef>,
}

/// `<forward>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forward {
    pub mode: ForwardMode,
    /// The devices of `<forward dev>` / `<interface dev>`: the first one
    /// is what `dev` names (libvirt prints `dev` and every `<interface>`).
    pub interfaces: Vec<String>,
    /// `<pf dev>`: the SR-IOV physical function.
    pub pf: Option<String>,
    /// `<forward managed='yes'>` (printed for hostdev networks only).
    pub managed: bool,
    /// `<driver name>`.
    pub driver: Option<ForwardDriver>,
    /// `<nat>`: only with mode `nat`.
    pub nat: Nat,
}

impl Forward {
    /// `<forward dev>`: the first interface, unless a `<pf>` is given.
    pub fn dev(&self) -> Option<&str> {
        if self.pf.is_some() {
            return None;
        }
        self.interfaces.first().map(String::as_str)
    }
}

/// `<forward mode='nat'><nat>`: the public addresses and ports to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Nat {
    /// `<address start end>` (IPv4 only).
    pub addresses: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `<port start end>`; libvirt keeps 0–0 as "not given".
    pub ports: NatPorts,
    /// `<nat ipv6>`.
    pub ipv6: Option<bool>,
}

/// `<nat><port start end>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatPorts {
    pub start: u16,
    pub end: u16,
}

impl NatPorts {
    /// Whether libvirt prints a `<port>` (and counts the range as set).
    pub fn is_set(self) -> bool {
        self.start != 0 || self.end != 0
    }
}

impl Nat {
    /// Whether there is anything to print in `<nat>`.
    pub fn is_set(&self) -> bool {
        self.addresses.is_some() || self.ports.is_set() || self.ipv6.is_some()
    }
}

/// `<bridge>`. libvirt keeps these on the network itself, so they exist
/// (with their defaults) whether or not the XML has the element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    /// `name`: the bridge device; may be a template with one `%d`.
    pub name: Option<String>,
    /// `zone`: the firewalld zone.
    pub zone: Option<String>,
    /// `stp`: on unless the XML says `off`.
    pub stp: bool,
    /// `delay`: forward delay in seconds (a C `unsigned long`).
    pub delay: u64,
    pub mac_table_manager: Option<MacTableManager>,
}

impl Default for Bridge {
    fn default() -> Self {
        Self {
            name: None,
            zone: None,
            stp: true,
            delay: 0,
            mac_table_manager: None,
        }
    }
}

/// `<domain name localOnly>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsDomain {
    pub name: String,
    pub local_only: Option<bool>,
}

/// How an `<ip>` gives its network size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpMask {
    /// `netmask='255.255.255.0'` (IPv4 only).
    Netmask(Ipv4Addr),
    /// `prefix='24'` (never 0: libvirt treats `prefix='0'` as absent).
    Prefix(u8),
    /// Neither: the classful prefix for IPv4, 64 for IPv6.
    Implied,
}

/// `<ip>`: an address of the host on the network, with its DHCP service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpDef {
    /// `family`, as written; `None` means IPv4.
    pub family: Option<IpFamily>,
    pub address: IpAddr,
    pub mask: IpMask,
    /// `localPtr`.
    pub local_ptr: Option<bool>,
    /// `<tftp root>` (IPv4 only).
    pub tftp_root: Option<String>,
    pub dhcp: Dhcp,
}

/// `<dhcp>`; printed only when it has a range or a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dhcp {
    pub ranges: Vec<DhcpRange>,
    pub hosts: Vec<DhcpHost>,
}

impl Dhcp {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.hosts.is_empty()
    }
}

/// `<dhcp><range start end>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpRange {
    pub start: IpAddr,
    pub end: IpAddr,
}

/// `<dhcp><host mac id name ip>`: a static lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpHost {
    /// The MAC address as written (validated; libvirt prints it back
    /// unchanged, upper case included). See [`DhcpHost::mac_addr`].
    pub mac: Option<String>,
    /// `id`: a DHCPv6 client id (hex digits and `:`).
    pub id: Option<String>,
    pub name: Option<String>,
    pub ip: IpAddr,
}

impl DhcpHost {
    /// The MAC address, parsed.
    pub fn mac_addr(&self) -> Option<MacAddr> {
        self.mac.as_deref().and_then(|m| MacAddr::parse(m).ok())
    }
}

impl IpDef {
    /// The prefix length libvirt uses for this address
    /// (`virSocketAddrGetIPPrefix`): the given prefix, the netmask's bits,
    /// or the implied one (classful for IPv4, 0 for `0.0.0.0` and `::`,
    /// 64 for IPv6). `None` for a non-contiguous netmask or an IPv4
    /// class D/E address without a mask.
    pub fn prefix(&self) -> Option<u8> {
        match self.mask {
            IpMask::Prefix(p) => Some(p),
            IpMask::Netmask(mask) => {
                let bits = u32::from(mask);
                let ones = bits.leading_ones();
                // Contiguous: every bit after the leading ones is zero.
                (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
            }
            IpMask::Implied => match self.address {
                IpAddr::V4(a) if a.is_unspecified() => Some(0),
                IpAddr::V4(a) => match a.octets()[0] {
                    o if o & 0x80 == 0 => Some(8),
                    o if o & 0xc0 == 0x80 => Some(16),
                    o if o & 0xe0 == 0xc0 => Some(24),
                    _ => None,
                },
                IpAddr::V6(a) if a.is_unspecified() => Some(0),
                IpAddr::V6(_) => Some(64),
            },
        }
    }

    pub fn is_ipv4(&self) -> bool {
        self.address.is_ipv4()
    }
}
