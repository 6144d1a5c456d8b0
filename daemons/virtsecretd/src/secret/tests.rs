#![allow(clippy::unwrap_used)] // tests

use super::*;

fn rng() -> impl FnMut() -> u64 {
    let mut n = 0u64;
    move || {
        n += 0x1111_1111_1111_1111;
        n
    }
}

fn parse(xml: &str) -> Result<SecretDef, SecretXmlError> {
    SecretDef::parse(xml, &mut rng())
}

#[test]
fn every_usage_parses_and_formats_as_libvirt() {
    let cases = [
        (
            "volume",
            "<volume>/var/lib/libvirt/images/a.img</volume>",
            Usage::Volume("/var/lib/libvirt/images/a.img".into()),
            usage::VOLUME,
        ),
        (
            "ceph",
            "<name>client.admin secret</name>",
            Usage::Ceph("client.admin secret".into()),
            usage::CEPH,
        ),
        (
            "iscsi",
            "<target>libvirtiscsi</target>",
            Usage::Iscsi("libvirtiscsi".into()),
            usage::ISCSI,
        ),
        (
            "tls",
            "<name>TLS_example</name>",
            Usage::Tls("TLS_example".into()),
            usage::TLS,
        ),
        (
            "vtpm",
            "<name>VTPM_example</name>",
            Usage::Vtpm("VTPM_example".into()),
            usage::VTPM,
        ),
    ];
    for (kind, child, want, code) in cases {
        let xml = format!(
            "<secret ephemeral='no' private='yes'>\n  <uuid>c9b6a3c4-1d1e-4d5a-9f5e-0123456789ab</uuid>\n  <description>a &amp; b</description>\n  <usage type='{kind}'>\n    {child}\n  </usage>\n</secret>\n"
        );
        let def = parse(&xml).unwrap();
        assert_eq!(def.usage, want);
        assert_eq!(def.usage.type_code(), code);
        assert!(def.private && !def.ephemeral);
        assert_eq!(def.description.as_deref(), Some("a & b"));
        assert_eq!(def.to_xml(), xml);
        assert_eq!(parse(&def.to_xml()).unwrap(), def);
    }
}

#[test]
fn defaults_and_generated_uuid() {
    let def = parse("<secret/>").unwrap();
    assert!(!def.ephemeral && !def.private);
    assert_eq!(def.usage, Usage::None);
    assert_eq!(def.usage.id(), "");
    assert_eq!(def.description, None);
    // Version 4 UUID from the caller's randomness.
    assert_eq!(def.uuid[6] >> 4, 4);
    assert_eq!(
        def.to_xml(),
        format!(
            "<secret ephemeral='no' private='no'>\n  <uuid>{}</uuid>\n</secret>\n",
            def.uuid_string()
        )
    );
    // Empty attributes and elements count as absent, `none` usage as no usage.
    let def = parse(
        "<secret ephemeral='' private='no'><uuid></uuid><description></description><usage type='none'/></secret>",
    )
    .unwrap();
    assert_eq!(def.usage, Usage::None);
    assert_eq!(def.description, None);
    assert!(!def.to_xml().contains("usage"));
    // UUIDs as libvirt reads them: white space around, dashes optional.
    let def = parse("<secret><uuid>\n c9b6a3c41d1e4d5a9f5e0123456789ab \n</uuid></secret>").unwrap();
    assert_eq!(def.uuid_string(), "c9b6a3c4-1d1e-4d5a-9f5e-0123456789ab");
    // Unknown elements are read past.
    let def = parse("<secret ephemeral='yes'><foo/><usage type='ceph'><name>x</name><bar/></usage></secret>")
        .unwrap();
    assert!(def.ephemeral);
    assert_eq!(def.usage, Usage::Ceph("x".into()));
}

#[test]
fn refusals_carry_libvirts_errors() {
    let cases = [
        (
            "<network/>",
            "XML error: expecting root element of 'secret', not 'network'",
            27,
            5,
        ),
        (
            "<secret ephemeral='true'/>",
            "XML error: invalid value of 'ephemeral'",
            27,
            30,
        ),
        (
            "<secret private='1'/>",
            "XML error: invalid value of 'private'",
            27,
            30,
        ),
        (
            "<secret><uuid>nope</uuid></secret>",
            "internal error: malformed uuid element",
            1,
            30,
        ),
        (
            "<secret><usage/></secret>",
            "XML error: unknown secret usage type",
            27,
            30,
        ),
        (
            "<secret><usage type='disk'/></secret>",
            "unsupported configuration: unknown secret usage type disk",
            67,
            30,
        ),
        (
            "<secret><usage type='volume'><name>x</name></usage></secret>",
            "internal error: volume usage specified, but volume path is missing",
            1,
            30,
        ),
        (
            "<secret><usage type='ceph'/></secret>",
            "internal error: Ceph usage specified, but name is missing",
            1,
            30,
        ),
        (
            "<secret><usage type='iscsi'><name>x</name></usage></secret>",
            "internal error: iSCSI usage specified, but target is missing",
            1,
            30,
        ),
        (
            "<secret><usage type='tls'><name></name></usage></secret>",
            "internal error: TLS usage specified, but name is missing",
            1,
            30,
        ),
        (
            "<secret><usage type='vtpm'/></secret>",
            "internal error: vTPM usage specified, but name is missing",
            1,
            30,
        ),
    ];
    for (xml, message, code, domain) in cases {
        let e = parse(xml).unwrap_err();
        assert_eq!(
            (e.message().as_str(), e.code(), e.domain()),
            (message, code, domain),
            "{xml}"
        );
    }
    let e = parse("<!DOCTYPE secret [<!ENTITY x SYSTEM 'file:///etc/shadow'>]><secret/>").unwrap_err();
    assert_eq!(e.code(), 35);
    assert!(e.message().contains("entity declarations"), "{}", e.message());
    assert_eq!(parse("<secret>").unwrap_err().code(), 35);
}

#[test]
fn text_is_escaped_on_output() {
    let def = parse("<secret><description>&lt;x&gt; 'q' \"d\"</description><usage type='tls'><name>a&amp;b</name></usage></secret>").unwrap();
    let xml = def.to_xml();
    assert!(
        xml.contains("<description>&lt;x&gt; &apos;q&apos; &quot;d&quot;</description>"),
        "{xml}"
    );
    assert!(xml.contains("<name>a&amp;b</name>"), "{xml}");
}
