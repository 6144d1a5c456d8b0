//! Element tree → [`PoolDef`] / [`VolDef`], as libvirt's
//! `virStoragePoolDefParseXML` and `virStorageVolDefParseXML` read them:
//! in libvirt's order of checks, with libvirt's messages.
//!
//! libvirt reads values through XPath `string()`, for which an empty
//! element or attribute is the same as a missing one
//! ([`Element::child_text`], [`xpath_attr`]); the pool `type` is read with
//! `virXMLPropEnum`, which keeps an empty string (and refuses it).

use super::StorageXmlError as E;
use super::model::*;
use modvirt_xml::{Element, RandomSource, generate_uuid, parse_tree, parse_uuid};

/// An attribute as XPath `string(./@name)` gives it: `None` when absent
/// or empty.
fn xpath_attr<'a>(el: &'a Element, name: &str) -> Option<&'a str> {
    el.attr(name).filter(|v| !v.is_empty())
}

fn root(xml: &str, expected: &'static str) -> Result<Element, E> {
    let root = parse_tree(xml, expected)?;
    if root.name != expected {
        return Err(E::WrongRoot {
            expected,
            found: root.name,
        });
    }
    Ok(root)
}

/// Parses a `<pool>` document (`virStoragePoolDefParse`).
pub(crate) fn parse_pool(xml: &str, rng: &mut dyn RandomSource) -> Result<PoolDef, E> {
    pool_from_element(&root(xml, "pool")?, rng)
}

/// Parses a status file: `<poolstate>` around the live `<pool>`.
pub(crate) fn parse_pool_state(xml: &str, rng: &mut dyn RandomSource) -> Result<PoolDef, E> {
    let state = root(xml, "poolstate")?;
    let pool = state
        .child("pool")
        .ok_or_else(|| E::Invalid("Could not find any 'pool' element in state file".into()))?;
    pool_from_element(pool, rng)
}

fn pool_from_element(root: &Element, rng: &mut dyn RandomSource) -> Result<PoolDef, E> {
    let type_text = root.attr("type").ok_or(E::MissingAttribute {
        element: "pool",
        attribute: "type",
    })?;
    let pool_type = PoolType::from_xml(type_text).ok_or_else(|| E::InvalidAttribute {
        element: "pool",
        attribute: "type",
        value: type_text.to_owned(),
    })?;
    if pool_type != PoolType::Dir {
        return Err(E::Unsupported(format!(
            "storage pool type '{pool_type}' is not supported: this virtstoraged manages 'dir' pools only"
        )));
    }
    let name = root
        .child_text("name")
        .ok_or_else(|| E::Invalid("missing pool source name element".into()))?;
    if name.contains('/') {
        return Err(E::Invalid(format!("name {name} cannot contain '/'")));
    }
    let uuid = match root.child_text("uuid") {
        Some(text) => parse_uuid(text).ok_or_else(|| E::Invalid("malformed uuid element".into()))?,
        None => generate_uuid(rng),
    };
    let target = root.child("target");
    let path = target
        .and_then(|t| t.child_text("path"))
        .ok_or_else(|| E::Invalid("missing storage pool target path".into()))?;
    let target_path = sanitize_path(path);
    if !target_path.starts_with('/') {
        return Err(E::NotAbsolute(target_path));
    }
    let perms = parse_perms(target.and_then(|t| t.child("permissions")))?;
    Ok(PoolDef {
        name: name.to_owned(),
        uuid,
        pool_type,
        capacity: 0,
        allocation: 0,
        available: 0,
        target_path,
        perms,
    })
}

/// What the driver checks on `pool-define` besides parsing
/// (`virXMLCheckIllegalChars("name", name, "\n")`).
pub fn validate_pool_name(name: &str) -> Result<(), E> {
    match name.chars().find(|&c| c == '\n') {
        Some(ch) => Err(E::IllegalChar { field: "name", ch }),
        None => Ok(()),
    }
}

/// `virFileSanitizePath`: runs of `/` become one (a leading `//` stays, as
/// POSIX allows), and a trailing `/` goes.
pub fn sanitize_path(path: &str) -> String {
    let (prefix, rest) = match path.strip_prefix("//") {
        Some(rest) if !rest.starts_with('/') => ("//", rest),
        _ => ("", path),
    };
    let mut out = String::from(prefix);
    for c in rest.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    if out.len() > 1 && out.ends_with('/') && out != "//" {
        out.pop();
    }
    out
}

/// `virStorageDefParsePerms`: every part optional; `-1` for owner and
/// group means "not set", as libvirt once printed it.
fn parse_perms(el: Option<&Element>) -> Result<Perms, E> {
    let Some(el) = el else {
        return Ok(Perms::default());
    };
    let mode = match el.child_text("mode") {
        None => None,
        Some(text) => Some(
            parse_c_long(text, 8)
                .and_then(|m| u32::try_from(m).ok())
                .filter(|m| m & !0o777 == 0)
                .ok_or_else(|| E::Invalid("malformed octal mode".into()))?,
        ),
    };
    let id = |what: &str| -> Result<Option<u32>, E> {
        let Some(node) = el.child(what) else {
            return Ok(None);
        };
        match parse_c_long(&node.text, 10) {
            Some(-1) => Ok(None),
            Some(v) => u32::try_from(v)
                .map(Some)
                .map_err(|_| E::Invalid(format!("malformed {what} element"))),
            None => Err(E::Invalid(format!("malformed {what} element"))),
        }
    };
    Ok(Perms {
        mode,
        owner: id("owner")?,
        group: id("group")?,
        label: el.child_text("label").map(str::to_owned),
    })
}

/// A whole C `strtol`-style number: leading white space, an optional
/// sign, digits in `radix`, nothing after.
fn parse_c_long(text: &str, radix: u32) -> Option<i64> {
    let t = text.trim_start();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    Some(if negative { -v } else { v })
}

/// `virStrToLong_ullp`: a whole unsigned decimal number (leading white
/// space and `+` allowed, no sign otherwise).
fn parse_c_ulong(text: &str) -> Option<u64> {
    let t = text.trim_start();
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// libvirt's largest size: `LLONG_MAX` bytes (a file offset is signed).
const SIZE_LIMIT: u64 = i64::MAX as u64;

/// `virStorageSize`: a number in a unit (`virScaleInteger`): none, `b`,
/// `byte(s)` for bytes; `k`…`e` or `KiB`…`EiB` for powers of 1024; `KB`…`EB`
/// for powers of 1000; letters in any case.
pub fn scaled_size(value: &str, unit: Option<&str>) -> Result<u64, E> {
    let v = parse_c_ulong(value).ok_or_else(|| E::Invalid("malformed capacity element".into()))?;
    let unit = unit.unwrap_or("");
    let scale = unit_scale(unit)?;
    if v > 0 && v > SIZE_LIMIT / scale {
        return Err(E::TooLarge {
            value: v,
            suffix: unit.to_owned(),
        });
    }
    Ok(v * scale)
}

fn unit_scale(unit: &str) -> Result<u64, E> {
    let lower = unit.to_ascii_lowercase();
    if unit.is_empty() || matches!(lower.as_str(), "b" | "byte" | "bytes") {
        return Ok(1);
    }
    let unknown = || E::UnknownSuffix(unit.to_owned());
    let rest = &lower[lower.chars().next().map_or(0, char::len_utf8)..];
    let base: u64 = match rest {
        "" | "ib" => 1024,
        "b" => 1000,
        _ => return Err(unknown()),
    };
    let power = match lower.chars().next() {
        Some('k') => 1,
        Some('m') => 2,
        Some('g') => 3,
        Some('t') => 4,
        Some('p') => 5,
        Some('e') => 6,
        _ => return Err(unknown()),
    };
    Ok(base.pow(power))
}

/// Parses a `<volume>` document as `virStorageVolCreateXML` reads it for a
/// `dir` pool (`VIR_VOL_XML_PARSE_OPT_CAPACITY`: a capacity is required,
/// since modvirt takes no backing store).
pub(crate) fn parse_volume(xml: &str) -> Result<VolDef, E> {
    let root = root(xml, "volume")?;
    let name = root
        .child_text("name")
        .ok_or_else(|| E::Invalid("missing volume name element".into()))?
        .to_owned();
    let key = root.child_text("key").map(str::to_owned);
    let vol_type = match xpath_attr(&root, "type") {
        None => VolType::File,
        Some(t) => {
            VolType::from_xml(t).ok_or_else(|| E::Unsupported(format!("unknown volume type '{t}'")))?
        }
    };
    if root
        .child("backingStore")
        .and_then(|b| b.child_text("path"))
        .is_some()
    {
        return Err(E::Unsupported(
            "volumes with a backing store are not supported by this virtstoraged".into(),
        ));
    }
    let capacity_el = root.child("capacity");
    let capacity = match root.child_text("capacity") {
        Some(text) => scaled_size(text, capacity_el.and_then(|c| xpath_attr(c, "unit")))?,
        None => return Err(E::Invalid("missing capacity element".into())),
    };
    let (allocation, has_allocation) = match root.child_text("allocation") {
        Some(text) => {
            let unit = root.child("allocation").and_then(|a| xpath_attr(a, "unit"));
            (scaled_size(text, unit)?, true)
        }
        None => (capacity, false),
    };
    let target_el = root.child("target");
    let format = match target_el
        .and_then(|t| t.child("format"))
        .and_then(|f| xpath_attr(f, "type"))
    {
        None => VolFormat::Raw,
        Some(f) => {
            VolFormat::from_xml(f).ok_or_else(|| E::Unsupported(format!("unknown volume format type {f}")))?
        }
    };
    let mut target = VolTarget::new(format);
    target.path = target_el.and_then(|t| t.child_text("path")).map(str::to_owned);
    target.perms = parse_perms(target_el.and_then(|t| t.child("permissions")))?;
    if target_el.and_then(|t| t.child("encryption")).is_some() {
        return Err(E::Unsupported(
            "storage pool does not support encrypted volumes".into(),
        ));
    }
    target.compat = target_el.and_then(|t| t.child_text("compat")).map(str::to_owned);
    if let Some(compat) = &target.compat {
        check_compat(compat)?;
    }
    if let Some(features) = target_el.and_then(|t| t.child("features")) {
        let list = features
            .children
            .iter()
            .map(|f| {
                QcowFeature::from_xml(&f.name)
                    .ok_or_else(|| E::Unsupported(format!("unsupported feature {}", f.name)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        target.compat.get_or_insert_with(|| "1.1".to_owned());
        target.features = Some(list);
    }
    Ok(VolDef {
        name,
        key,
        vol_type,
        capacity,
        allocation,
        has_allocation,
        physical: 0,
        target,
    })
}

/// `virStorageCheckCompat`: `MAJOR.MINOR`, both numbers.
fn check_compat(compat: &str) -> Result<(), E> {
    let ok = compat.split_once('.').is_some_and(|(a, b)| {
        parse_c_long(a, 10).is_some_and(|v| v >= 0) && parse_c_long(b, 10).is_some_and(|v| v >= 0)
    });
    if ok {
        Ok(())
    } else {
        Err(E::Invalid("forbidden characters in 'compat' attribute".into()))
    }
}
