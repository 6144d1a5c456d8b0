//! Pool and volume XML as libvirt reads and prints it.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;

/// Deterministic randomness: 1, 2, 3, …
fn counter() -> impl FnMut() -> u64 {
    let mut n = 0u64;
    move || {
        n += 1;
        n
    }
}

fn pool(xml: &str) -> Result<PoolDef, StorageXmlError> {
    PoolDef::parse(xml, &mut counter())
}

fn pool_err(xml: &str) -> (i32, i32, String) {
    let e = pool(xml).unwrap_err();
    (e.code(), e.domain(), e.message())
}

fn vol_err(xml: &str) -> (i32, i32, String) {
    let e = VolDef::parse(xml).unwrap_err();
    (e.code(), e.domain(), e.message())
}

/// What `virsh pool-define-as p1 dir --target /srv/p1` sends.
const DEFINE_AS: &str =
    "<pool type='dir'>\n  <name>p1</name>\n  <target>\n    <path>/srv/p1</path>\n  </target>\n</pool>\n";

#[test]
fn pool_define_as_document_round_trips_with_libvirts_layout() {
    let def = pool(DEFINE_AS).unwrap();
    assert_eq!(def.name, "p1");
    assert_eq!(def.pool_type, PoolType::Dir);
    assert_eq!(def.target_path, "/srv/p1");
    assert!(def.perms.is_empty());
    // The generated UUID is version 4 from the caller's randomness.
    assert_eq!(def.uuid_string(), "00000000-0000-4001-8000-000000000002");
    let xml = def.to_xml();
    assert_eq!(
        xml,
        "<pool type='dir'>\n  <name>p1</name>\n  <uuid>00000000-0000-4001-8000-000000000002</uuid>\n  \
         <capacity unit='bytes'>0</capacity>\n  <allocation unit='bytes'>0</allocation>\n  \
         <available unit='bytes'>0</available>\n  <source>\n  </source>\n  <target>\n    \
         <path>/srv/p1</path>\n  </target>\n</pool>\n"
    );
    assert_eq!(pool(&xml).unwrap(), def);
}

#[test]
fn refreshed_pool_prints_sizes_and_permissions_and_survives_a_state_file() {
    let mut def = pool(DEFINE_AS).unwrap();
    def.capacity = 1000;
    def.allocation = 400;
    def.available = 600;
    def.perms = Perms {
        mode: Some(0o711),
        owner: Some(0),
        group: Some(107),
        label: None,
    };
    let xml = def.to_xml();
    assert!(xml.contains("  <capacity unit='bytes'>1000</capacity>\n  <allocation unit='bytes'>400</allocation>\n  <available unit='bytes'>600</available>\n"), "{xml}");
    assert!(
        xml.contains("    <permissions>\n      <mode>0711</mode>\n      <owner>0</owner>\n      <group>107</group>\n    </permissions>\n"),
        "{xml}"
    );
    let state = def.to_state_xml();
    assert!(
        state.starts_with("<poolstate>\n  <pool type='dir'>\n    <name>p1</name>\n"),
        "{state}"
    );
    assert!(state.ends_with("  </pool>\n</poolstate>\n"), "{state}");
    let back = PoolDef::parse_state(&state, &mut counter()).unwrap();
    // Sizes are not read back: the next refresh sets them.
    assert_eq!(back.perms, def.perms);
    assert_eq!(
        (back.name.as_str(), back.uuid, back.capacity),
        ("p1", def.uuid, 0)
    );
    let e = PoolDef::parse_state(DEFINE_AS, &mut counter()).unwrap_err();
    assert_eq!(
        e.message(),
        "XML error: expecting root element of 'poolstate', not 'pool'"
    );
}

#[test]
fn pool_refusals_carry_libvirts_codes_and_words() {
    assert_eq!(
        pool_err("<network/>"),
        (
            27,
            5,
            "XML error: expecting root element of 'pool', not 'network'".into()
        )
    );
    assert_eq!(
        pool_err("<pool><name>a</name></pool>"),
        (
            27,
            5,
            "XML error: Missing required attribute 'type' in element 'pool'".into()
        )
    );
    assert_eq!(
        pool_err("<pool type='nfs'><name>a</name></pool>"),
        (
            27,
            5,
            "XML error: Invalid value for attribute 'type' in element 'pool': 'nfs'.".into()
        )
    );
    assert_eq!(
        pool_err("<pool type=''/>"),
        (
            27,
            5,
            "XML error: Invalid value for attribute 'type' in element 'pool': ''.".into()
        )
    );
    assert_eq!(
        pool_err("<pool type='logical'><name>vg</name></pool>"),
        (
            67,
            18,
            "unsupported configuration: storage pool type 'logical' is not supported: this virtstoraged manages 'dir' pools only".into()
        )
    );
    assert_eq!(
        pool_err("<pool type='dir'><target><path>/x</path></target></pool>"),
        (27, 18, "XML error: missing pool source name element".into())
    );
    assert_eq!(
        pool_err("<pool type='dir'><name></name></pool>"),
        (27, 18, "XML error: missing pool source name element".into())
    );
    assert_eq!(
        pool_err("<pool type='dir'><name>a/b</name></pool>"),
        (27, 18, "XML error: name a/b cannot contain '/'".into())
    );
    assert_eq!(
        pool_err("<pool type='dir'><name>a</name><uuid>nope</uuid></pool>"),
        (27, 18, "XML error: malformed uuid element".into())
    );
    assert_eq!(
        pool_err("<pool type='dir'><name>a</name></pool>"),
        (27, 18, "XML error: missing storage pool target path".into())
    );
    assert_eq!(
        pool_err("<pool type='dir'><name>a</name><target><path>rel/dir/</path></target></pool>"),
        (8, 18, "invalid argument: path 'rel/dir' is not absolute".into())
    );
    let perms = |inner: &str| {
        pool_err(&format!(
            "<pool type='dir'><name>a</name><target><path>/a</path><permissions>{inner}</permissions></target></pool>"
        ))
    };
    assert_eq!(
        perms("<mode>0800</mode>"),
        (27, 18, "XML error: malformed octal mode".into())
    );
    assert_eq!(
        perms("<mode>1777</mode>"),
        (27, 18, "XML error: malformed octal mode".into())
    );
    assert_eq!(
        perms("<owner>x</owner>"),
        (27, 18, "XML error: malformed owner element".into())
    );
    assert_eq!(
        perms("<group>4294967296</group>"),
        (27, 18, "XML error: malformed group element".into())
    );
    let e = pool("<!DOCTYPE pool [<!ENTITY x 'y'>]><pool type='dir'/>").unwrap_err();
    assert_eq!((e.code(), e.domain()), (35, 18));
    assert!(e.message().contains("entity declarations"), "{}", e.message());
}

#[test]
fn pool_permissions_uuid_and_path_are_read_as_libvirt_reads_them() {
    let def = pool(
        "<pool type='dir'><name>a</name><uuid>6a1f0b3e52c44c1e9d2a0c0ffee00001</uuid>\
         <source><dir path='/ignored'/></source>\
         <target><path>///srv//images/</path><permissions><mode> 0755</mode>\
         <owner>-1</owner><group>+36</group><label>system_u:object_r:virt_image_t:s0</label>\
         </permissions></target><unknown/></pool>",
    )
    .unwrap();
    assert_eq!(def.uuid_string(), "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001");
    assert_eq!(def.target_path, "/srv/images");
    assert_eq!(
        def.perms,
        Perms {
            mode: Some(0o755),
            owner: None,
            group: Some(36),
            label: Some("system_u:object_r:virt_image_t:s0".into()),
        }
    );
    let xml = def.to_xml();
    assert!(xml.contains("<mode>0755</mode>\n      <group>36</group>\n      <label>system_u:object_r:virt_image_t:s0</label>"), "{xml}");
    assert!(!xml.contains("ignored"), "{xml}");
}

#[test]
fn names_are_escaped_and_newlines_refused_on_define() {
    let def =
        pool("<pool type='dir'><name>a&amp;b&lt;c</name><target><path>/a'b</path></target></pool>").unwrap();
    let xml = def.to_xml();
    assert!(xml.contains("<name>a&amp;b&lt;c</name>"), "{xml}");
    assert!(xml.contains("<path>/a&apos;b</path>"), "{xml}");
    assert_eq!(pool(&xml).unwrap().name, "a&b<c");
    assert!(validate_pool_name("fine").is_ok());
    let e = validate_pool_name("two\nlines").unwrap_err();
    assert_eq!(
        (e.code(), e.domain(), e.message()),
        (35, 5, "invalid char in name: \n".into())
    );
}

#[test]
fn sanitize_path_as_virfilesanitizepath() {
    for (input, want) in [
        ("/", "/"),
        ("/a/b/", "/a/b"),
        ("/a//b///c", "/a/b/c"),
        ("//a", "//a"),
        ("///a", "/a"),
        ("//", "//"),
        ("/../x/./", "/../x/."),
        ("rel", "rel"),
    ] {
        assert_eq!(sanitize_path(input), want, "{input}");
    }
}

#[test]
fn sizes_scale_with_libvirts_units() {
    let cases: [(&str, Option<&str>, u64); 12] = [
        ("10", None, 10),
        ("10", Some("bytes"), 10),
        ("10", Some("B"), 10),
        ("1", Some("k"), 1024),
        ("1", Some("KiB"), 1024),
        ("1", Some("KB"), 1000),
        ("2", Some("M"), 2 << 20),
        ("2", Some("MB"), 2_000_000),
        ("1", Some("G"), 1 << 30),
        ("1", Some("gib"), 1 << 30),
        ("1", Some("T"), 1 << 40),
        (" +7", Some("E"), 7 << 60),
    ];
    for (v, unit, want) in cases {
        assert_eq!(scaled_size(v, unit).unwrap(), want, "{v} {unit:?}");
    }
    let err = |v: &str, unit: Option<&str>| {
        let e = scaled_size(v, unit).unwrap_err();
        (e.code(), e.domain(), e.message())
    };
    assert_eq!(
        err("1", Some("X")),
        (8, 0, "invalid argument: unknown suffix 'X'".into())
    );
    assert_eq!(
        err("1", Some("KiBs")),
        (8, 0, "invalid argument: unknown suffix 'KiBs'".into())
    );
    assert_eq!(
        err("8", Some("EiB")),
        (82, 0, "numerical overflow: value too large: 8EiB".into())
    );
    assert_eq!(
        err("-1", None),
        (27, 18, "XML error: malformed capacity element".into())
    );
    assert_eq!(
        err("1.5", Some("G")),
        (27, 18, "XML error: malformed capacity element".into())
    );
    assert_eq!(
        err("1 ", None),
        (27, 18, "XML error: malformed capacity element".into())
    );
}

/// What `virsh vol-create-as p1 disk.qcow2 1G --format qcow2` sends.
const CREATE_AS: &str = "<volume>\n  <name>disk.qcow2</name>\n  <capacity>1073741824</capacity>\n  <target>\n    <format type='qcow2'/>\n  </target>\n</volume>\n";

#[test]
fn vol_create_as_document_is_read_with_libvirts_defaults() {
    let def = VolDef::parse(CREATE_AS).unwrap();
    assert_eq!(def.name, "disk.qcow2");
    assert_eq!(
        (def.capacity, def.allocation, def.has_allocation),
        (1 << 30, 1 << 30, false)
    );
    assert_eq!(def.vol_type, VolType::File);
    assert_eq!(def.target.format, VolFormat::Qcow2);
    assert_eq!((def.key.as_deref(), def.target.path.as_deref()), (None, None));
    let raw = VolDef::parse(
        "<volume><name>a.img</name><capacity unit='M'>10</capacity><allocation unit='bytes'>0</allocation>\
         <target><permissions><mode>0640</mode></permissions></target></volume>",
    )
    .unwrap();
    assert_eq!(raw.target.format, VolFormat::Raw);
    assert_eq!(
        (raw.capacity, raw.allocation, raw.has_allocation),
        (10 << 20, 0, true)
    );
    assert_eq!(raw.target.perms.mode, Some(0o640));
    let features = VolDef::parse(
        "<volume><name>f</name><capacity>1</capacity><target><format type='qcow2'/>\
         <features><lazy_refcounts/></features></target></volume>",
    )
    .unwrap();
    assert_eq!(features.target.compat.as_deref(), Some("1.1"));
    assert_eq!(features.target.features, Some(vec![QcowFeature::LazyRefcounts]));
}

#[test]
fn volume_refusals_carry_libvirts_codes_and_words() {
    assert_eq!(
        vol_err("<pool/>"),
        (
            27,
            5,
            "XML error: expecting root element of 'volume', not 'pool'".into()
        )
    );
    assert_eq!(
        vol_err("<volume><capacity>1</capacity></volume>"),
        (27, 18, "XML error: missing volume name element".into())
    );
    assert_eq!(
        vol_err("<volume><name>a</name></volume>"),
        (27, 18, "XML error: missing capacity element".into())
    );
    assert_eq!(
        vol_err("<volume type='tape'><name>a</name><capacity>1</capacity></volume>"),
        (
            67,
            18,
            "unsupported configuration: unknown volume type 'tape'".into()
        )
    );
    assert_eq!(
        vol_err(
            "<volume><name>a</name><capacity>1</capacity><target><format type='qcow3'/></target></volume>"
        ),
        (
            67,
            18,
            "unsupported configuration: unknown volume format type qcow3".into()
        )
    );
    assert_eq!(
        vol_err("<volume><name>a</name><capacity>1</capacity><allocation>x</allocation></volume>"),
        (27, 18, "XML error: malformed capacity element".into())
    );
    assert_eq!(
        vol_err("<volume><name>a</name><capacity>1</capacity><target><compat>1.x</compat></target></volume>"),
        (
            27,
            18,
            "XML error: forbidden characters in 'compat' attribute".into()
        )
    );
    assert_eq!(
        vol_err(
            "<volume><name>a</name><capacity>1</capacity><target><features><zstd/></features></target></volume>"
        ),
        (
            67,
            18,
            "unsupported configuration: unsupported feature zstd".into()
        )
    );
    assert_eq!(
        vol_err(
            "<volume><name>a</name><capacity>1</capacity><target><encryption format='luks'/></target></volume>"
        ),
        (
            67,
            18,
            "unsupported configuration: storage pool does not support encrypted volumes".into()
        )
    );
    assert_eq!(
        vol_err(
            "<volume><name>a</name><capacity>1</capacity><backingStore><path>/b</path></backingStore></volume>"
        ),
        (
            67,
            18,
            "unsupported configuration: volumes with a backing store are not supported by this virtstoraged"
                .into()
        )
    );
}

#[test]
fn volume_prints_as_vol_dumpxml() {
    let mut def = VolDef::parse(CREATE_AS).unwrap();
    def.key = Some("/srv/p1/disk.qcow2".into());
    def.allocation = 200_704;
    def.physical = 196_928;
    def.target.path = def.key.clone();
    def.target.perms = Perms {
        mode: Some(0o600),
        owner: Some(0),
        group: Some(0),
        label: None,
    };
    def.target.timestamps = Some(Timestamps {
        atime: Timestamp {
            sec: 1_700_000_000,
            nsec: 5,
        },
        mtime: Timestamp {
            sec: 1_700_000_001,
            nsec: 0,
        },
        ctime: Timestamp {
            sec: 1_700_000_002,
            nsec: 123_456_789,
        },
    });
    def.target.compat = Some("0.10".into());
    def.target.cluster_size = 65536;
    assert_eq!(
        def.to_xml(),
        "<volume type='file'>\n  <name>disk.qcow2</name>\n  <key>/srv/p1/disk.qcow2</key>\n  \
         <capacity unit='bytes'>1073741824</capacity>\n  <allocation unit='bytes'>200704</allocation>\n  \
         <physical unit='bytes'>196928</physical>\n  <target>\n    <path>/srv/p1/disk.qcow2</path>\n    \
         <format type='qcow2'/>\n    <permissions>\n      <mode>0600</mode>\n      <owner>0</owner>\n      \
         <group>0</group>\n    </permissions>\n    <timestamps>\n      <atime>1700000000.000000005</atime>\n      \
         <mtime>1700000001</mtime>\n      <ctime>1700000002.123456789</ctime>\n    </timestamps>\n    \
         <compat>0.10</compat>\n    <clusterSize unit='B'>65536</clusterSize>\n  </target>\n</volume>\n"
    );
    def.target.features = Some(vec![]);
    assert!(def.to_xml().contains("    <features/>\n  </target>"));
    def.target.features = Some(vec![QcowFeature::LazyRefcounts]);
    assert!(
        def.to_xml()
            .contains("    <features>\n      <lazy_refcounts/>\n    </features>\n")
    );
    def.physical = 0;
    assert!(!def.to_xml().contains("physical"));
}
