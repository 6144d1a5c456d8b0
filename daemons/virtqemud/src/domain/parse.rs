//! Element tree → [`DomainDef`]: the domain-level elements, in libvirt's
//! order of checks, with libvirt's messages. `<devices>` is read by
//! [`devices`](super::devices); defaults that need the whole definition are
//! applied by [`defaults`](super::defaults), and limits checked by
//! [`validate`](super::validate).

use super::DomainXmlError as E;
use super::model::*;
use super::{defaults, devices, validate};
use modvirt_xml::{Element, parse_tree};
use modvirt_xml::{RandomSource, generate_uuid, parse_uuid};

/// libvirt's domain types other than QEMU's: valid XML, refused here.
const OTHER_VIRT_TYPES: &[&str] = &[
    "kqemu",
    "xen",
    "lxc",
    "uml",
    "openvz",
    "test",
    "vmware",
    "hyperv",
    "vbox",
    "phyp",
    "parallels",
    "bhyve",
    "vz",
    "ch",
    "hvf",
];
/// libvirt's OS types other than `hvm`.
const OTHER_OS_TYPES: &[&str] = &["xen", "linux", "exe", "uml", "xenpvh"];
/// Architectures (libvirt names) QEMU has a system emulator for.
const KNOWN_ARCHES: &[&str] = &[
    "i686",
    "x86_64",
    "aarch64",
    "armv6l",
    "armv7l",
    "armv7b",
    "ppc",
    "ppc64",
    "ppc64le",
    "s390",
    "s390x",
    "riscv32",
    "riscv64",
    "mips",
    "mipsel",
    "mips64",
    "mips64el",
    "sparc",
    "sparc64",
    "alpha",
    "m68k",
    "microblaze",
    "microblazeel",
    "loongarch64",
    "sh4",
    "sh4eb",
    "xtensa",
    "xtensaeb",
    "or32",
    "cris",
    "lm32",
    "unicore32",
];
/// libvirt keeps sizes below `LLONG_MAX` bytes.
const MAX_BYTES: u64 = i64::MAX as u64;

/// What device parsing needs to know about the domain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub arch: &'a str,
}

impl Ctx<'_> {
    pub fn is_x86(&self) -> bool {
        matches!(self.arch, "i686" | "x86_64")
    }
}

/// Parses a whole document. See [`DomainDef::parse`].
pub(crate) fn parse_domain(xml: &str, rng: &mut dyn RandomSource) -> Result<DomainDef, E> {
    let root = parse_tree(xml, "domain")?;
    if root.name != "domain" {
        return Err(E::WrongRoot { found: root.name });
    }
    let virt_type = parse_virt_type(&root)?;

    let name = root.child_text("name").ok_or(E::MissingName)?.to_owned();
    validate::validate_name(&name)?;
    let uuid = match root.child_text("uuid") {
        Some(text) => parse_uuid(text).ok_or_else(|| E::Internal("malformed uuid element".into()))?,
        None => generate_uuid(rng),
    };
    let title = root.child_text("title").map(str::to_owned);
    if title.as_deref().is_some_and(|t| t.contains('\n')) {
        return Err(E::Invalid("Domain title can't contain newlines".into()));
    }
    let description = root.child_text("description").map(str::to_owned);

    let memory_kib = parse_memory(&root, "memory")?.unwrap_or(0);
    let current_memory_kib = parse_memory(&root, "currentMemory")?.unwrap_or(0);
    let vcpu = parse_vcpu(&root)?;
    let os = parse_os(&root)?;
    let ctx = Ctx { arch: &os.arch };
    let features = parse_features(&root);
    let cpu = parse_cpu(&root)?;
    let clock = parse_clock(&root)?;
    let on_poweroff = parse_lifecycle(&root, "on_poweroff", LifecycleAction::Destroy, false)?;
    let on_reboot = parse_lifecycle(&root, "on_reboot", LifecycleAction::Restart, false)?;
    let on_crash = parse_lifecycle(&root, "on_crash", LifecycleAction::Destroy, true)?;
    let devices = match root.child("devices") {
        Some(el) => devices::parse_devices(el, ctx, rng)?,
        None => Devices::default(),
    };

    let mut def = DomainDef {
        virt_type,
        name,
        uuid,
        title,
        description,
        memory_kib,
        current_memory_kib,
        vcpu,
        os,
        features,
        cpu,
        clock,
        on_poweroff,
        on_reboot,
        on_crash,
        devices,
    };
    defaults::apply(&mut def);
    validate::validate_def(&def)?;
    Ok(def)
}

/// An attribute whose values are an enum; an unknown value is refused with
/// libvirt's `virXMLPropEnum` message.
pub(crate) fn enum_attr<T>(el: &Element, attr: &str, from: fn(&str) -> Option<T>) -> Result<Option<T>, E> {
    match el.attr(attr) {
        None => Ok(None),
        Some(v) => from(v)
            .map(Some)
            .ok_or_else(|| E::invalid_attr(&el.name, attr, v)),
    }
}

/// A `yes`/`no` attribute (libvirt's tristate bool).
pub(crate) fn yes_no_attr(el: &Element, attr: &str) -> Result<Option<bool>, E> {
    enum_attr(el, attr, |v| match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    })
}

/// An `on`/`off` attribute (libvirt's tristate switch).
fn on_off_attr(el: &Element, attr: &str) -> Result<Option<bool>, E> {
    enum_attr(el, attr, |v| match v {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    })
}

/// A non-negative integer attribute, refused with libvirt's `virXMLPropUInt` message.
pub(crate) fn uint_attr(el: &Element, attr: &str) -> Result<Option<u32>, E> {
    match el.attr(attr) {
        None => Ok(None),
        Some(v) => parse_unsigned(v)
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| E::invalid_attr_expecting(&el.name, attr, v, "non-negative integer value")),
    }
}

/// An unsigned decimal the way `strtoull` reads one (surrounding white
/// space and a leading `+` allowed), without wrapping.
pub(crate) fn parse_unsigned(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_virt_type(root: &Element) -> Result<VirtType, E> {
    let value = root
        .attr("type")
        .ok_or_else(|| E::missing_attr("domain", "type"))?;
    match VirtType::from_xml(value) {
        Some(t) => Ok(t),
        None if OTHER_VIRT_TYPES.contains(&value) => Err(E::Unsupported(format!(
            "domain type '{value}' is not supported by the QEMU driver"
        ))),
        None => Err(E::invalid_attr("domain", "type", value)),
    }
}

/// Scales `value` by a libvirt size unit (`virScaleInteger`): `b`/`bytes`,
/// `k`/`KiB` … `e`/`EiB` (powers of 1024), `KB` … `EB` (powers of 1000),
/// case-insensitively; no unit means `default_scale`. The result must not
/// exceed `limit`.
pub fn scale_to_bytes(value: u64, unit: Option<&str>, default_scale: u64, limit: u64) -> Result<u64, E> {
    let unit = unit.unwrap_or("");
    let unknown = || E::InvalidArgument(format!("unknown suffix '{unit}'"));
    let b = unit.as_bytes();
    let scale = if b.is_empty() {
        default_scale
    } else if ["b", "byte", "bytes"]
        .iter()
        .any(|s| unit.eq_ignore_ascii_case(s))
    {
        1
    } else {
        let base: u64 = if b.len() == 1 || b[1..].eq_ignore_ascii_case(b"ib") {
            1024
        } else if b.len() == 2 && b[1].eq_ignore_ascii_case(&b'b') {
            1000
        } else {
            return Err(unknown());
        };
        let power = match b[0].to_ascii_lowercase() {
            b'k' => 1,
            b'm' => 2,
            b'g' => 3,
            b't' => 4,
            b'p' => 5,
            b'e' => 6,
            _ => return Err(unknown()),
        };
        base.pow(power)
    };
    if scale == 0 || value > limit / scale {
        return Err(E::Overflow(format!("value too large: {value}{unit}")));
    }
    Ok(value * scale)
}

/// `<memory>` / `<currentMemory>` in KiB (rounded up), `None` when absent.
fn parse_memory(root: &Element, name: &str) -> Result<Option<u64>, E> {
    let Some(el) = root.child(name) else {
        return Ok(None);
    };
    if el.text.is_empty() {
        return Ok(None);
    }
    let value = parse_unsigned(&el.text).ok_or_else(|| {
        E::Invalid(format!(
            "Invalid value '{}' for element or attribute './{name}[1]'",
            el.text
        ))
    })?;
    let bytes = scale_to_bytes(value, el.attr("unit"), 1024, MAX_BYTES)?;
    Ok(Some(bytes.div_ceil(1024)))
}

fn parse_vcpu(root: &Element) -> Result<Vcpu, E> {
    let Some(el) = root.child("vcpu") else {
        return Ok(Vcpu {
            max: 1,
            current: 1,
            placement: VcpuPlacement::Static,
        });
    };
    let max = if el.text.trim().is_empty() {
        1
    } else {
        parse_unsigned(&el.text)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| E::Invalid("maximum vcpus count must be an integer".into()))?
    };
    let current = match el.attr("current") {
        None => max,
        Some(c) => parse_unsigned(c)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| E::Invalid("current vcpus count must be an integer".into()))?,
    };
    if current > max {
        return Err(E::Unsupported(format!(
            "maxvcpus must not be less than current vcpus ({max} < {current})"
        )));
    }
    let placement = match el.attr("placement") {
        None => VcpuPlacement::Static,
        Some(p) => VcpuPlacement::from_xml(p)
            .ok_or_else(|| E::Unsupported(format!("Unsupported CPU placement mode '{p}'")))?,
    };
    Ok(Vcpu {
        max,
        current,
        placement,
    })
}

/// The libvirt name of the architecture this daemon runs on: the default
/// guest architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86" => "i686",
        "aarch64" => "aarch64",
        "arm" => "armv7l",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loongarch64",
        _ => "x86_64",
    }
}

/// QEMU's default machine type for an architecture, as libvirt asks for it.
fn default_machine(arch: &str) -> &'static str {
    match arch {
        "i686" | "x86_64" => "pc",
        "ppc64" | "ppc64le" => "pseries",
        "s390x" => "s390-ccw-virtio",
        _ => "virt",
    }
}

fn parse_os(root: &Element) -> Result<Os, E> {
    let os = root.child("os");
    let type_el = os.and_then(|o| o.child("type")).filter(|t| !t.text.is_empty());
    let Some(type_el) = type_el else {
        return Err(E::Invalid("an os <type> must be specified".into()));
    };
    let os_type = type_el.text.trim();
    if os_type != "hvm" {
        if OTHER_OS_TYPES.contains(&os_type) {
            return Err(E::Unsupported(format!(
                "os type '{os_type}' is not supported by the QEMU driver"
            )));
        }
        return Err(E::Invalid(format!("unknown OS type '{os_type}'")));
    }
    let arch = match type_el.attr("arch") {
        None => host_arch().to_owned(),
        Some(a) if KNOWN_ARCHES.contains(&a) => a.to_owned(),
        Some(a) => return Err(E::Unsupported(format!("Unknown architecture {a}"))),
    };
    let machine = match type_el.attr("machine") {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => default_machine(&arch).to_owned(),
    };
    let mut boot = Vec::new();
    // libvirt reads at most one <boot> per device kind.
    for el in os.into_iter().flat_map(|o| o.children_named("boot")).take(4) {
        let dev = el
            .attr("dev")
            .ok_or_else(|| E::Internal("missing boot device".into()))?;
        let dev =
            BootDevice::from_xml(dev).ok_or_else(|| E::Internal(format!("unknown boot device '{dev}'")))?;
        boot.push(dev);
    }
    if boot.is_empty() {
        boot.push(BootDevice::Hd);
    }
    Ok(Os {
        os_type: os_type.to_owned(),
        arch,
        machine,
        boot,
    })
}

fn parse_features(root: &Element) -> Features {
    match root.child("features") {
        Some(f) => Features {
            acpi: f.child("acpi").is_some(),
            apic: f.child("apic").is_some(),
        },
        None => Features::default(),
    }
}

fn parse_cpu(root: &Element) -> Result<Option<Cpu>, E> {
    let Some(el) = root.child("cpu") else {
        return Ok(None);
    };
    let mode = enum_attr(el, "mode", CpuMode::from_xml)?.unwrap_or(CpuMode::Custom);
    let cpu_match = enum_attr(el, "match", CpuMatch::from_xml)?;
    let check = enum_attr(el, "check", CpuCheck::from_xml)?;
    let migratable = on_off_attr(el, "migratable")?;
    let model = match el.child("model").filter(|m| !m.text.trim().is_empty()) {
        Some(m) => Some(CpuModel {
            name: m.text.trim().to_owned(),
            fallback: enum_attr(m, "fallback", CpuFallback::from_xml)?.unwrap_or(CpuFallback::Allow),
        }),
        None => None,
    };
    let mut features = Vec::new();
    for f in el.children_named("feature") {
        let name = f.attr("name").filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| E::Invalid("Missing CPU feature name".into()))?;
        let policy = enum_attr(f, "policy", CpuFeaturePolicy::from_xml)?.unwrap_or(CpuFeaturePolicy::Require);
        features.push(CpuFeature {
            policy,
            name: name.to_owned(),
        });
    }
    if mode == CpuMode::Custom && model.is_none() {
        if !features.is_empty() {
            return Err(E::Invalid(
                "Non-empty feature list specified without CPU model".into(),
            ));
        }
        // An empty <cpu/>: as if absent.
        return Ok(None);
    }
    let cpu_match = (mode == CpuMode::Custom).then(|| cpu_match.unwrap_or(CpuMatch::Exact));
    Ok(Some(Cpu {
        mode,
        cpu_match,
        check,
        migratable,
        model,
        features,
    }))
}

fn parse_clock(root: &Element) -> Result<Clock, E> {
    let Some(el) = root.child("clock") else {
        return Ok(Clock::Utc);
    };
    match el.attr("offset") {
        None | Some("utc") => Ok(Clock::Utc),
        Some("localtime") => Ok(Clock::Localtime),
        Some("timezone") => match el.attr("timezone") {
            Some(tz) if !tz.is_empty() => Ok(Clock::Timezone(tz.to_owned())),
            _ => Err(E::Invalid(
                "missing 'timezone' attribute for clock with offset='timezone'".into(),
            )),
        },
        Some("variable") => {
            let adjustment = match el.attr("adjustment") {
                None => 0,
                Some(a) => a
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| E::Invalid(format!("unknown clock adjustment '{a}'")))?,
            };
            let basis = enum_attr(el, "basis", ClockBasis::from_xml)?.unwrap_or(ClockBasis::Utc);
            Ok(Clock::Variable { adjustment, basis })
        }
        Some("absolute") => Err(E::Unsupported("clock offset 'absolute' is not supported".into())),
        Some(other) => Err(E::invalid_attr("clock", "offset", other)),
    }
}

fn parse_lifecycle(
    root: &Element,
    name: &str,
    default: LifecycleAction,
    coredump_allowed: bool,
) -> Result<LifecycleAction, E> {
    let Some(text) = root.child_text(name) else {
        return Ok(default);
    };
    let text = text.trim();
    match LifecycleAction::from_xml(text) {
        Some(LifecycleAction::CoredumpDestroy | LifecycleAction::CoredumpRestart) if !coredump_allowed => {
            Err(E::Invalid(format!("invalid {name} value: '{text}'")))
        }
        Some(action) => Ok(action),
        None => Err(E::Invalid(format!("invalid {name} value: '{text}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_scale_like_vir_scale_integer() {
        let kib = |v, u: &str| scale_to_bytes(v, Some(u), 1024, MAX_BYTES).map(|b| b / 1024);
        assert_eq!(scale_to_bytes(64, None, 1024, MAX_BYTES), Ok(65536));
        for (unit, want) in [
            ("b", 1),
            ("bytes", 1),
            ("k", 1024),
            ("KiB", 1024),
            ("KB", 1000),
            ("M", 1 << 20),
            ("MiB", 1 << 20),
            ("mib", 1 << 20),
            ("MB", 1_000_000),
            ("G", 1 << 30),
            ("GiB", 1 << 30),
            ("GB", 1_000_000_000),
            ("T", 1 << 40),
            ("TiB", 1 << 40),
            ("TB", 1_000_000_000_000),
            ("PiB", 1 << 50),
            ("EiB", 1 << 60),
        ] {
            assert_eq!(scale_to_bytes(1, Some(unit), 1024, u64::MAX), Ok(want), "{unit}");
        }
        assert_eq!(kib(64, "MiB"), Ok(65536));
        assert_eq!(kib(2, "GiB"), Ok(2 * 1024 * 1024));
        let e = scale_to_bytes(1, Some("furlong"), 1024, MAX_BYTES).unwrap_err();
        assert_eq!(e.message(), "invalid argument: unknown suffix 'furlong'");
        assert_eq!(e.code(), 8);
        assert!(scale_to_bytes(1, Some("x"), 1024, MAX_BYTES).is_err());
        assert!(scale_to_bytes(1, Some("é"), 1024, MAX_BYTES).is_err());
        let e = scale_to_bytes(9_000_000, Some("T"), 1024, MAX_BYTES).unwrap_err();
        assert_eq!(e.message(), "numerical overflow: value too large: 9000000T");
        assert_eq!(e.code(), 82);
    }

    #[test]
    fn unsigned_text() {
        assert_eq!(parse_unsigned(" 64\n"), Some(64));
        assert_eq!(parse_unsigned("+1"), Some(1));
        for bad in ["", "-1", "1.5", "0x10", "99999999999999999999", "1 2"] {
            assert_eq!(parse_unsigned(bad), None, "{bad}");
        }
    }
}
