//! The defaults libvirt (and its QEMU driver) fills in after parsing, for
//! the parts that depend on more than one element. Applying them twice
//! changes nothing, so a formatted definition parses back to itself.

use super::model::*;

/// The CPU model QEMU uses for x86 guests that name none, and libvirt
/// then writes into the definition.
pub const DEFAULT_X86_CPU_MODEL: &str = "qemu64";

pub(crate) fn apply(def: &mut DomainDef) {
    // The balloon target is the maximum when absent, zero or too large.
    if def.current_memory_kib == 0 || def.current_memory_kib > def.memory_kib {
        def.current_memory_kib = def.memory_kib;
    }
    apply_cpu(def);
}

fn apply_cpu(def: &mut DomainDef) {
    let x86 = matches!(def.os.arch.as_str(), "i686" | "x86_64");
    if def.cpu.is_none() && x86 {
        def.cpu = Some(Cpu {
            mode: CpuMode::Custom,
            cpu_match: Some(CpuMatch::Exact),
            check: None,
            migratable: None,
            model: Some(CpuModel {
                name: DEFAULT_X86_CPU_MODEL.to_owned(),
                fallback: CpuFallback::Forbid,
            }),
            features: Vec::new(),
        });
    }
    let Some(cpu) = def.cpu.as_mut() else { return };
    if cpu.check.is_none() {
        cpu.check = Some(match cpu.mode {
            CpuMode::HostPassthrough | CpuMode::Maximum => CpuCheck::None,
            CpuMode::HostModel => CpuCheck::Partial,
            // TCG does not compare a custom CPU with the host's.
            CpuMode::Custom if def.virt_type == VirtType::Qemu => CpuCheck::None,
            CpuMode::Custom => CpuCheck::Partial,
        });
    }
    if matches!(cpu.mode, CpuMode::HostPassthrough | CpuMode::Maximum) && cpu.migratable.is_none() {
        cpu.migratable = Some(true);
    }
}
