//! Arguments, return values and event messages of the REMOTE program's
//! domain and node procedures (`remote_protocol.x`), and the public
//! `virDomain*` numbers they carry (states, reasons, flags, events).

use crate::remote::{NonnullDomain, Uuid};
use crate::typed_param::TypedParam;
use crate::xdr::{Decoder, Encoder, XdrDecode, XdrEncode, XdrError};
use crate::xdr_struct;

/// `REMOTE_DOMAIN_LIST_MAX`.
pub const DOMAIN_LIST_MAX: u32 = 16384;
/// `REMOTE_DOMAIN_ID_LIST_MAX` / `REMOTE_DOMAIN_NAME_LIST_MAX`.
pub const DOMAIN_ID_LIST_MAX: u32 = 16384;
/// `REMOTE_SECURITY_LABEL_MAX` (`VIR_SECURITY_LABEL_BUFLEN`).
pub const SECURITY_LABEL_MAX: u32 = 4097;
/// `REMOTE_SECURITY_MODEL_MAX` (`VIR_SECURITY_MODEL_BUFLEN`).
pub const SECURITY_MODEL_MAX: u32 = 257;
/// `REMOTE_SECURITY_DOI_MAX` (`VIR_SECURITY_DOI_BUFLEN`).
pub const SECURITY_DOI_MAX: u32 = 257;
/// `REMOTE_DOMAIN_MESSAGES_MAX`.
pub const DOMAIN_MESSAGES_MAX: u32 = 2048;
/// `REMOTE_DOMAIN_JOB_STATS_MAX`.
pub const DOMAIN_JOB_STATS_MAX: u32 = 64;

/// `virDomainState`.
pub mod state {
    pub const NOSTATE: i32 = 0;
    pub const RUNNING: i32 = 1;
    pub const BLOCKED: i32 = 2;
    pub const PAUSED: i32 = 3;
    pub const SHUTDOWN: i32 = 4;
    pub const SHUTOFF: i32 = 5;
    pub const CRASHED: i32 = 6;
    pub const PMSUSPENDED: i32 = 7;
}

/// `virDomain*Reason` values we report, by state.
pub mod reason {
    pub mod running {
        pub const UNKNOWN: i32 = 0;
        pub const BOOTED: i32 = 1;
        pub const MIGRATED: i32 = 2;
        pub const RESTORED: i32 = 3;
        pub const FROM_SNAPSHOT: i32 = 4;
        pub const UNPAUSED: i32 = 5;
    }
    pub mod paused {
        pub const UNKNOWN: i32 = 0;
        pub const USER: i32 = 1;
        pub const STARTING_UP: i32 = 11;
    }
    pub mod shutdown {
        pub const UNKNOWN: i32 = 0;
        pub const USER: i32 = 1;
    }
    pub mod shutoff {
        pub const UNKNOWN: i32 = 0;
        pub const SHUTDOWN: i32 = 1;
        pub const DESTROYED: i32 = 2;
        pub const CRASHED: i32 = 3;
        pub const FAILED: i32 = 6;
        pub const DAEMON: i32 = 8;
    }
    pub mod crashed {
        pub const UNKNOWN: i32 = 0;
        pub const PANICKED: i32 = 1;
    }
}

/// `virConnectListAllDomainsFlags`.
pub mod list {
    pub const ACTIVE: u32 = 1 << 0;
    pub const INACTIVE: u32 = 1 << 1;
    pub const PERSISTENT: u32 = 1 << 2;
    pub const TRANSIENT: u32 = 1 << 3;
    pub const RUNNING: u32 = 1 << 4;
    pub const PAUSED: u32 = 1 << 5;
    pub const SHUTOFF: u32 = 1 << 6;
    pub const OTHER: u32 = 1 << 7;
    pub const MANAGEDSAVE: u32 = 1 << 8;
    pub const NO_MANAGEDSAVE: u32 = 1 << 9;
    pub const AUTOSTART: u32 = 1 << 10;
    pub const NO_AUTOSTART: u32 = 1 << 11;
    pub const HAS_SNAPSHOT: u32 = 1 << 12;
    pub const NO_SNAPSHOT: u32 = 1 << 13;
    pub const HAS_CHECKPOINT: u32 = 1 << 14;
    pub const NO_CHECKPOINT: u32 = 1 << 15;
    /// Every flag of 9.0.
    pub const ALL: u32 = (1 << 16) - 1;
}

/// `virDomainEventType` and the details we send with them.
pub mod event {
    pub const DEFINED: i32 = 0;
    pub const UNDEFINED: i32 = 1;
    pub const STARTED: i32 = 2;
    pub const SUSPENDED: i32 = 3;
    pub const RESUMED: i32 = 4;
    pub const STOPPED: i32 = 5;
    pub const SHUTDOWN: i32 = 6;
    pub const PMSUSPENDED: i32 = 7;
    pub const CRASHED: i32 = 8;

    pub mod defined {
        pub const ADDED: i32 = 0;
        pub const UPDATED: i32 = 1;
    }
    pub mod undefined {
        pub const REMOVED: i32 = 0;
    }
    pub mod started {
        pub const BOOTED: i32 = 0;
    }
    pub mod suspended {
        pub const PAUSED: i32 = 0;
    }
    pub mod resumed {
        pub const UNPAUSED: i32 = 0;
    }
    pub mod stopped {
        pub const SHUTDOWN: i32 = 0;
        pub const DESTROYED: i32 = 1;
        pub const CRASHED: i32 = 2;
        pub const FAILED: i32 = 5;
    }
    pub mod shutdown {
        pub const FINISHED: i32 = 0;
        pub const GUEST: i32 = 1;
        pub const HOST: i32 = 2;
    }
    pub mod crashed {
        pub const PANICKED: i32 = 0;
    }

    /// `virDomainEventID` values.
    pub mod id {
        pub const LIFECYCLE: i32 = 0;
        pub const REBOOT: i32 = 1;
        /// One past the last event id of 9.0 (`VIR_DOMAIN_EVENT_ID_LAST`).
        pub const LAST: i32 = 27;
    }
}

/// `virDomainControlState`.
pub mod control {
    pub const OK: u32 = 0;
    pub const JOB: u32 = 1;
    pub const OCCUPIED: u32 = 2;
    pub const ERROR: u32 = 3;
}

/// `virDomainJobType`.
pub mod job {
    pub const NONE: i32 = 0;
    pub const BOUNDED: i32 = 1;
    pub const UNBOUNDED: i32 = 2;
    pub const COMPLETED: i32 = 3;
    pub const FAILED: i32 = 4;
    pub const CANCELLED: i32 = 5;
}

/// A `char x<N>` as rpcgen encodes it: a length, then every character as a
/// 4-byte unit (libvirt's strings of this kind carry their NUL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chars<const MAX: u32>(pub Vec<u8>);

impl<const MAX: u32> Chars<MAX> {
    /// `s` and its terminating NUL.
    pub fn c_string(s: &str) -> Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v.truncate(MAX as usize);
        Chars(v)
    }
}

impl<const MAX: u32> XdrEncode for Chars<MAX> {
    fn encode(&self, enc: &mut Encoder) {
        enc.u32(self.0.len() as u32);
        for b in &self.0 {
            enc.i32(i32::from(*b as i8));
        }
    }
}

impl<const MAX: u32> XdrDecode for Chars<MAX> {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        let n: Vec<i32> = dec.array("chars", MAX)?;
        Ok(Chars(n.into_iter().map(|c| c as i8 as u8).collect()))
    }
}

/// A `char x[N]`: exactly `N` characters, 4 bytes each, NUL-padded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedChars<const N: usize>(pub [u8; N]);

impl<const N: usize> FixedChars<N> {
    /// `s`, cut to leave room for a NUL, padded with NULs.
    pub fn c_string(s: &str) -> Self {
        let mut a = [0u8; N];
        let n = s.len().min(N.saturating_sub(1));
        a[..n].copy_from_slice(&s.as_bytes()[..n]);
        FixedChars(a)
    }
}

impl<const N: usize> XdrEncode for FixedChars<N> {
    fn encode(&self, enc: &mut Encoder) {
        for b in &self.0 {
            enc.i32(i32::from(*b as i8));
        }
    }
}

impl<const N: usize> XdrDecode for FixedChars<N> {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        let mut a = [0u8; N];
        for b in &mut a {
            *b = dec.i32()? as i8 as u8;
        }
        Ok(FixedChars(a))
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_id_args`.
    pub struct DomainLookupByIdArgs {
        pub id: i32,
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_uuid_args`.
    pub struct DomainLookupByUuidArgs {
        pub uuid: Uuid,
    }
}

xdr_struct! {
    /// Arguments that are a domain and flags (`DOMAIN_GET_STATE`,
    /// `DOMAIN_GET_XML_DESC`, `DOMAIN_CREATE_WITH_FLAGS`, `DOMAIN_DESTROY_FLAGS`,
    /// `DOMAIN_SHUTDOWN_FLAGS`, `DOMAIN_REBOOT`, `DOMAIN_UNDEFINE_FLAGS`,
    /// `DOMAIN_GET_CONTROL_INFO`, `DOMAIN_GET_JOB_STATS`, …).
    pub struct DomainFlagsArgs {
        pub dom: NonnullDomain,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_define_xml_args`.
    pub struct DomainDefineXmlArgs {
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_domain_define_xml_flags_args` / `remote_domain_create_xml_args`.
    pub struct DomainXmlFlagsArgs {
        pub xml: String,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_domains_args`.
    pub struct ConnectListAllDomainsArgs {
        pub need_results: i32,
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_domains_ret`.
    pub struct ConnectListAllDomainsRet {
        pub domains: Vec<NonnullDomain> [max DOMAIN_LIST_MAX],
        pub ret: u32,
    }
}

xdr_struct! {
    /// `remote_connect_num_of_domains_ret` (also `_defined_`): a count.
    pub struct CountRet {
        pub num: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_domains_args`: at most `maxids` ids.
    pub struct ConnectListDomainsArgs {
        pub maxids: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_domains_ret`.
    pub struct ConnectListDomainsRet {
        pub ids: Vec<i32> [max DOMAIN_ID_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_connect_list_defined_domains_args`.
    pub struct ConnectListDefinedDomainsArgs {
        pub maxnames: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_defined_domains_ret`.
    pub struct ConnectListDefinedDomainsRet {
        pub names: Vec<String> [max DOMAIN_ID_LIST_MAX],
    }
}

xdr_struct! {
    /// `remote_domain_get_state_ret`.
    pub struct DomainGetStateRet {
        pub state: i32,
        pub reason: i32,
    }
}

xdr_struct! {
    /// `remote_domain_get_info_ret` (`unsigned char state` and `unsigned
    /// short nrVirtCpu` travel as 4-byte units).
    pub struct DomainGetInfoRet {
        pub state: u32,
        pub max_mem: u64,
        pub memory: u64,
        pub nr_virt_cpu: u32,
        pub cpu_time: u64,
    }
}

xdr_struct! {
    /// One string (`DOMAIN_GET_XML_DESC`, `DOMAIN_GET_OS_TYPE`,
    /// `CONNECT_GET_CAPABILITIES` replies).
    pub struct StringRet {
        pub value: String,
    }
}

xdr_struct! {
    /// One `int` (`DOMAIN_GET_AUTOSTART`, `DOMAIN_IS_ACTIVE`,
    /// `DOMAIN_IS_PERSISTENT`, `DOMAIN_HAS_MANAGED_SAVE_IMAGE`,
    /// `DOMAIN_SNAPSHOT_NUM`, `DOMAIN_GET_MAX_VCPUS` … replies).
    pub struct IntRet {
        pub value: i32,
    }
}

xdr_struct! {
    /// One `unsigned hyper` (`DOMAIN_GET_MAX_MEMORY`, `NODE_GET_FREE_MEMORY`).
    pub struct U64Ret {
        pub value: u64,
    }
}

xdr_struct! {
    /// `remote_domain_set_autostart_args`.
    pub struct DomainSetAutostartArgs {
        pub dom: NonnullDomain,
        pub autostart: i32,
    }
}

xdr_struct! {
    /// `remote_domain_get_security_label_ret`.
    pub struct DomainGetSecurityLabelRet {
        pub label: Chars<SECURITY_LABEL_MAX>,
        pub enforcing: i32,
    }
}

xdr_struct! {
    /// `remote_node_get_security_model_ret`.
    pub struct NodeGetSecurityModelRet {
        pub model: Chars<SECURITY_MODEL_MAX>,
        pub doi: Chars<SECURITY_DOI_MAX>,
    }
}

xdr_struct! {
    /// `remote_domain_get_messages_ret`.
    pub struct DomainGetMessagesRet {
        pub msgs: Vec<String> [max DOMAIN_MESSAGES_MAX],
    }
}

xdr_struct! {
    /// `remote_domain_get_control_info_ret`.
    pub struct DomainGetControlInfoRet {
        pub state: u32,
        pub details: u32,
        /// Milliseconds in the current state (`stateTime`).
        pub state_time: u64,
    }
}

xdr_struct! {
    /// `remote_domain_get_job_info_ret`.
    pub struct DomainGetJobInfoRet {
        pub type_: i32,
        pub time_elapsed: u64,
        pub time_remaining: u64,
        pub data_total: u64,
        pub data_processed: u64,
        pub data_remaining: u64,
        pub mem_total: u64,
        pub mem_processed: u64,
        pub mem_remaining: u64,
        pub file_total: u64,
        pub file_processed: u64,
        pub file_remaining: u64,
    }
}

xdr_struct! {
    /// `remote_domain_get_job_stats_ret`.
    pub struct DomainGetJobStatsRet {
        pub type_: i32,
        pub params: Vec<TypedParam> [max DOMAIN_JOB_STATS_MAX],
    }
}

xdr_struct! {
    /// `remote_node_get_info_ret`.
    pub struct NodeGetInfoRet {
        pub model: FixedChars<32>,
        /// KiB.
        pub memory: u64,
        pub cpus: i32,
        pub mhz: i32,
        pub nodes: i32,
        pub sockets: i32,
        pub cores: i32,
        pub threads: i32,
    }
}

xdr_struct! {
    /// `remote_connect_domain_event_callback_register_any_args`.
    pub struct DomainEventCallbackRegisterAnyArgs {
        pub event_id: i32,
        pub dom: Option<NonnullDomain>,
    }
}

xdr_struct! {
    /// `remote_connect_domain_event_callback_register_any_ret`.
    pub struct DomainEventCallbackRegisterAnyRet {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_connect_domain_event_callback_deregister_any_args`.
    pub struct DomainEventCallbackDeregisterAnyArgs {
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_domain_event_callback_lifecycle_msg` (procedure 318).
    pub struct DomainEventCallbackLifecycleMsg {
        pub callback_id: i32,
        pub dom: NonnullDomain,
        pub event: i32,
        pub detail: i32,
    }
}

xdr_struct! {
    /// `remote_domain_event_callback_reboot_msg` (procedure 319).
    pub struct DomainEventCallbackRebootMsg {
        pub callback_id: i32,
        pub dom: NonnullDomain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// Replies of a real libvirt 9.0 virtqemud (`virsh-dominfo-running`).
    #[test]
    fn dominfo_replies_of_libvirt_decode_and_reencode() {
        let info = hex(
            "00 00 00 01 00 00 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00 01 00 00 00 00 1d 34 ce 80",
        );
        let v = DomainGetInfoRet::from_xdr(&info).unwrap();
        assert_eq!(
            (v.state, v.max_mem, v.memory, v.nr_virt_cpu),
            (1, 65536, 65536, 1)
        );
        assert_eq!(v.cpu_time, 0x1d34_ce80);
        assert_eq!(v.to_xdr(), info);

        let model = hex(
            "00 00 00 05 00 00 00 6e 00 00 00 6f 00 00 00 6e 00 00 00 65 00 00 00 00 00 00 00 02 00 00 00 30 00 00 00 00",
        );
        let m = NodeGetSecurityModelRet::from_xdr(&model).unwrap();
        assert_eq!(m.model, Chars::c_string("none"));
        assert_eq!(m.doi, Chars::c_string("0"));
        assert_eq!(m.to_xdr(), model);

        let label = hex("00 00 00 01 00 00 00 00 00 00 00 00");
        let l = DomainGetSecurityLabelRet::from_xdr(&label).unwrap();
        assert_eq!((l.label, l.enforcing), (Chars::c_string(""), 0));
    }

    #[test]
    fn fixed_chars_are_four_bytes_each() {
        let v = NodeGetInfoRet {
            model: FixedChars::c_string("x86_64"),
            memory: 1,
            cpus: 2,
            mhz: 3,
            nodes: 1,
            sockets: 1,
            cores: 2,
            threads: 1,
        };
        let b = v.to_xdr();
        assert_eq!(b.len(), 32 * 4 + 8 + 6 * 4);
        assert_eq!(&b[..8], &[0, 0, 0, b'x', 0, 0, 0, b'8']);
        assert_eq!(NodeGetInfoRet::from_xdr(&b).unwrap(), v);
    }

    #[test]
    fn oversized_char_arrays_are_refused() {
        let mut e = Encoder::new();
        e.u32(SECURITY_MODEL_MAX + 1);
        assert!(Chars::<SECURITY_MODEL_MAX>::from_xdr(&e.into_vec()).is_err());
    }
}
