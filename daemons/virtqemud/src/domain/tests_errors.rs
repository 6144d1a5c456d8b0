//! Every refusal: the libvirt error code and the exact message.

use super::tests::{TRACE_VM_XML, parse};
use super::*;

/// A minimal valid domain with `extra` inserted before `</domain>` and
/// `replace` applied to the base.
fn doc(replace: &[(&str, &str)], extra: &str) -> String {
    let mut xml = TRACE_VM_XML.to_owned();
    for (from, to) in replace {
        assert!(xml.contains(from), "{from}");
        xml = xml.replacen(from, to, 1);
    }
    xml.replace("</domain>", &format!("{extra}</domain>"))
}

fn devices(extra: &str) -> String {
    doc(&[("  </devices>", &format!("{extra}\n  </devices>"))], "")
}

#[track_caller]
fn refused(xml: &str, code: i32, message: &str) {
    let err = parse(xml).expect_err(xml);
    assert_eq!(err.message(), message, "{xml}");
    assert_eq!(err.code(), code, "{message}");
}

#[test]
fn xml_syntax_and_entities() {
    let err = parse("<domain type='qemu'>\n  <name>x</name>\n  <uuid>").unwrap_err();
    assert_eq!(err.code(), code::XML_ERROR);
    assert!(
        matches!(
            err,
            DomainXmlError::Syntax(modvirt_xml::XmlError::NotWellFormed { line: 3, .. })
        ),
        "{err:?}"
    );

    refused(
        "<?xml version='1.0'?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/shadow\">]>\n<domain type='qemu'><name>&xxe;</name></domain>",
        27,
        "XML error: entity declarations (<!ENTITY>) are not allowed in domain XML (line 2, column 1)",
    );
    refused(
        "<!DOCTYPE domain SYSTEM 'http://example.invalid/domain.dtd'><domain/>",
        27,
        "XML error: DOCTYPE declarations are not allowed in domain XML (line 1, column 1)",
    );
    let err = parse("<domain type='qemu'><name>&lol;</name></domain>").unwrap_err();
    assert_eq!(
        err.message(),
        "XML error: Entity 'lol' not defined at line 1, column 27 (in element 'name')"
    );
    refused(
        "<network><name>n</name></network>",
        27,
        "XML error: expecting root element of 'domain', not 'network'",
    );
}

#[test]
fn domain_type() {
    refused(
        &doc(&[("<domain type='qemu'>", "<domain>")], ""),
        27,
        "XML error: Missing required attribute 'type' in element 'domain'",
    );
    refused(
        &doc(&[("type='qemu'", "type='qemu2'")], ""),
        27,
        "XML error: Invalid value for attribute 'type' in element 'domain': 'qemu2'.",
    );
    refused(
        &doc(&[("type='qemu'", "type='xen'")], ""),
        67,
        "unsupported configuration: domain type 'xen' is not supported by the QEMU driver",
    );
}

#[test]
fn names_and_ids() {
    refused(
        &doc(&[("  <name>trace-vm</name>\n", "")], ""),
        21,
        "missing name information",
    );
    refused(
        &doc(&[("<name>trace-vm</name>", "<name></name>")], ""),
        21,
        "missing name information",
    );
    refused(
        &doc(&[("trace-vm", "a/b")], ""),
        27,
        "XML error: name a/b cannot contain '/'",
    );
    refused(
        &doc(&[("trace-vm", "a&#10;b")], ""),
        35,
        "invalid char in name: 0x0a",
    );
    let long = "n".repeat(256);
    refused(
        &doc(&[("trace-vm", &long)], ""),
        8,
        "invalid argument: domain name is 256 bytes long, more than the 255 allowed",
    );
    refused(
        &doc(&[("0c0ffee00001", "0c0ffee0000")], ""),
        1,
        "internal error: malformed uuid element",
    );
    refused(
        &doc(&[("<name>", "<title>a\nb</title><name>")], ""),
        27,
        "XML error: Domain title can't contain newlines",
    );
}

#[test]
fn memory() {
    refused(
        &doc(
            &[(
                "<memory unit='MiB'>64</memory>",
                "<memory unit='MiB'>lots</memory>",
            )],
            "",
        ),
        27,
        "XML error: Invalid value 'lots' for element or attribute './memory[1]'",
    );
    refused(
        &doc(&[("<memory unit='MiB'>", "<memory unit='MiBs'>")], ""),
        8,
        "invalid argument: unknown suffix 'MiBs'",
    );
    refused(
        &doc(&[("<memory unit='MiB'>64", "<memory unit='EiB'>64")], ""),
        82,
        "numerical overflow: value too large: 64EiB",
    );
    refused(
        &doc(
            &[("<memory unit='MiB'>64</memory>", "<memory unit='KiB'>0</memory>")],
            "",
        ),
        27,
        "XML error: Memory size must be specified via <memory> or in the <numa> configuration",
    );
    refused(
        &doc(
            &[(
                "  <memory unit='MiB'>64</memory>\n  <currentMemory unit='MiB'>64</currentMemory>\n",
                "",
            )],
            "",
        ),
        27,
        "XML error: Memory size must be specified via <memory> or in the <numa> configuration",
    );
    refused(
        &doc(&[("<memory unit='MiB'>64", "<memory unit='TiB'>17")], ""),
        67,
        "unsupported configuration: memory size 18253611008 KiB is more than the 17179869184 KiB (16 TiB) allowed",
    );
    // 16 TiB itself is fine.
    assert!(parse(&doc(&[("<memory unit='MiB'>64", "<memory unit='TiB'>16")], "")).is_ok());
    refused(
        &doc(
            &[("<currentMemory unit='MiB'>64", "<currentMemory unit='MiB'>-1")],
            "",
        ),
        27,
        "XML error: Invalid value '-1' for element or attribute './currentMemory[1]'",
    );
}

#[test]
fn vcpus() {
    let vcpu = |v: &str| doc(&[("<vcpu>1</vcpu>", v)], "");
    refused(
        &vcpu("<vcpu>0</vcpu>"),
        67,
        "unsupported configuration: Domain requires at least 1 vCPU",
    );
    refused(
        &vcpu("<vcpu current='0'>2</vcpu>"),
        67,
        "unsupported configuration: Domain requires at least 1 vCPU",
    );
    refused(
        &vcpu("<vcpu>two</vcpu>"),
        27,
        "XML error: maximum vcpus count must be an integer",
    );
    refused(
        &vcpu("<vcpu>99999999999</vcpu>"),
        27,
        "XML error: maximum vcpus count must be an integer",
    );
    refused(
        &vcpu("<vcpu current='x'>2</vcpu>"),
        27,
        "XML error: current vcpus count must be an integer",
    );
    refused(
        &vcpu("<vcpu current='3'>2</vcpu>"),
        67,
        "unsupported configuration: maxvcpus must not be less than current vcpus (2 < 3)",
    );
    refused(
        &vcpu("<vcpu placement='dynamic'>1</vcpu>"),
        67,
        "unsupported configuration: Unsupported CPU placement mode 'dynamic'",
    );
    refused(
        &vcpu("<vcpu>256</vcpu>"),
        67,
        "unsupported configuration: Maximum CPUs greater than specified machine type limit 255",
    );
    let q35 = |n: &str| {
        doc(
            &[
                ("<vcpu>1</vcpu>", &format!("<vcpu>{n}</vcpu>")),
                ("machine='pc'", "machine='q35'"),
            ],
            "",
        )
    };
    assert_eq!(parse(&q35("4096")).unwrap().vcpu.max, 4096);
    refused(
        &q35("4097"),
        67,
        "unsupported configuration: Maximum CPUs greater than specified machine type limit 4096",
    );
}

#[test]
fn os_cpu_clock_lifecycle() {
    refused(
        &doc(&[("<type arch='x86_64' machine='pc'>hvm</type>", "")], ""),
        27,
        "XML error: an os <type> must be specified",
    );
    refused(
        &doc(&[(">hvm<", ">exe<")], ""),
        67,
        "unsupported configuration: os type 'exe' is not supported by the QEMU driver",
    );
    refused(
        &doc(&[(">hvm<", ">hvmm<")], ""),
        27,
        "XML error: unknown OS type 'hvmm'",
    );
    refused(
        &doc(&[("x86_64", "z80")], ""),
        67,
        "unsupported configuration: Unknown architecture z80",
    );
    refused(
        &doc(&[("</os>", "<boot dev='usb'/></os>")], ""),
        1,
        "internal error: unknown boot device 'usb'",
    );
    refused(
        &doc(&[("</os>", "<boot/></os>")], ""),
        1,
        "internal error: missing boot device",
    );
    refused(
        &doc(&[], "<cpu mode='guess'/>"),
        27,
        "XML error: Invalid value for attribute 'mode' in element 'cpu': 'guess'.",
    );
    refused(
        &doc(&[], "<cpu><feature name='vmx'/></cpu>"),
        27,
        "XML error: Non-empty feature list specified without CPU model",
    );
    refused(
        &doc(
            &[],
            "<cpu><model>qemu64</model><feature policy='maybe' name='vmx'/></cpu>",
        ),
        27,
        "XML error: Invalid value for attribute 'policy' in element 'feature': 'maybe'.",
    );
    refused(
        &doc(&[], "<clock offset='mars'/>"),
        27,
        "XML error: Invalid value for attribute 'offset' in element 'clock': 'mars'.",
    );
    refused(
        &doc(&[], "<clock offset='timezone'/>"),
        27,
        "XML error: missing 'timezone' attribute for clock with offset='timezone'",
    );
    refused(
        &doc(&[], "<on_poweroff>explode</on_poweroff>"),
        27,
        "XML error: invalid on_poweroff value: 'explode'",
    );
    refused(
        &doc(&[], "<on_reboot>coredump-restart</on_reboot>"),
        27,
        "XML error: invalid on_reboot value: 'coredump-restart'",
    );
}

#[test]
fn disks() {
    refused(
        &devices("<disk type='file'><source file='/a'/></disk>"),
        20,
        "missing target information for device /a",
    );
    refused(
        &devices("<disk type='file' device='cdrom'/>"),
        20,
        "missing target information for device",
    );
    refused(
        &devices("<disk type='file'><target dev='vda'/></disk>"),
        19,
        "missing source information for device vda",
    );
    refused(
        &devices("<disk type='floppyish'><target dev='vda'/></disk>"),
        27,
        "XML error: Invalid value for attribute 'type' in element 'disk': 'floppyish'.",
    );
    refused(
        &devices("<disk type='network'><target dev='vda'/></disk>"),
        67,
        "unsupported configuration: disk type 'network' is not supported",
    );
    refused(
        &devices("<disk><source file='/a'/><target dev='nvme0n1'/></disk>"),
        27,
        "XML error: Unknown disk name 'nvme0n1' and no address specified",
    );
    refused(
        &devices("<disk><source file='/a'/><target dev='vda' bus='pcie'/></disk>"),
        67,
        "unsupported configuration: unknown disk bus type 'pcie'",
    );
    refused(
        &devices("<disk><driver type='qcow3'/><source file='/a'/><target dev='vda'/></disk>"),
        1,
        "internal error: unknown driver format value 'qcow3'",
    );
    refused(
        &devices("<disk><driver name='tap'/><source file='/a'/><target dev='vda'/></disk>"),
        67,
        "unsupported configuration: unsupported driver name 'tap' for disk 'vda'",
    );
    refused(
        &devices(
            "<disk><source file='/a'/><target dev='vda'/></disk><disk><source file='/b'/><target dev='vda'/></disk>",
        ),
        27,
        "XML error: target 'vda' duplicated for disk sources '/a' and '/b'",
    );
}

#[test]
fn interfaces() {
    refused(
        &devices("<interface type='network'/>"),
        27,
        "XML error: No <source> 'network' attribute specified with <interface type='network'/>",
    );
    refused(
        &devices("<interface type='bridge'><source network='x'/></interface>"),
        27,
        "XML error: No <source> 'bridge' attribute specified with <interface type='bridge'/>",
    );
    refused(
        &devices("<interface type='direct'/>"),
        67,
        "unsupported configuration: interface type 'direct' is not supported",
    );
    refused(
        &devices("<interface type='wifi'/>"),
        27,
        "XML error: Invalid value for attribute 'type' in element 'interface': 'wifi'.",
    );
    refused(
        &devices("<interface type='user'><mac address='52:54:00:zz:00:01'/></interface>"),
        8,
        "invalid argument: unable to parse mac address '52:54:00:zz:00:01'",
    );
    refused(
        &devices("<interface type='user'><mac address='33:33:00:00:00:01'/></interface>"),
        8,
        "invalid argument: expected unicast mac address, found multicast '33:33:00:00:00:01'",
    );
    refused(
        &devices("<interface type='user'><model type='e 1000'/></interface>"),
        8,
        "invalid argument: Model name contains invalid characters",
    );
}

#[test]
fn chars_graphics_video() {
    refused(
        &devices("<serial type='tcp'/>"),
        67,
        "unsupported configuration: character device type 'tcp' is not supported",
    );
    refused(
        &devices("<serial type='telepathy'/>"),
        27,
        "XML error: unknown type presented to host for character device: telepathy",
    );
    refused(
        &devices("<console type='pty'><target type='hdmi'/></console>"),
        27,
        "XML error: unknown target type 'hdmi' specified for character device",
    );
    refused(
        &devices("<serial type='pty'><target port='first'/></serial>"),
        27,
        "XML error: Invalid value for attribute 'port' in element 'target': 'first'. Expected non-negative integer value",
    );
    // The refusal captured from libvirt 9.0 (virsh-define-invalid-xml.txt).
    refused(
        &devices("<graphics type='none'/>"),
        27,
        "XML error: Invalid value for attribute 'type' in element 'graphics': 'none'.",
    );
    refused(
        &devices("<graphics/>"),
        27,
        "XML error: Missing required attribute 'type' in element 'graphics'",
    );
    refused(
        &devices("<graphics type='spice'/>"),
        67,
        "unsupported configuration: graphics type 'spice' is not supported",
    );
    refused(
        &devices("<graphics type='vnc' port='59O0'/>"),
        27,
        "XML error: cannot parse vnc port 59O0",
    );
    refused(
        &devices("<graphics type='vnc' port='70000'/>"),
        27,
        "XML error: cannot parse vnc port 70000",
    );
    refused(
        &devices("<graphics type='vnc' autoport='maybe'/>"),
        27,
        "XML error: Invalid value for attribute 'autoport' in element 'graphics': 'maybe'.",
    );
    refused(
        &devices("<graphics type='vnc' listen='0.0.0.0'><listen type='address' address='::'/></graphics>"),
        27,
        "XML error: graphics 'listen' attribute '0.0.0.0' must match 'address' attribute of first listen element (found '::')",
    );
    refused(
        &devices("<video><model type='hologram'/></video>"),
        27,
        "XML error: unknown video model 'hologram'",
    );
    refused(
        &devices("<video><model type='vga' vram='big'/></video>"),
        27,
        "XML error: cannot parse video ram 'big'",
    );
    refused(
        &devices("<video><model type='vga' heads='-1'/></video>"),
        27,
        "XML error: cannot parse video heads '-1'",
    );
    refused(
        &devices("<video><model type='none'/></video><video><model type='vga'/></video>"),
        67,
        "unsupported configuration: a 'none' video type must be the only video device defined for the domain",
    );
    refused(
        &devices(
            "<video><model type='vga' primary='yes'/></video><video><model type='qxl' primary='yes'/></video>",
        ),
        67,
        "unsupported configuration: Only one primary video device is supported",
    );
}

#[test]
fn primary_video_moves_first() {
    let def = parse(&devices(
        "<video><model type='vga'/></video><video><model type='virtio' primary='yes'/></video>",
    ))
    .unwrap();
    let models: Vec<_> = def.devices.videos.iter().map(|v| (v.model, v.primary)).collect();
    assert_eq!(models, [(VideoModel::Virtio, true), (VideoModel::Vga, false)]);
}

#[test]
fn serial_ports_are_assigned() {
    let def = parse(&devices(
        "<serial type='pty'><target port='2'/></serial><serial type='pty'/><serial type='pty'/>",
    ))
    .unwrap();
    let ports: Vec<u32> = def.devices.serials.iter().map(|s| s.target_port).collect();
    assert_eq!(ports, [2, 3, 4]);
    assert_eq!(def.devices.consoles.len(), 1);
    assert_eq!(def.devices.consoles[0].target_port, 2);
}
