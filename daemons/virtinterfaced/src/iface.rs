//! libvirt's interface XML for a host interface's live state, with no
//! I/O: what libvirt's udev backend (`udevGetIfaceDef`) fills in and how
//! `virInterfaceDefFormat` writes it. That backend gives no IP addresses
//! (`<protocol>`) and no start mode; bridge members and bond slaves are
//! nested interfaces, which show neither MTU nor protocol.

#[cfg(test)]
mod tests;

use modvirt_xml::escape;

/// An interface and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceDef {
    pub name: String,
    /// The MAC address as text; none when the link has no Ethernet-style
    /// address.
    pub mac: Option<String>,
    pub mtu: u32,
    pub link: Link,
    pub kind: Kind,
}

/// The link state (`<link state speed/>`), as libvirt reads it from the
/// operational state and, while up, the speed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    /// `up`, `down`, `unknown`, `lowerlayerdown`, …
    pub state: Option<String>,
    /// Mb/s (4294967295 when the driver does not know, as libvirt shows it).
    pub speed: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Ethernet,
    Bridge(Bridge),
    Bond(Bond),
    Vlan(Vlan),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub stp: bool,
    /// Forward delay as the kernel reports it (centiseconds).
    pub delay: String,
    pub members: Vec<IfaceDef>,
}

/// A bond as the kernel's `bonding/` attributes describe it, in libvirt's
/// numbering (`mode` 1…7 for balance-rr…balance-alb, `carrier` 1 ioctl /
/// 2 netif, `validate` 0 none…3 all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bond {
    pub mode: u32,
    pub miimon: i32,
    pub downdelay: i32,
    pub updelay: i32,
    pub carrier: i32,
    pub arp_interval: i32,
    pub arp_target: String,
    pub validate: i32,
    pub slaves: Vec<IfaceDef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vlan {
    pub tag: String,
    pub device: String,
}

impl IfaceDef {
    /// `iface-dumpxml`'s document.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0, true);
        out
    }

    fn write(&self, out: &mut String, depth: usize, top: bool) {
        let pad = "  ".repeat(depth);
        let inner = "  ".repeat(depth + 1);
        let type_name = match self.kind {
            Kind::Ethernet => "ethernet",
            Kind::Bridge(_) => "bridge",
            Kind::Bond(_) => "bond",
            Kind::Vlan(_) => "vlan",
        };
        out.push_str(&format!(
            "{pad}<interface type='{type_name}' name='{}'>\n",
            escape(&self.name)
        ));
        if top && self.mtu != 0 {
            out.push_str(&format!("{inner}<mtu size='{}'/>\n", self.mtu));
        }
        if !matches!(self.kind, Kind::Bridge(_))
            && let Some(l) = link_xml(&self.link)
        {
            out.push_str(&format!("{inner}{l}\n"));
        }
        match &self.kind {
            Kind::Ethernet => {
                if let Some(mac) = &self.mac {
                    out.push_str(&format!("{inner}<mac address='{}'/>\n", escape(mac)));
                }
            }
            Kind::Bridge(b) => {
                out.push_str(&format!(
                    "{inner}<bridge stp='{}' delay='{}'>\n",
                    if b.stp { "on" } else { "off" },
                    escape(&b.delay)
                ));
                for m in &b.members {
                    m.write(out, depth + 2, false);
                }
                out.push_str(&format!("{inner}</bridge>\n"));
            }
            Kind::Bond(b) => b.write(out, depth + 1),
            Kind::Vlan(v) => {
                out.push_str(&format!("{inner}<vlan tag='{}'>\n", escape(&v.tag)));
                out.push_str(&format!("{inner}  <interface name='{}'/>\n", escape(&v.device)));
                out.push_str(&format!("{inner}</vlan>\n"));
            }
        }
        out.push_str(&format!("{pad}</interface>\n"));
    }
}

/// `<link speed state/>` (`virInterfaceLinkFormat`), nothing if neither
/// is known.
pub fn link_xml(l: &Link) -> Option<String> {
    if l.speed.is_none() && l.state.is_none() {
        return None;
    }
    let mut s = String::from("<link");
    if let Some(speed) = l.speed {
        s.push_str(&format!(" speed='{speed}'"));
    }
    if let Some(state) = &l.state {
        s.push_str(&format!(" state='{state}'"));
    }
    s.push_str("/>");
    Some(s)
}

const BOND_MODES: [&str; 7] = [
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
];

impl Bond {
    fn write(&self, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        let inner = "  ".repeat(depth + 1);
        let mode = usize::try_from(self.mode)
            .ok()
            .and_then(|m| m.checked_sub(1))
            .and_then(|m| BOND_MODES.get(m));
        match mode {
            Some(m) => out.push_str(&format!("{pad}<bond mode='{m}'>\n")),
            None => out.push_str(&format!("{pad}<bond>\n")),
        }
        if self.arp_interval > 0 {
            let validate = match self.validate {
                1 => " validate='active'",
                2 => " validate='backup'",
                3 => " validate='all'",
                _ => "",
            };
            out.push_str(&format!(
                "{inner}<arpmon interval='{}' target='{}'{validate}/>\n",
                self.arp_interval,
                escape(&self.arp_target)
            ));
        } else if self.miimon > 0 {
            let mut s = format!("{inner}<miimon freq='{}'", self.miimon);
            if self.downdelay > 0 {
                s.push_str(&format!(" downdelay='{}'", self.downdelay));
            }
            if self.updelay > 0 {
                s.push_str(&format!(" updelay='{}'", self.updelay));
            }
            match self.carrier {
                1 => s.push_str(" carrier='ioctl'"),
                2 => s.push_str(" carrier='netif'"),
                _ => {}
            }
            out.push_str(&s);
            out.push_str("/>\n");
        }
        for s in &self.slaves {
            s.write(out, depth + 1, false);
        }
        out.push_str(&format!("{pad}</bond>\n"));
    }
}

/// The tag and parent device of a VLAN from `/proc/net/vlan/NAME`
/// (`VID: 10` … `Device: eth0`), as libvirt reads them.
pub fn parse_proc_vlan(text: &str) -> Option<Vlan> {
    let after = text.split_once("VID: ")?.1;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    let rest = &after[digits.len()..];
    if digits.is_empty() || !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let device = rest.split_once("\nDevice: ")?.1.lines().next()?;
    if device.is_empty() {
        return None;
    }
    Some(Vlan {
        tag: digits,
        device: device.to_owned(),
    })
}
