//! Whole-document tests: libvirt's reference output, golden formatting,
//! round trips, defaults, and parsing arbitrary input without panicking.

use proptest::prelude::*;

use super::*;

/// `shared/reference/libvirt-9.0/traces/trace-vm.xml`: what virsh defined.
pub(super) const TRACE_VM_XML: &str = "<domain type='qemu'>
  <name>trace-vm</name>
  <uuid>6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001</uuid>
  <memory unit='MiB'>64</memory>
  <currentMemory unit='MiB'>64</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
  </devices>
</domain>
";

/// libvirt 9.0's `virsh dumpxml` of that domain, inactive
/// (`virsh-dumpxml-inactive.txt`, DOMAIN_GET_XML_DESC reply).
const LIBVIRT_DUMPXML_INACTIVE: &str = "<domain type='qemu'>
  <name>trace-vm</name>
  <uuid>6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001</uuid>
  <memory unit='KiB'>65536</memory>
  <currentMemory unit='KiB'>65536</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='forbid'>qemu64</model>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' index='0' model='piix3-uhci'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pci-root'/>
    <input type='mouse' bus='ps2'/>
    <input type='keyboard' bus='ps2'/>
    <audio id='1' type='none'/>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </memballoon>
  </devices>
</domain>
";

/// A deterministic [`RandomSource`]: 1, 2, 3, …
pub(super) fn counter() -> impl FnMut() -> u64 {
    let mut n = 0;
    move || {
        n += 1;
        n
    }
}

pub(super) fn parse(xml: &str) -> Result<DomainDef, DomainXmlError> {
    DomainDef::parse(xml, &mut counter())
}

/// `xml` without the elements this module does not model (whole lines,
/// nested ones included), and with the machine type libvirt expanded from
/// `pc` through QEMU's capabilities put back.
fn modelled_only(xml: &str) -> String {
    let mut out = String::new();
    let mut skipping: Option<String> = None;
    for line in xml.lines() {
        let t = line.trim_start();
        if let Some(tag) = &skipping {
            if t.starts_with(&format!("</{tag}>")) {
                skipping = None;
            }
            continue;
        }
        let tag: String = t
            .trim_start_matches('<')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if [
            "controller",
            "input",
            "audio",
            "memballoon",
            "resource",
            "seclabel",
        ]
        .contains(&tag.as_str())
        {
            if !t.ends_with("/>") && !t.contains(&format!("</{tag}>")) {
                skipping = Some(tag);
            }
            continue;
        }
        out.push_str(&line.replace("machine='pc-i440fx-7.2'", "machine='pc'"));
        out.push('\n');
    }
    out
}

#[test]
fn trace_vm_formats_like_libvirt_dumpxml_inactive() {
    let def = parse(TRACE_VM_XML).unwrap();
    assert_eq!(def.uuid_string(), "6a1f0b3e-52c4-4c1e-9d2a-0c0ffee00001");
    assert_eq!((def.memory_kib, def.current_memory_kib), (65536, 65536));
    assert_eq!(
        def.to_xml(&FormatOptions::default()),
        modelled_only(LIBVIRT_DUMPXML_INACTIVE)
    );
}

#[test]
fn libvirt_output_parses_to_the_same_definition() {
    let ours = parse(TRACE_VM_XML).unwrap();
    let theirs = parse(LIBVIRT_DUMPXML_INACTIVE).unwrap();
    assert_eq!(
        DomainDef {
            os: Os {
                machine: "pc".into(),
                ..theirs.os.clone()
            },
            ..theirs
        },
        ours
    );
}

#[test]
fn running_definition_has_id() {
    let def = parse(TRACE_VM_XML).unwrap();
    let xml = def.to_xml(&FormatOptions { id: Some(1) });
    assert!(
        xml.starts_with("<domain type='qemu' id='1'>\n  <name>trace-vm</name>\n"),
        "{xml}"
    );
    assert_eq!(parse(&xml).unwrap(), def);
}

const RICH_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- every modelled element, plus some that are not -->
<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web-01</name>
  <uuid>0b7e9a5c-3f2d-4e1a-8c6b-9d0e1f2a3b4c</uuid>
  <title>Web &amp; "API" server</title>
  <description>Serves &lt;everything&gt;
second line, it's fine</description>
  <metadata><app:x xmlns:app='urn:x'>1</app:x></metadata>
  <memory unit='GiB'>2</memory>
  <currentMemory unit='MiB'>1024</currentMemory>
  <vcpu placement='static' current='2'>4</vcpu>
  <iothreads>1</iothreads>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='cdrom'/>
    <boot dev='hd'/>
    <bootmenu enable='yes'/>
  </os>
  <features><acpi/><apic/><pae/></features>
  <cpu mode='host-passthrough'><topology sockets='1' cores='4' threads='1'/></cpu>
  <clock offset='localtime'><timer name='rtc' tickpolicy='catchup'/></clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>coredump-restart</on_crash>
  <pm><suspend-to-mem enabled='no'/></pm>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/libvirt/images/web-01.qcow2'/>
      <target dev='vda'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sda' bus='sata'/>
    </disk>
    <disk type='block' device='disk'>
      <source dev='/dev/vg0/data'/>
      <target dev='hdb'/>
      <readonly/>
    </disk>
    <controller type='usb' model='qemu-xhci'/>
    <interface type='network'>
      <mac address='52:54:00:AA:BB:CC'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:02'/>
      <source bridge='br0'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:00:00:03'/>
      <model type='e1000'/>
    </interface>
    <serial type='pty'/>
    <graphics type='vnc' port='5901' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <video><model type='qxl' heads='2'/></video>
    <memballoon model='virtio'/>
  </devices>
  <qemu:commandline><qemu:arg value='-S'/></qemu:commandline>
</domain>
"#;

const RICH_DUMPXML: &str = "<domain type='kvm'>
  <name>web-01</name>
  <uuid>0b7e9a5c-3f2d-4e1a-8c6b-9d0e1f2a3b4c</uuid>
  <title>Web &amp; &quot;API&quot; server</title>
  <description>Serves &lt;everything&gt;
second line, it&apos;s fine</description>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static' current='2'>4</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='cdrom'/>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='host-passthrough' check='none' migratable='on'/>
  <clock offset='localtime'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>coredump-restart</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web-01.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/vg0/data'/>
      <target dev='hdb' bus='ide'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:02'/>
      <source bridge='br0'/>
      <model type='rtl8139'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:00:00:03'/>
      <model type='e1000'/>
    </interface>
    <serial type='pty'>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <graphics type='vnc' port='5901' autoport='no' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <video>
      <model type='qxl' vram='65536' heads='2' primary='yes'/>
    </video>
  </devices>
</domain>
";

#[test]
fn rich_document_formats_like_libvirt() {
    let def = parse(RICH_XML).unwrap();
    assert_eq!(def.to_xml(&FormatOptions::default()), RICH_DUMPXML);
}

#[test]
fn round_trips() {
    for xml in [TRACE_VM_XML, RICH_XML, LIBVIRT_DUMPXML_INACTIVE] {
        let def = parse(xml).unwrap();
        for opts in [FormatOptions::default(), FormatOptions { id: Some(3) }] {
            let out = def.to_xml(&opts);
            let again = parse(&out).unwrap();
            assert_eq!(again, def, "{out}");
            assert_eq!(again.to_xml(&opts), out);
        }
    }
}

#[test]
fn live_output_shows_runtime_details() {
    let mut def = parse(
        "<domain type='kvm'><name>v</name><memory>1024</memory><os><type>hvm</type></os>
         <devices><serial type='pty'/><graphics type='vnc'/></devices></domain>",
    )
    .unwrap();
    def.devices.serials[0].source_path = Some("/dev/pts/4".into());
    def.devices.consoles[0].source_path = Some("/dev/pts/4".into());
    def.devices.graphics[0].port = Some(5900);

    let inactive = def.to_xml(&FormatOptions::default());
    assert!(!inactive.contains("/dev/pts/4"), "{inactive}");
    assert!(
        inactive.contains("<graphics type='vnc' port='-1' autoport='yes'>\n      <listen type='address'/>")
    );
    assert!(inactive.contains("<video>\n      <model type='vga' vram='16384' heads='1' primary='yes'/>"));

    let live = def.to_xml(&FormatOptions { id: Some(5) });
    assert!(
        live.contains("<serial type='pty'>\n      <source path='/dev/pts/4'/>\n"),
        "{live}"
    );
    assert!(
        live.contains("<console type='pty' tty='/dev/pts/4'>\n      <source path='/dev/pts/4'/>"),
        "{live}"
    );
    assert!(
        live.contains("<graphics type='vnc' port='5900' autoport='yes'>"),
        "{live}"
    );
}

#[test]
fn unknown_elements_are_ignored() {
    let def = parse(RICH_XML).unwrap();
    let out = def.to_xml(&FormatOptions::default());
    for absent in [
        "metadata",
        "iothreads",
        "bootmenu",
        "pae",
        "topology",
        "timer",
        "pm>",
        "controller",
        "memballoon",
        "qemu:",
        "<address",
    ] {
        assert!(!out.contains(absent), "{absent} in {out}");
    }
}

#[test]
fn defaults_like_libvirt() {
    let def = parse(
        "<domain type='kvm'><name>d</name><memory unit='G'>1</memory><os><type>hvm</type></os></domain>",
    )
    .unwrap();
    assert_eq!(def.memory_kib, 1 << 20);
    assert_eq!(def.current_memory_kib, 1 << 20);
    assert_eq!(
        def.vcpu,
        Vcpu {
            max: 1,
            current: 1,
            placement: VcpuPlacement::Static
        }
    );
    assert_eq!(def.os.arch, host_arch());
    assert_eq!(def.os.boot, [BootDevice::Hd]);
    assert_eq!(def.clock, Clock::Utc);
    assert_eq!(
        (def.on_poweroff, def.on_reboot, def.on_crash),
        (
            LifecycleAction::Destroy,
            LifecycleAction::Restart,
            LifecycleAction::Destroy
        )
    );
    assert_eq!(def.devices, Devices::default());
    if def.os.arch == "x86_64" {
        assert_eq!(def.os.machine, "pc");
        // KVM compares a custom CPU with the host's; TCG does not.
        assert_eq!(def.cpu.unwrap().check, Some(CpuCheck::Partial));
    }

    // currentMemory above memory is brought down to it.
    let def = parse(
        "<domain type='qemu'><name>d</name><memory unit='MiB'>64</memory><currentMemory unit='GiB'>1</currentMemory>
         <os><type arch='x86_64'>hvm</type></os></domain>",
    )
    .unwrap();
    assert_eq!(def.current_memory_kib, 65536);

    // A custom CPU model without fallback: libvirt's 'allow'.
    let def = parse(
        "<domain type='qemu'><name>d</name><memory>1</memory><os><type arch='x86_64'>hvm</type></os>
         <cpu><model>Westmere</model><feature name='vmx' policy='disable'/><feature name='aes'/></cpu></domain>",
    )
    .unwrap();
    let cpu_xml = def.to_xml(&FormatOptions::default());
    assert!(cpu_xml.contains(
        "  <cpu mode='custom' match='exact' check='none'>
    <model fallback='allow'>Westmere</model>
    <feature policy='disable' name='vmx'/>
    <feature policy='require' name='aes'/>
  </cpu>
"
    ));
}

#[test]
fn memory_units_convert_to_kib() {
    for (amount, unit, kib) in [
        ("1048576", "b", 1024),
        ("1048576", "bytes", 1024),
        ("1000", "KB", 977),
        ("4096", "k", 4096),
        ("4096", "KiB", 4096),
        ("64", "M", 65536),
        ("64", "MB", 62500),
        ("2", "G", 2 << 20),
        ("2", "GB", 1953125),
        ("1", "T", 1 << 30),
        ("1", "TiB", 1 << 30),
        ("1", "TB", 976562500),
        ("4096", "", 4096),
    ] {
        let xml = format!(
            "<domain type='qemu'><name>m</name><memory unit='{unit}'>{amount}</memory><os><type arch='x86_64'>hvm</type></os></domain>"
        );
        assert_eq!(parse(&xml).unwrap().memory_kib, kib, "{amount} {unit}");
    }
}

#[test]
fn generated_uuid_and_macs() {
    let xml = "<domain type='qemu'><name>g</name><memory>1024</memory><os><type arch='x86_64'>hvm</type></os>
               <devices><interface type='network'><source network='default'/></interface>
               <interface type='user'/></devices></domain>";
    let mut values = [
        0x1111_2222_3333_4444u64,
        0x5555_6666_7777_8888,
        0x9999_aaaa_bbbb_cccc,
        0xdddd_eeee_ffff_0001,
    ]
    .into_iter();
    let def = DomainDef::parse(xml, &mut || values.next().unwrap()).unwrap();
    assert_eq!(def.uuid_string(), "11112222-3333-4444-9555-666677778888");
    let macs: Vec<String> = def.devices.interfaces.iter().map(|i| i.mac.to_string()).collect();
    assert_eq!(macs, ["52:54:00:bb:cc:cc", "52:54:00:ff:00:01"]);
    // Once generated, they are part of the definition.
    let again = parse(&def.to_xml(&FormatOptions::default())).unwrap();
    assert_eq!(again, def);
}

#[test]
fn escaping_round_trips() {
    let name = "a&b<c>'d\"";
    let mut def = parse(TRACE_VM_XML).unwrap();
    def.name = name.into();
    def.title = Some(name.into());
    def.description = Some(format!("{name}\n]]> &amp;"));
    def.devices.emulator = Some("/opt/q'emu".into());
    let xml = def.to_xml(&FormatOptions::default());
    assert!(
        xml.contains("<name>a&amp;b&lt;c&gt;&apos;d&quot;</name>"),
        "{xml}"
    );
    assert_eq!(parse(&xml).unwrap(), def);
}

/// Documents near the valid ones: element soup from the names this module
/// knows, so the parser's inner paths get exercised too.
fn xmlish() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "domain",
        "name",
        "uuid",
        "memory",
        "currentMemory",
        "vcpu",
        "os",
        "type",
        "boot",
        "cpu",
        "model",
        "feature",
        "clock",
        "devices",
        "disk",
        "source",
        "target",
        "driver",
        "interface",
        "mac",
        "serial",
        "console",
        "graphics",
        "listen",
        "video",
        "on_crash",
    ]);
    let attrs = prop::sample::select(vec![
        "",
        " type='qemu'",
        " type='kvm'",
        " unit='MiB'",
        " dev='vda'",
        " bus='ide'",
        " arch='x86_64'",
        " port='-1'",
        " type='vnc'",
        " type='pty'",
        " address='52:54:00:00:00:01'",
        " file='/x'",
        " network='n'",
        " current='2'",
        " mode='host-model'",
        " type='network'",
        " heads='0'",
        " port='99999'",
    ]);
    let texts = prop::sample::select(vec![
        "", "1", "hvm", "64", "x", "0", "4097", "destroy", "&amp;", "-1",
    ]);
    prop::collection::vec((names, attrs, texts, any::<bool>()), 0..40).prop_map(|parts| {
        let mut s = String::from(
            "<domain type='qemu'><name>p</name><memory>65536</memory><os><type arch='x86_64'>hvm</type></os>",
        );
        let mut open = Vec::new();
        for (name, attr, text, close) in parts {
            if close && !open.is_empty() {
                s.push_str(&format!("</{}>", open.pop().unwrap_or_default()));
            }
            s.push_str(&format!("<{name}{attr}>{text}"));
            open.push(name);
        }
        while let Some(name) = open.pop() {
            s.push_str(&format!("</{name}>"));
        }
        s.push_str("</domain>");
        s
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,256}") {
        let _ = parse(&s);
    }

    #[test]
    fn mutated_documents_never_panic(cut in 0usize..2000, insert in ".{0,8}", at in 0usize..2000) {
        let base = RICH_XML;
        let mut s: String = base.chars().take(cut).collect();
        let at = at.min(s.chars().count());
        let byte_at = s.char_indices().nth(at).map_or(s.len(), |(i, _)| i);
        s.insert_str(byte_at, &insert);
        if let Ok(def) = parse(&s) {
            let out = def.to_xml(&FormatOptions::default());
            prop_assert_eq!(parse(&out).unwrap(), def);
        }
    }

    #[test]
    fn element_soup_never_panics_and_round_trips(xml in xmlish()) {
        if let Ok(def) = parse(&xml) {
            let out = def.to_xml(&FormatOptions::default());
            prop_assert_eq!(parse(&out).unwrap(), def);
        }
    }
}
