//! The REMOTE procedures of the QEMU driver, one function each, and the
//! table that routes a call to them. Anything not here answers
//! `VIR_ERR_NO_SUPPORT` (the runtime's default).

use super::Core;
use super::domains::{Dom, internal, invalid, matches_filter};
use super::node;
use crate::domain::{DomainDef, FormatOptions};
use modvirt_runtime::dispatch::{CallContext, CallFuture, CallResult, decode_args, encode_ret};
use modvirt_wire::domain::*;
use modvirt_wire::remote::{DomainArgs, DomainLookupByNameArgs, DomainRet, NonnullDomain};
use modvirt_wire::{ErrorCode, ErrorDomain, RpcError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long a job waits for the domain's job lock (libvirt: 30 s).
pub const JOB_WAIT: Duration = Duration::from_secs(30);

/// `VIR_DOMAIN_XML_INACTIVE`.
const XML_INACTIVE: u32 = 1 << 1;
/// `VIR_DOMAIN_START_PAUSED`.
const START_PAUSED: u32 = 1;

fn bad_flags(flags: u32, allowed: u32, api: &str) -> Result<(), RpcError> {
    if flags & !allowed != 0 {
        return Err(RpcError::new(
            ErrorCode::INVALID_ARG,
            ErrorDomain::QEMU,
            "invalid argument",
            format!("{api}: unsupported flags (0x{:x})", flags & !allowed),
        ));
    }
    Ok(())
}

fn boxed<F>(f: F) -> Option<CallFuture>
where
    F: Future<Output = CallResult> + Send + 'static,
{
    Some(Box::pin(f))
}

/// Routes a call; `None` for procedures this driver does not implement.
pub fn dispatch(core: Arc<Core>, ctx: &CallContext, payload: &[u8]) -> Option<CallFuture> {
    let ctx = ctx.clone();
    let p = payload.to_vec();
    let n = ctx.procedure.number;
    macro_rules! with {
        ($f:ident) => {
            boxed(async move { $f(&core, &ctx, &p).await })
        };
    }
    match n {
        6 => with!(node_get_info),
        7 => with!(capabilities),
        9 => with!(create),
        10 => with!(create_xml),
        11 | 350 => with!(define),
        12 | 234 => with!(destroy),
        14 => with!(get_xml_desc),
        15 => with!(get_autostart),
        16 => with!(get_info),
        17 => with!(get_max_memory),
        19 => with!(get_os_type),
        21 => with!(list_defined),
        22 => with!(lookup_by_id),
        23 => with!(lookup_by_name),
        24 => with!(lookup_by_uuid),
        25 => with!(num_of_defined),
        27 => with!(reboot),
        28 => with!(resume),
        29 => with!(set_autostart),
        33 | 258 => with!(shutdown),
        34 => with!(suspend),
        35 | 231 => with!(undefine),
        37 => with!(list_active),
        51 => with!(num_of_active),
        121 => with!(security_label),
        122 => with!(security_model),
        150 => with!(is_active),
        151 => with!(is_persistent),
        163 => with!(job_info),
        183 | 187 => with!(zero_for_domain),
        196 => with!(create),
        212 => with!(get_state),
        229 => with!(control_info),
        273 => with!(list_all),
        298 => with!(job_stats),
        316 => with!(event_register),
        317 => with!(event_deregister),
        426 => with!(messages),
        _ => None,
    }
}

/// The domain a call names (its UUID decides, as in libvirt).
fn domain_of(core: &Core, p: &[u8]) -> Result<Arc<Dom>, RpcError> {
    let a: DomainArgs = decode_args(p)?;
    core.domains.get(&a.dom)
}

/// A domain-and-flags call's domain and flags.
fn domain_flags(core: &Core, p: &[u8]) -> Result<(Arc<Dom>, u32), RpcError> {
    let a: DomainFlagsArgs = decode_args(p)?;
    Ok((core.domains.get(&a.dom)?, a.flags))
}

/// Takes the job lock of `dom` for this call (libvirt's 30 s wait).
async fn job(
    core: &Core,
    ctx: &CallContext,
    dom: &Dom,
) -> Result<modvirt_runtime::observe::joblock::JobGuard, RpcError> {
    core.daemon
        .observer
        .job_locks
        .acquire(&dom.job_object(), &ctx.call, JOB_WAIT)
        .await
        .map_err(|e| e.to_rpc(ErrorDomain::QEMU))
}

fn ret_dom(dom: &Dom) -> CallResult {
    encode_ret(&DomainRet { dom: dom.wire() })
}

fn int(v: i32) -> CallResult {
    encode_ret(&IntRet { value: v })
}

async fn lookup_by_name(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let a: DomainLookupByNameArgs = decode_args(p)?;
    let dom = core.domains.by_name(&a.name)?;
    ret_dom(&dom)
}

async fn lookup_by_uuid(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let a: DomainLookupByUuidArgs = decode_args(p)?;
    let dom = core.domains.by_uuid(&a.uuid.0)?;
    ret_dom(&dom)
}

async fn lookup_by_id(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let a: DomainLookupByIdArgs = decode_args(p)?;
    let dom = core.domains.by_id(a.id)?;
    ret_dom(&dom)
}

async fn list_all(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let a: ConnectListAllDomainsArgs = decode_args(p)?;
    bad_flags(a.flags, list::ALL, "virConnectListAllDomains")?;
    let doms: Vec<NonnullDomain> = core
        .domains
        .all()
        .iter()
        .filter(|d| matches_filter(&d.lock(), a.flags))
        .map(|d| d.wire())
        .collect();
    let n = doms.len() as u32;
    encode_ret(&ConnectListAllDomainsRet {
        domains: if a.need_results != 0 { doms } else { Vec::new() },
        ret: n,
    })
}

async fn num_of_active(core: &Core, _: &CallContext, _: &[u8]) -> CallResult {
    let n = core
        .domains
        .all()
        .iter()
        .filter(|d| d.lock().run.is_some())
        .count();
    encode_ret(&CountRet { num: n as i32 })
}

async fn num_of_defined(core: &Core, _: &CallContext, _: &[u8]) -> CallResult {
    let n = core
        .domains
        .all()
        .iter()
        .filter(|d| d.lock().run.is_none())
        .count();
    encode_ret(&CountRet { num: n as i32 })
}

async fn list_active(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let a: ConnectListDomainsArgs = decode_args(p)?;
    let mut ids: Vec<i32> = core
        .domains
        .all()
        .iter()
        .map(|d| d.lock().id())
        .filter(|id| *id >= 0)
        .collect();
    ids.sort_unstable();
    ids.truncate(a.maxids.max(0) as usize);
    encode_ret(&ConnectListDomainsRet { ids })
}

async fn list_defined(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let a: ConnectListDefinedDomainsArgs = decode_args(p)?;
    let mut names: Vec<String> = core
        .domains
        .all()
        .iter()
        .filter(|d| d.lock().run.is_none())
        .map(|d| d.name.clone())
        .collect();
    names.truncate(a.maxnames.max(0) as usize);
    encode_ret(&ConnectListDefinedDomainsRet { names })
}

async fn get_state(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let (dom, flags) = domain_flags(core, p)?;
    bad_flags(flags, 0, "virDomainGetState")?;
    let (state, reason) = dom.lock().state();
    encode_ret(&DomainGetStateRet { state, reason })
}

async fn get_info(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let dom = domain_of(core, p)?;
    let (state, pid, max_mem, memory, vcpus) = {
        let st = dom.lock();
        let def = st.run.as_ref().map_or(&st.def, |r| &r.live);
        let pid = st.run.as_ref().map(|r| r.process.pid());
        (
            st.state().0,
            pid,
            def.memory_kib,
            def.current_memory_kib,
            def.vcpu.current,
        )
    };
    encode_ret(&DomainGetInfoRet {
        state: state as u32,
        max_mem,
        memory,
        nr_virt_cpu: vcpus,
        cpu_time: pid.map_or(0, node::process_cpu_ns),
    })
}

async fn get_max_memory(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let dom = domain_of(core, p)?;
    let kib = dom.lock().def.memory_kib;
    encode_ret(&U64Ret { value: kib })
}

async fn get_os_type(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let dom = domain_of(core, p)?;
    let t = dom.lock().def.os.os_type.clone();
    encode_ret(&StringRet { value: t })
}

async fn is_active(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    int(i32::from(domain_of(core, p)?.lock().run.is_some()))
}

async fn is_persistent(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    int(i32::from(domain_of(core, p)?.lock().persistent))
}

async fn get_autostart(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    int(i32::from(domain_of(core, p)?.lock().autostart))
}

/// Managed save images and snapshots: this driver has none.
async fn zero_for_domain(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    domain_flags(core, p)?;
    int(0)
}

async fn security_label(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    domain_of(core, p)?;
    encode_ret(&DomainGetSecurityLabelRet {
        label: Chars::c_string(""),
        enforcing: 0,
    })
}

async fn security_model(_: &Core, _: &CallContext, _: &[u8]) -> CallResult {
    encode_ret(&NodeGetSecurityModelRet {
        model: Chars::c_string("none"),
        doi: Chars::c_string("0"),
    })
}

async fn messages(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    domain_flags(core, p)?;
    encode_ret(&DomainGetMessagesRet { msgs: Vec::new() })
}

async fn get_xml_desc(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let (dom, flags) = domain_flags(core, p)?;
    // SECURE, INACTIVE, UPDATE_CPU, MIGRATABLE.
    bad_flags(flags, 0xf, "virDomainGetXMLDesc")?;
    let st = dom.lock();
    let xml = match &st.run {
        Some(r) if flags & XML_INACTIVE == 0 => r.live.to_xml(&FormatOptions { id: Some(r.id) }),
        _ => st.def.to_xml(&FormatOptions { id: None }),
    };
    encode_ret(&StringRet { value: xml })
}

async fn define(core: &Arc<Core>, ctx: &CallContext, p: &[u8]) -> CallResult {
    let xml = if ctx.procedure.number == 350 {
        let a: DomainXmlFlagsArgs = decode_args(p)?;
        // VIR_DOMAIN_DEFINE_VALIDATE: parsing is always strict enough here.
        bad_flags(a.flags, 1, "virDomainDefineXMLFlags")?;
        a.xml
    } else {
        decode_args::<DomainDefineXmlArgs>(p)?.xml
    };
    let def = core.parse(&xml)?;
    core.define(ctx, def).await
}

async fn create_xml(core: &Arc<Core>, ctx: &CallContext, p: &[u8]) -> CallResult {
    let a: DomainXmlFlagsArgs = decode_args(p)?;
    bad_flags(a.flags, START_PAUSED, "virDomainCreateXML")?;
    let def = core.parse(&a.xml)?;
    let dom = Dom::new(def, false, false);
    core.domains.insert(dom.clone())?;
    let _job = job(core, ctx, &dom).await?;
    if let Err(e) = core
        .start_domain(&dom, a.flags & START_PAUSED != 0, Some(&ctx.call))
        .await
    {
        core.domains.remove(&dom);
        return Err(e);
    }
    ret_dom(&dom)
}

async fn create(core: &Arc<Core>, ctx: &CallContext, p: &[u8]) -> CallResult {
    let (dom, flags) = if ctx.procedure.number == 196 {
        domain_flags(core, p)?
    } else {
        (domain_of(core, p)?, 0)
    };
    bad_flags(flags, START_PAUSED, "virDomainCreateWithFlags")?;
    let _job = job(core, ctx, &dom).await?;
    core.start_domain(&dom, flags & START_PAUSED != 0, Some(&ctx.call))
        .await?;
    if ctx.procedure.number == 196 {
        ret_dom(&dom)
    } else {
        encode_ret(&())
    }
}

async fn destroy(core: &Arc<Core>, ctx: &CallContext, p: &[u8]) -> CallResult {
    let (dom, flags) = if ctx.procedure.number == 234 {
        domain_flags(core, p)?
    } else {
        (domain_of(core, p)?, 0)
    };
    // GRACEFUL is accepted: destroy always tries SIGTERM first.
    bad_flags(flags, 1, "virDomainDestroyFlags")?;
    // Kill first, then wait for whatever job was running to give up.
    core.destroy_domain(&dom).await?;
    let _job = job(core, ctx, &dom).await?;
    encode_ret(&())
}

async fn shutdown(core: &Arc<Core>, ctx: &CallContext, p: &[u8]) -> CallResult {
    let (dom, flags) = if ctx.procedure.number == 258 {
        domain_flags(core, p)?
    } else {
        (domain_of(core, p)?, 0)
    };
    // DEFAULT or ACPI_POWER_BTN.
    bad_flags(flags, 1, "virDomainShutdownFlags")?;
    let _job = job(core, ctx, &dom).await?;
    core.qmp(&dom, "system_powerdown", &ctx.call).await?;
    encode_ret(&())
}

async fn reboot(core: &Arc<Core>, ctx: &CallContext, p: &[u8]) -> CallResult {
    let (dom, flags) = domain_flags(core, p)?;
    bad_flags(flags, 0x1f, "virDomainReboot")?;
    let _job = job(core, ctx, &dom).await?;
    core.qmp(&dom, "system_reset", &ctx.call).await?;
    encode_ret(&())
}

async fn suspend(core: &Arc<Core>, ctx: &CallContext, p: &[u8]) -> CallResult {
    let dom = domain_of(core, p)?;
    let _job = job(core, ctx, &dom).await?;
    {
        let mut st = dom.lock();
        if st.state().0 == state::PAUSED {
            return encode_ret(&());
        }
        if let Some(run) = st.run.as_mut() {
            run.pause_reason = Some(reason::paused::USER);
        }
    }
    core.qmp(&dom, "stop", &ctx.call).await?;
    core.set_state(
        &dom,
        state::PAUSED,
        reason::paused::USER,
        Some((event::SUSPENDED, event::suspended::PAUSED)),
    );
    encode_ret(&())
}

async fn resume(core: &Arc<Core>, ctx: &CallContext, p: &[u8]) -> CallResult {
    let dom = domain_of(core, p)?;
    let _job = job(core, ctx, &dom).await?;
    if dom.lock().run.is_none() {
        return Err(invalid("domain is not running"));
    }
    core.qmp(&dom, "cont", &ctx.call).await?;
    core.set_state(
        &dom,
        state::RUNNING,
        reason::running::UNPAUSED,
        Some((event::RESUMED, event::resumed::UNPAUSED)),
    );
    encode_ret(&())
}

async fn undefine(core: &Arc<Core>, ctx: &CallContext, p: &[u8]) -> CallResult {
    let (dom, flags) = if ctx.procedure.number == 231 {
        domain_flags(core, p)?
    } else {
        (domain_of(core, p)?, 0)
    };
    // MANAGED_SAVE, SNAPSHOTS_METADATA, NVRAM, KEEP_NVRAM, CHECKPOINTS_METADATA, TPM, KEEP_TPM:
    // none of these exist here, so each is trivially honoured.
    bad_flags(flags, 0x7f, "virDomainUndefineFlags")?;
    let _job = job(core, ctx, &dom).await?;
    core.undefine(&dom)?;
    encode_ret(&())
}

async fn set_autostart(core: &Arc<Core>, ctx: &CallContext, p: &[u8]) -> CallResult {
    let a: DomainSetAutostartArgs = decode_args(p)?;
    let dom = core.domains.get(&a.dom)?;
    let _job = job(core, ctx, &dom).await?;
    let mut st = dom.lock();
    if !st.persistent {
        return Err(invalid("cannot set autostart for transient domain"));
    }
    let on = a.autostart != 0;
    core.store
        .set_autostart(&dom.name, on)
        .map_err(|e| internal(format!("cannot change autostart of '{}': {e}", dom.name)))?;
    st.autostart = on;
    encode_ret(&())
}

async fn control_info(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let (dom, flags) = domain_flags(core, p)?;
    bad_flags(flags, 0, "virDomainGetControlInfo")?;
    let st = dom.lock();
    let run = st.run.as_ref().ok_or_else(|| invalid("domain is not running"))?;
    let ret = match run.qmp.busy_since() {
        Some(since) if run.qmp.is_closed() => DomainGetControlInfoRet {
            state: control::ERROR,
            details: 0,
            state_time: since.elapsed().as_millis() as u64,
        },
        Some(since) => DomainGetControlInfoRet {
            state: control::OCCUPIED,
            details: 0,
            state_time: since.elapsed().as_millis() as u64,
        },
        None => DomainGetControlInfoRet {
            state: control::OK,
            details: 0,
            state_time: 0,
        },
    };
    encode_ret(&ret)
}

/// The job a domain runs now, from the job-lock registry: (elapsed ms).
fn current_job(core: &Core, dom: &Dom) -> Option<u64> {
    let object = dom.job_object();
    core.daemon
        .observer
        .job_locks
        .snapshot(std::time::Instant::now())
        .into_iter()
        .find(|l| l.object == object)
        .map(|l| (l.held_s * 1000.0) as u64)
}

async fn job_info(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let dom = domain_of(core, p)?;
    let elapsed = current_job(core, &dom);
    encode_ret(&DomainGetJobInfoRet {
        type_: if elapsed.is_some() {
            job::UNBOUNDED
        } else {
            job::NONE
        },
        time_elapsed: elapsed.unwrap_or(0),
        time_remaining: 0,
        data_total: 0,
        data_processed: 0,
        data_remaining: 0,
        mem_total: 0,
        mem_processed: 0,
        mem_remaining: 0,
        file_total: 0,
        file_processed: 0,
        file_remaining: 0,
    })
}

async fn job_stats(core: &Core, _: &CallContext, p: &[u8]) -> CallResult {
    let (dom, flags) = domain_flags(core, p)?;
    // COMPLETED, KEEP_COMPLETED.
    bad_flags(flags, 0x3, "virDomainGetJobStats")?;
    let elapsed = current_job(core, &dom);
    let params = match elapsed {
        Some(ms) => vec![modvirt_wire::typed_param::TypedParam::new(
            "time_elapsed",
            modvirt_wire::typed_param::TypedValue::ULLong(ms),
        )],
        None => Vec::new(),
    };
    encode_ret(&DomainGetJobStatsRet {
        type_: if elapsed.is_some() {
            job::UNBOUNDED
        } else {
            job::NONE
        },
        params,
    })
}

async fn event_register(core: &Core, ctx: &CallContext, p: &[u8]) -> CallResult {
    let a: DomainEventCallbackRegisterAnyArgs = decode_args(p)?;
    let dom = a.dom.map(|d| d.uuid);
    let list = &core.events.list;
    let id = list.register_checked(&ctx.client, a.event_id, dom, &super::events::KIND)?;
    encode_ret(&DomainEventCallbackRegisterAnyRet { callback_id: id })
}

async fn event_deregister(core: &Core, ctx: &CallContext, p: &[u8]) -> CallResult {
    let a: DomainEventCallbackDeregisterAnyArgs = decode_args(p)?;
    let list = &core.events.list;
    list.deregister_checked(&ctx.client, a.callback_id, &super::events::KIND)?;
    encode_ret(&())
}

async fn node_get_info(_: &Core, _: &CallContext, _: &[u8]) -> CallResult {
    encode_ret(&node::info())
}

async fn capabilities(core: &Core, _: &CallContext, _: &[u8]) -> CallResult {
    encode_ret(&StringRet {
        value: node::capabilities(&core.emulator, core.kvm),
    })
}

impl Core {
    /// Parses a client's XML (libvirt's XML errors on failure), with the
    /// machine type made the versioned one QEMU runs, as libvirt stores it.
    pub fn parse(&self, xml: &str) -> Result<DomainDef, RpcError> {
        let mut def = DomainDef::parse(xml, &mut self.rng())
            .map_err(|e| RpcError::plain(ErrorCode(e.code()), ErrorDomain(e.domain()), e.message()))?;
        def.os.machine = node::canonical_machine(&self.emulator_for(&def), &def.os.machine);
        Ok(def)
    }

    /// `virDomainDefineXML`: a new persistent domain, or a new definition
    /// for an existing one (which takes effect at its next start).
    async fn define(self: &Arc<Self>, ctx: &CallContext, def: DomainDef) -> CallResult {
        // Same name with another UUID, or the reverse: libvirt's messages.
        self.domains.check_unique(&def.name, &def.uuid)?;
        let existing = self.domains.by_uuid(&def.uuid).ok();
        let xml = def.to_xml(&FormatOptions { id: None });
        let save = |name: &str| {
            self.store
                .save_config(name, &xml)
                .map_err(|e| internal(format!("cannot write the definition of '{name}': {e}")))
        };
        match existing {
            Some(dom) => {
                let _job = job(self, ctx, &dom).await?;
                save(&def.name)?;
                let mut st = dom.lock();
                st.def = def;
                st.persistent = true;
                drop(st);
                self.emit(
                    &dom,
                    super::events::DomainEvent::Lifecycle {
                        event: event::DEFINED,
                        detail: event::defined::UPDATED,
                    },
                );
                ret_dom(&dom)
            }
            None => {
                let dom = Dom::new(def.clone(), true, false);
                self.domains.insert(dom.clone())?;
                if let Err(e) = save(&def.name) {
                    self.domains.remove(&dom);
                    return Err(e);
                }
                self.emit(
                    &dom,
                    super::events::DomainEvent::Lifecycle {
                        event: event::DEFINED,
                        detail: event::defined::ADDED,
                    },
                );
                ret_dom(&dom)
            }
        }
    }

    /// `virDomainUndefine`: forgets the definition; a running guest goes on
    /// as a transient one (as libvirt).
    fn undefine(&self, dom: &Dom) -> Result<(), RpcError> {
        let mut st = dom.lock();
        if !st.persistent {
            return Err(invalid("cannot undefine transient domain"));
        }
        self.store
            .delete_config(&dom.name)
            .map_err(|e| internal(format!("cannot remove the definition of '{}': {e}", dom.name)))?;
        st.persistent = false;
        st.autostart = false;
        let running = st.run.is_some();
        drop(st);
        if !running {
            self.domains.remove(dom);
        }
        self.emit(
            dom,
            super::events::DomainEvent::Lifecycle {
                event: event::UNDEFINED,
                detail: event::undefined::REMOVED,
            },
        );
        Ok(())
    }

    /// Starts every autostart domain that is not running; returns how many started.
    pub async fn autostart(self: &Arc<Self>) -> usize {
        let mut started = 0;
        for dom in self.domains.all() {
            let wanted = {
                let st = dom.lock();
                st.autostart && st.run.is_none()
            };
            if !wanted {
                continue;
            }
            match self.start_domain(&dom, false, None).await {
                Ok(()) => started += 1,
                Err(e) => tracing::error!(target: "qemu", "autostart of '{}' failed: {}", dom.name, e.text()),
            }
        }
        started
    }
}
