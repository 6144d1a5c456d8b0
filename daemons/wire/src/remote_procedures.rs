//! The REMOTE program's procedure table: every procedure of libvirt 9.0's
//! `remote_protocol.x` (numbers 1–443), one row each, sorted by number.
//!
//! The columns are facts read off the annotations that precede each
//! procedure in libvirt's protocol file:
//!
//! - **priority** is [`High`] exactly when the procedure is marked
//!   `@priority: high` (184 of them in 9.0).
//! - **readonly_ok** ([`RO`]) when every unconditional `@acl:` permission only
//!   reads (`getattr`, `read`, `search_*`) or the procedure has `@acl: none`.
//!   Permissions that apply only with a flag (`domain:read_secure:VIR_…`)
//!   don't count here; the handler checks those flags itself. Two overrides:
//!   `CONNECT_SET_IDENTITY` (libvirt refuses it on read-only connections) and
//!   `DOMAIN_SET_SCHEDULER_PARAMETERS` (a setter whose annotation says only
//!   `domain:read`; libvirt's public API refuses it read-only) are [`RW`].
//! - **kind** is [`ProcKind::Event`] for the messages a server sends
//!   (`*_EVENT_*` other than the `CONNECT_*_EVENT_*REGISTER*` calls, plus
//!   `CONNECT_EVENT_CONNECTION_CLOSED`); events are read-only-safe and normal
//!   priority.
//! - **driver** is the daemon that owns the procedure in the modular split:
//!   connection-level calls any daemon answers, then network, storage,
//!   secret, node-device, interface and nwfilter calls by name; everything
//!   else (domains, host/node queries, CPU and capability calls) belongs to
//!   the hypervisor driver.

use crate::program::Driver::{
    self, Connection, Hypervisor, Interface, Network, NodeDevice, NwFilter, Secret, Storage,
};
use crate::program::Priority::{self, High, Normal};
use crate::program::{ProcKind, Procedure};

/// The read-only socket may call it.
const RO: bool = true;
/// Only the read-write socket may call it.
const RW: bool = false;

const fn call(
    number: i32,
    name: &'static str,
    readonly_ok: bool,
    priority: Priority,
    driver: Driver,
) -> Procedure {
    Procedure {
        number,
        name,
        readonly_ok,
        priority,
        driver,
        kind: ProcKind::Call,
    }
}

const fn event(number: i32, name: &'static str, driver: Driver) -> Procedure {
    Procedure {
        number,
        name,
        readonly_ok: true,
        priority: Normal,
        driver,
        kind: ProcKind::Event,
    }
}

/// `remote_procedure` of libvirt 9.0, procedures 1–443.
#[rustfmt::skip] // one row per line: rustfmt would spread long calls over seven
pub static REMOTE_PROCEDURES: &[Procedure] = &[
    call(1, "CONNECT_OPEN", RO, High, Connection),
    call(2, "CONNECT_CLOSE", RO, High, Connection),
    call(3, "CONNECT_GET_TYPE", RO, High, Connection),
    call(4, "CONNECT_GET_VERSION", RO, High, Hypervisor),
    call(5, "CONNECT_GET_MAX_VCPUS", RO, High, Hypervisor),
    call(6, "NODE_GET_INFO", RO, High, Hypervisor),
    call(7, "CONNECT_GET_CAPABILITIES", RO, Normal, Hypervisor),
    call(8, "DOMAIN_ATTACH_DEVICE", RW, Normal, Hypervisor),
    call(9, "DOMAIN_CREATE", RW, Normal, Hypervisor),
    call(10, "DOMAIN_CREATE_XML", RW, Normal, Hypervisor),
    call(11, "DOMAIN_DEFINE_XML", RW, High, Hypervisor),
    call(12, "DOMAIN_DESTROY", RW, High, Hypervisor),
    call(13, "DOMAIN_DETACH_DEVICE", RW, Normal, Hypervisor),
    call(14, "DOMAIN_GET_XML_DESC", RO, Normal, Hypervisor),
    call(15, "DOMAIN_GET_AUTOSTART", RO, High, Hypervisor),
    call(16, "DOMAIN_GET_INFO", RO, Normal, Hypervisor),
    call(17, "DOMAIN_GET_MAX_MEMORY", RO, High, Hypervisor),
    call(18, "DOMAIN_GET_MAX_VCPUS", RO, High, Hypervisor),
    call(19, "DOMAIN_GET_OS_TYPE", RO, High, Hypervisor),
    call(20, "DOMAIN_GET_VCPUS", RO, High, Hypervisor),
    call(21, "CONNECT_LIST_DEFINED_DOMAINS", RO, High, Hypervisor),
    call(22, "DOMAIN_LOOKUP_BY_ID", RO, High, Hypervisor),
    call(23, "DOMAIN_LOOKUP_BY_NAME", RO, High, Hypervisor),
    call(24, "DOMAIN_LOOKUP_BY_UUID", RO, High, Hypervisor),
    call(25, "CONNECT_NUM_OF_DEFINED_DOMAINS", RO, High, Hypervisor),
    call(26, "DOMAIN_PIN_VCPU", RW, Normal, Hypervisor),
    call(27, "DOMAIN_REBOOT", RW, Normal, Hypervisor),
    call(28, "DOMAIN_RESUME", RW, Normal, Hypervisor),
    call(29, "DOMAIN_SET_AUTOSTART", RW, High, Hypervisor),
    call(30, "DOMAIN_SET_MAX_MEMORY", RW, High, Hypervisor),
    call(31, "DOMAIN_SET_MEMORY", RW, Normal, Hypervisor),
    call(32, "DOMAIN_SET_VCPUS", RW, Normal, Hypervisor),
    call(33, "DOMAIN_SHUTDOWN", RW, Normal, Hypervisor),
    call(34, "DOMAIN_SUSPEND", RW, Normal, Hypervisor),
    call(35, "DOMAIN_UNDEFINE", RW, High, Hypervisor),
    call(36, "CONNECT_LIST_DEFINED_NETWORKS", RO, High, Network),
    call(37, "CONNECT_LIST_DOMAINS", RO, High, Hypervisor),
    call(38, "CONNECT_LIST_NETWORKS", RO, High, Network),
    call(39, "NETWORK_CREATE", RW, Normal, Network),
    call(40, "NETWORK_CREATE_XML", RW, Normal, Network),
    call(41, "NETWORK_DEFINE_XML", RW, High, Network),
    call(42, "NETWORK_DESTROY", RW, High, Network),
    call(43, "NETWORK_GET_XML_DESC", RO, High, Network),
    call(44, "NETWORK_GET_AUTOSTART", RO, High, Network),
    call(45, "NETWORK_GET_BRIDGE_NAME", RO, High, Network),
    call(46, "NETWORK_LOOKUP_BY_NAME", RO, High, Network),
    call(47, "NETWORK_LOOKUP_BY_UUID", RO, High, Network),
    call(48, "NETWORK_SET_AUTOSTART", RW, High, Network),
    call(49, "NETWORK_UNDEFINE", RW, High, Network),
    call(50, "CONNECT_NUM_OF_DEFINED_NETWORKS", RO, High, Network),
    call(51, "CONNECT_NUM_OF_DOMAINS", RO, High, Hypervisor),
    call(52, "CONNECT_NUM_OF_NETWORKS", RO, High, Network),
    call(53, "DOMAIN_CORE_DUMP", RW, Normal, Hypervisor),
    call(54, "DOMAIN_RESTORE", RW, Normal, Hypervisor),
    call(55, "DOMAIN_SAVE", RW, Normal, Hypervisor),
    call(56, "DOMAIN_GET_SCHEDULER_TYPE", RO, Normal, Hypervisor),
    call(57, "DOMAIN_GET_SCHEDULER_PARAMETERS", RO, Normal, Hypervisor),
    call(58, "DOMAIN_SET_SCHEDULER_PARAMETERS", RW, Normal, Hypervisor),
    call(59, "CONNECT_GET_HOSTNAME", RO, High, Connection),
    call(60, "CONNECT_SUPPORTS_FEATURE", RO, High, Connection),
    call(61, "DOMAIN_MIGRATE_PREPARE", RW, Normal, Hypervisor),
    call(62, "DOMAIN_MIGRATE_PERFORM", RW, Normal, Hypervisor),
    call(63, "DOMAIN_MIGRATE_FINISH", RW, Normal, Hypervisor),
    call(64, "DOMAIN_BLOCK_STATS", RO, Normal, Hypervisor),
    call(65, "DOMAIN_INTERFACE_STATS", RO, High, Hypervisor),
    call(66, "AUTH_LIST", RO, High, Connection),
    call(67, "AUTH_SASL_INIT", RO, High, Connection),
    call(68, "AUTH_SASL_START", RO, High, Connection),
    call(69, "AUTH_SASL_STEP", RO, High, Connection),
    call(70, "AUTH_POLKIT", RO, High, Connection),
    call(71, "CONNECT_NUM_OF_STORAGE_POOLS", RO, High, Storage),
    call(72, "CONNECT_LIST_STORAGE_POOLS", RO, High, Storage),
    call(73, "CONNECT_NUM_OF_DEFINED_STORAGE_POOLS", RO, High, Storage),
    call(74, "CONNECT_LIST_DEFINED_STORAGE_POOLS", RO, High, Storage),
    call(75, "CONNECT_FIND_STORAGE_POOL_SOURCES", RW, Normal, Storage),
    call(76, "STORAGE_POOL_CREATE_XML", RW, Normal, Storage),
    call(77, "STORAGE_POOL_DEFINE_XML", RW, High, Storage),
    call(78, "STORAGE_POOL_CREATE", RW, Normal, Storage),
    call(79, "STORAGE_POOL_BUILD", RW, Normal, Storage),
    call(80, "STORAGE_POOL_DESTROY", RW, High, Storage),
    call(81, "STORAGE_POOL_DELETE", RW, Normal, Storage),
    call(82, "STORAGE_POOL_UNDEFINE", RW, High, Storage),
    call(83, "STORAGE_POOL_REFRESH", RW, Normal, Storage),
    call(84, "STORAGE_POOL_LOOKUP_BY_NAME", RO, High, Storage),
    call(85, "STORAGE_POOL_LOOKUP_BY_UUID", RO, High, Storage),
    call(86, "STORAGE_POOL_LOOKUP_BY_VOLUME", RO, High, Storage),
    call(87, "STORAGE_POOL_GET_INFO", RO, High, Storage),
    call(88, "STORAGE_POOL_GET_XML_DESC", RO, High, Storage),
    call(89, "STORAGE_POOL_GET_AUTOSTART", RO, High, Storage),
    call(90, "STORAGE_POOL_SET_AUTOSTART", RW, High, Storage),
    call(91, "STORAGE_POOL_NUM_OF_VOLUMES", RO, High, Storage),
    call(92, "STORAGE_POOL_LIST_VOLUMES", RO, High, Storage),
    call(93, "STORAGE_VOL_CREATE_XML", RW, Normal, Storage),
    call(94, "STORAGE_VOL_DELETE", RW, Normal, Storage),
    call(95, "STORAGE_VOL_LOOKUP_BY_NAME", RO, High, Storage),
    call(96, "STORAGE_VOL_LOOKUP_BY_KEY", RO, High, Storage),
    call(97, "STORAGE_VOL_LOOKUP_BY_PATH", RO, High, Storage),
    call(98, "STORAGE_VOL_GET_INFO", RO, High, Storage),
    call(99, "STORAGE_VOL_GET_XML_DESC", RO, High, Storage),
    call(100, "STORAGE_VOL_GET_PATH", RO, High, Storage),
    call(101, "NODE_GET_CELLS_FREE_MEMORY", RO, High, Hypervisor),
    call(102, "NODE_GET_FREE_MEMORY", RO, High, Hypervisor),
    call(103, "DOMAIN_BLOCK_PEEK", RW, Normal, Hypervisor),
    call(104, "DOMAIN_MEMORY_PEEK", RW, Normal, Hypervisor),
    call(105, "CONNECT_DOMAIN_EVENT_REGISTER", RO, High, Hypervisor),
    call(106, "CONNECT_DOMAIN_EVENT_DEREGISTER", RO, High, Hypervisor),
    event(107, "DOMAIN_EVENT_LIFECYCLE", Hypervisor),
    call(108, "DOMAIN_MIGRATE_PREPARE2", RW, Normal, Hypervisor),
    call(109, "DOMAIN_MIGRATE_FINISH2", RW, Normal, Hypervisor),
    call(110, "CONNECT_GET_URI", RO, High, Connection),
    call(111, "NODE_NUM_OF_DEVICES", RO, High, NodeDevice),
    call(112, "NODE_LIST_DEVICES", RO, High, NodeDevice),
    call(113, "NODE_DEVICE_LOOKUP_BY_NAME", RO, High, NodeDevice),
    call(114, "NODE_DEVICE_GET_XML_DESC", RO, Normal, NodeDevice),
    call(115, "NODE_DEVICE_GET_PARENT", RO, High, NodeDevice),
    call(116, "NODE_DEVICE_NUM_OF_CAPS", RO, High, NodeDevice),
    call(117, "NODE_DEVICE_LIST_CAPS", RO, High, NodeDevice),
    call(118, "NODE_DEVICE_DETTACH", RW, Normal, NodeDevice),
    call(119, "NODE_DEVICE_RE_ATTACH", RW, Normal, NodeDevice),
    call(120, "NODE_DEVICE_RESET", RW, Normal, NodeDevice),
    call(121, "DOMAIN_GET_SECURITY_LABEL", RO, High, Hypervisor),
    call(122, "NODE_GET_SECURITY_MODEL", RO, High, Hypervisor),
    call(123, "NODE_DEVICE_CREATE_XML", RW, Normal, NodeDevice),
    call(124, "NODE_DEVICE_DESTROY", RW, High, NodeDevice),
    call(125, "STORAGE_VOL_CREATE_XML_FROM", RW, Normal, Storage),
    call(126, "CONNECT_NUM_OF_INTERFACES", RO, High, Interface),
    call(127, "CONNECT_LIST_INTERFACES", RO, High, Interface),
    call(128, "INTERFACE_LOOKUP_BY_NAME", RO, High, Interface),
    call(129, "INTERFACE_LOOKUP_BY_MAC_STRING", RO, High, Interface),
    call(130, "INTERFACE_GET_XML_DESC", RO, Normal, Interface),
    call(131, "INTERFACE_DEFINE_XML", RW, High, Interface),
    call(132, "INTERFACE_UNDEFINE", RW, High, Interface),
    call(133, "INTERFACE_CREATE", RW, Normal, Interface),
    call(134, "INTERFACE_DESTROY", RW, High, Interface),
    call(135, "CONNECT_DOMAIN_XML_FROM_NATIVE", RW, Normal, Hypervisor),
    call(136, "CONNECT_DOMAIN_XML_TO_NATIVE", RW, Normal, Hypervisor),
    call(137, "CONNECT_NUM_OF_DEFINED_INTERFACES", RO, High, Interface),
    call(138, "CONNECT_LIST_DEFINED_INTERFACES", RO, High, Interface),
    call(139, "CONNECT_NUM_OF_SECRETS", RO, High, Secret),
    call(140, "CONNECT_LIST_SECRETS", RO, High, Secret),
    call(141, "SECRET_LOOKUP_BY_UUID", RO, High, Secret),
    call(142, "SECRET_DEFINE_XML", RW, High, Secret),
    call(143, "SECRET_GET_XML_DESC", RO, High, Secret),
    call(144, "SECRET_SET_VALUE", RW, High, Secret),
    call(145, "SECRET_GET_VALUE", RW, High, Secret),
    call(146, "SECRET_UNDEFINE", RW, High, Secret),
    call(147, "SECRET_LOOKUP_BY_USAGE", RO, High, Secret),
    call(148, "DOMAIN_MIGRATE_PREPARE_TUNNEL", RW, Normal, Hypervisor),
    call(149, "CONNECT_IS_SECURE", RO, High, Connection),
    call(150, "DOMAIN_IS_ACTIVE", RO, High, Hypervisor),
    call(151, "DOMAIN_IS_PERSISTENT", RO, High, Hypervisor),
    call(152, "NETWORK_IS_ACTIVE", RO, High, Network),
    call(153, "NETWORK_IS_PERSISTENT", RO, High, Network),
    call(154, "STORAGE_POOL_IS_ACTIVE", RO, High, Storage),
    call(155, "STORAGE_POOL_IS_PERSISTENT", RO, High, Storage),
    call(156, "INTERFACE_IS_ACTIVE", RO, High, Interface),
    call(157, "CONNECT_GET_LIB_VERSION", RO, High, Connection),
    call(158, "CONNECT_COMPARE_CPU", RO, High, Hypervisor),
    call(159, "DOMAIN_MEMORY_STATS", RO, Normal, Hypervisor),
    call(160, "DOMAIN_ATTACH_DEVICE_FLAGS", RW, Normal, Hypervisor),
    call(161, "DOMAIN_DETACH_DEVICE_FLAGS", RW, Normal, Hypervisor),
    call(162, "CONNECT_BASELINE_CPU", RO, Normal, Hypervisor),
    call(163, "DOMAIN_GET_JOB_INFO", RO, Normal, Hypervisor),
    call(164, "DOMAIN_ABORT_JOB", RW, Normal, Hypervisor),
    call(165, "STORAGE_VOL_WIPE", RW, Normal, Storage),
    call(166, "DOMAIN_MIGRATE_SET_MAX_DOWNTIME", RW, Normal, Hypervisor),
    call(167, "CONNECT_DOMAIN_EVENT_REGISTER_ANY", RO, High, Hypervisor),
    call(168, "CONNECT_DOMAIN_EVENT_DEREGISTER_ANY", RO, High, Hypervisor),
    event(169, "DOMAIN_EVENT_REBOOT", Hypervisor),
    event(170, "DOMAIN_EVENT_RTC_CHANGE", Hypervisor),
    event(171, "DOMAIN_EVENT_WATCHDOG", Hypervisor),
    event(172, "DOMAIN_EVENT_IO_ERROR", Hypervisor),
    event(173, "DOMAIN_EVENT_GRAPHICS", Hypervisor),
    call(174, "DOMAIN_UPDATE_DEVICE_FLAGS", RW, Normal, Hypervisor),
    call(175, "NWFILTER_LOOKUP_BY_NAME", RO, High, NwFilter),
    call(176, "NWFILTER_LOOKUP_BY_UUID", RO, High, NwFilter),
    call(177, "NWFILTER_GET_XML_DESC", RO, High, NwFilter),
    call(178, "CONNECT_NUM_OF_NWFILTERS", RO, High, NwFilter),
    call(179, "CONNECT_LIST_NWFILTERS", RO, High, NwFilter),
    call(180, "NWFILTER_DEFINE_XML", RW, High, NwFilter),
    call(181, "NWFILTER_UNDEFINE", RW, High, NwFilter),
    call(182, "DOMAIN_MANAGED_SAVE", RW, Normal, Hypervisor),
    call(183, "DOMAIN_HAS_MANAGED_SAVE_IMAGE", RO, Normal, Hypervisor),
    call(184, "DOMAIN_MANAGED_SAVE_REMOVE", RW, Normal, Hypervisor),
    call(185, "DOMAIN_SNAPSHOT_CREATE_XML", RW, Normal, Hypervisor),
    call(186, "DOMAIN_SNAPSHOT_GET_XML_DESC", RO, High, Hypervisor),
    call(187, "DOMAIN_SNAPSHOT_NUM", RO, High, Hypervisor),
    call(188, "DOMAIN_SNAPSHOT_LIST_NAMES", RO, High, Hypervisor),
    call(189, "DOMAIN_SNAPSHOT_LOOKUP_BY_NAME", RO, High, Hypervisor),
    call(190, "DOMAIN_HAS_CURRENT_SNAPSHOT", RO, Normal, Hypervisor),
    call(191, "DOMAIN_SNAPSHOT_CURRENT", RO, Normal, Hypervisor),
    call(192, "DOMAIN_REVERT_TO_SNAPSHOT", RW, Normal, Hypervisor),
    call(193, "DOMAIN_SNAPSHOT_DELETE", RW, Normal, Hypervisor),
    call(194, "DOMAIN_GET_BLOCK_INFO", RO, Normal, Hypervisor),
    event(195, "DOMAIN_EVENT_IO_ERROR_REASON", Hypervisor),
    call(196, "DOMAIN_CREATE_WITH_FLAGS", RW, Normal, Hypervisor),
    call(197, "DOMAIN_SET_MEMORY_PARAMETERS", RW, Normal, Hypervisor),
    call(198, "DOMAIN_GET_MEMORY_PARAMETERS", RO, Normal, Hypervisor),
    call(199, "DOMAIN_SET_VCPUS_FLAGS", RW, Normal, Hypervisor),
    call(200, "DOMAIN_GET_VCPUS_FLAGS", RO, Normal, Hypervisor),
    call(201, "DOMAIN_OPEN_CONSOLE", RW, Normal, Hypervisor),
    call(202, "DOMAIN_IS_UPDATED", RO, High, Hypervisor),
    call(203, "CONNECT_GET_SYSINFO", RO, High, Hypervisor),
    call(204, "DOMAIN_SET_MEMORY_FLAGS", RW, Normal, Hypervisor),
    call(205, "DOMAIN_SET_BLKIO_PARAMETERS", RW, Normal, Hypervisor),
    call(206, "DOMAIN_GET_BLKIO_PARAMETERS", RO, Normal, Hypervisor),
    call(207, "DOMAIN_MIGRATE_SET_MAX_SPEED", RW, Normal, Hypervisor),
    call(208, "STORAGE_VOL_UPLOAD", RW, Normal, Storage),
    call(209, "STORAGE_VOL_DOWNLOAD", RW, Normal, Storage),
    call(210, "DOMAIN_INJECT_NMI", RW, Normal, Hypervisor),
    call(211, "DOMAIN_SCREENSHOT", RW, Normal, Hypervisor),
    call(212, "DOMAIN_GET_STATE", RO, High, Hypervisor),
    call(213, "DOMAIN_MIGRATE_BEGIN3", RW, Normal, Hypervisor),
    call(214, "DOMAIN_MIGRATE_PREPARE3", RW, Normal, Hypervisor),
    call(215, "DOMAIN_MIGRATE_PREPARE_TUNNEL3", RW, Normal, Hypervisor),
    call(216, "DOMAIN_MIGRATE_PERFORM3", RW, Normal, Hypervisor),
    call(217, "DOMAIN_MIGRATE_FINISH3", RW, Normal, Hypervisor),
    call(218, "DOMAIN_MIGRATE_CONFIRM3", RW, Normal, Hypervisor),
    call(219, "DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS", RW, Normal, Hypervisor),
    call(220, "INTERFACE_CHANGE_BEGIN", RW, Normal, Interface),
    call(221, "INTERFACE_CHANGE_COMMIT", RW, Normal, Interface),
    call(222, "INTERFACE_CHANGE_ROLLBACK", RW, Normal, Interface),
    call(223, "DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS", RO, Normal, Hypervisor),
    event(224, "DOMAIN_EVENT_CONTROL_ERROR", Hypervisor),
    call(225, "DOMAIN_PIN_VCPU_FLAGS", RW, Normal, Hypervisor),
    call(226, "DOMAIN_SEND_KEY", RW, Normal, Hypervisor),
    call(227, "NODE_GET_CPU_STATS", RO, High, Hypervisor),
    call(228, "NODE_GET_MEMORY_STATS", RO, High, Hypervisor),
    call(229, "DOMAIN_GET_CONTROL_INFO", RO, High, Hypervisor),
    call(230, "DOMAIN_GET_VCPU_PIN_INFO", RO, Normal, Hypervisor),
    call(231, "DOMAIN_UNDEFINE_FLAGS", RW, High, Hypervisor),
    call(232, "DOMAIN_SAVE_FLAGS", RW, Normal, Hypervisor),
    call(233, "DOMAIN_RESTORE_FLAGS", RW, Normal, Hypervisor),
    call(234, "DOMAIN_DESTROY_FLAGS", RW, High, Hypervisor),
    call(235, "DOMAIN_SAVE_IMAGE_GET_XML_DESC", RW, High, Hypervisor),
    call(236, "DOMAIN_SAVE_IMAGE_DEFINE_XML", RW, High, Hypervisor),
    call(237, "DOMAIN_BLOCK_JOB_ABORT", RW, Normal, Hypervisor),
    call(238, "DOMAIN_GET_BLOCK_JOB_INFO", RO, Normal, Hypervisor),
    call(239, "DOMAIN_BLOCK_JOB_SET_SPEED", RW, Normal, Hypervisor),
    call(240, "DOMAIN_BLOCK_PULL", RW, Normal, Hypervisor),
    event(241, "DOMAIN_EVENT_BLOCK_JOB", Hypervisor),
    call(242, "DOMAIN_MIGRATE_GET_MAX_SPEED", RW, Normal, Hypervisor),
    call(243, "DOMAIN_BLOCK_STATS_FLAGS", RO, Normal, Hypervisor),
    call(244, "DOMAIN_SNAPSHOT_GET_PARENT", RO, High, Hypervisor),
    call(245, "DOMAIN_RESET", RW, Normal, Hypervisor),
    call(246, "DOMAIN_SNAPSHOT_NUM_CHILDREN", RO, High, Hypervisor),
    call(247, "DOMAIN_SNAPSHOT_LIST_CHILDREN_NAMES", RO, High, Hypervisor),
    event(248, "DOMAIN_EVENT_DISK_CHANGE", Hypervisor),
    call(249, "DOMAIN_OPEN_GRAPHICS", RW, Normal, Hypervisor),
    call(250, "NODE_SUSPEND_FOR_DURATION", RW, Normal, Hypervisor),
    call(251, "DOMAIN_BLOCK_RESIZE", RW, Normal, Hypervisor),
    call(252, "DOMAIN_SET_BLOCK_IO_TUNE", RW, Normal, Hypervisor),
    call(253, "DOMAIN_GET_BLOCK_IO_TUNE", RO, Normal, Hypervisor),
    call(254, "DOMAIN_SET_NUMA_PARAMETERS", RW, Normal, Hypervisor),
    call(255, "DOMAIN_GET_NUMA_PARAMETERS", RO, Normal, Hypervisor),
    call(256, "DOMAIN_SET_INTERFACE_PARAMETERS", RW, Normal, Hypervisor),
    call(257, "DOMAIN_GET_INTERFACE_PARAMETERS", RO, Normal, Hypervisor),
    call(258, "DOMAIN_SHUTDOWN_FLAGS", RW, Normal, Hypervisor),
    call(259, "STORAGE_VOL_WIPE_PATTERN", RW, Normal, Storage),
    call(260, "STORAGE_VOL_RESIZE", RW, Normal, Storage),
    call(261, "DOMAIN_PM_SUSPEND_FOR_DURATION", RW, Normal, Hypervisor),
    call(262, "DOMAIN_GET_CPU_STATS", RO, Normal, Hypervisor),
    call(263, "DOMAIN_GET_DISK_ERRORS", RO, Normal, Hypervisor),
    call(264, "DOMAIN_SET_METADATA", RW, Normal, Hypervisor),
    call(265, "DOMAIN_GET_METADATA", RO, Normal, Hypervisor),
    call(266, "DOMAIN_BLOCK_REBASE", RW, Normal, Hypervisor),
    call(267, "DOMAIN_PM_WAKEUP", RW, Normal, Hypervisor),
    event(268, "DOMAIN_EVENT_TRAY_CHANGE", Hypervisor),
    event(269, "DOMAIN_EVENT_PMWAKEUP", Hypervisor),
    event(270, "DOMAIN_EVENT_PMSUSPEND", Hypervisor),
    call(271, "DOMAIN_SNAPSHOT_IS_CURRENT", RO, Normal, Hypervisor),
    call(272, "DOMAIN_SNAPSHOT_HAS_METADATA", RO, Normal, Hypervisor),
    call(273, "CONNECT_LIST_ALL_DOMAINS", RO, High, Hypervisor),
    call(274, "DOMAIN_LIST_ALL_SNAPSHOTS", RO, High, Hypervisor),
    call(275, "DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN", RO, High, Hypervisor),
    event(276, "DOMAIN_EVENT_BALLOON_CHANGE", Hypervisor),
    call(277, "DOMAIN_GET_HOSTNAME", RW, Normal, Hypervisor),
    call(278, "DOMAIN_GET_SECURITY_LABEL_LIST", RO, High, Hypervisor),
    call(279, "DOMAIN_PIN_EMULATOR", RW, Normal, Hypervisor),
    call(280, "DOMAIN_GET_EMULATOR_PIN_INFO", RO, Normal, Hypervisor),
    call(281, "CONNECT_LIST_ALL_STORAGE_POOLS", RO, High, Storage),
    call(282, "STORAGE_POOL_LIST_ALL_VOLUMES", RO, High, Storage),
    call(283, "CONNECT_LIST_ALL_NETWORKS", RO, High, Network),
    call(284, "CONNECT_LIST_ALL_INTERFACES", RO, High, Interface),
    call(285, "CONNECT_LIST_ALL_NODE_DEVICES", RO, High, NodeDevice),
    call(286, "CONNECT_LIST_ALL_NWFILTERS", RO, High, NwFilter),
    call(287, "CONNECT_LIST_ALL_SECRETS", RO, High, Secret),
    call(288, "NODE_SET_MEMORY_PARAMETERS", RW, Normal, Hypervisor),
    call(289, "NODE_GET_MEMORY_PARAMETERS", RO, Normal, Hypervisor),
    call(290, "DOMAIN_BLOCK_COMMIT", RW, Normal, Hypervisor),
    call(291, "NETWORK_UPDATE", RW, High, Network),
    event(292, "DOMAIN_EVENT_PMSUSPEND_DISK", Hypervisor),
    call(293, "NODE_GET_CPU_MAP", RO, Normal, Hypervisor),
    call(294, "DOMAIN_FSTRIM", RW, Normal, Hypervisor),
    call(295, "DOMAIN_SEND_PROCESS_SIGNAL", RW, Normal, Hypervisor),
    call(296, "DOMAIN_OPEN_CHANNEL", RW, Normal, Hypervisor),
    call(297, "NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN", RO, High, NodeDevice),
    call(298, "DOMAIN_GET_JOB_STATS", RO, Normal, Hypervisor),
    call(299, "DOMAIN_MIGRATE_GET_COMPRESSION_CACHE", RW, Normal, Hypervisor),
    call(300, "DOMAIN_MIGRATE_SET_COMPRESSION_CACHE", RW, Normal, Hypervisor),
    call(301, "NODE_DEVICE_DETACH_FLAGS", RW, Normal, NodeDevice),
    call(302, "DOMAIN_MIGRATE_BEGIN3_PARAMS", RW, Normal, Hypervisor),
    call(303, "DOMAIN_MIGRATE_PREPARE3_PARAMS", RW, Normal, Hypervisor),
    call(304, "DOMAIN_MIGRATE_PREPARE_TUNNEL3_PARAMS", RW, Normal, Hypervisor),
    call(305, "DOMAIN_MIGRATE_PERFORM3_PARAMS", RW, Normal, Hypervisor),
    call(306, "DOMAIN_MIGRATE_FINISH3_PARAMS", RW, Normal, Hypervisor),
    call(307, "DOMAIN_MIGRATE_CONFIRM3_PARAMS", RW, Normal, Hypervisor),
    call(308, "DOMAIN_SET_MEMORY_STATS_PERIOD", RW, Normal, Hypervisor),
    call(309, "DOMAIN_CREATE_XML_WITH_FILES", RW, Normal, Hypervisor),
    call(310, "DOMAIN_CREATE_WITH_FILES", RW, Normal, Hypervisor),
    event(311, "DOMAIN_EVENT_DEVICE_REMOVED", Hypervisor),
    call(312, "CONNECT_GET_CPU_MODEL_NAMES", RO, Normal, Hypervisor),
    call(313, "CONNECT_NETWORK_EVENT_REGISTER_ANY", RO, High, Network),
    call(314, "CONNECT_NETWORK_EVENT_DEREGISTER_ANY", RO, High, Network),
    event(315, "NETWORK_EVENT_LIFECYCLE", Network),
    call(316, "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY", RO, High, Hypervisor),
    call(317, "CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY", RO, High, Hypervisor),
    event(318, "DOMAIN_EVENT_CALLBACK_LIFECYCLE", Hypervisor),
    event(319, "DOMAIN_EVENT_CALLBACK_REBOOT", Hypervisor),
    event(320, "DOMAIN_EVENT_CALLBACK_RTC_CHANGE", Hypervisor),
    event(321, "DOMAIN_EVENT_CALLBACK_WATCHDOG", Hypervisor),
    event(322, "DOMAIN_EVENT_CALLBACK_IO_ERROR", Hypervisor),
    event(323, "DOMAIN_EVENT_CALLBACK_GRAPHICS", Hypervisor),
    event(324, "DOMAIN_EVENT_CALLBACK_IO_ERROR_REASON", Hypervisor),
    event(325, "DOMAIN_EVENT_CALLBACK_CONTROL_ERROR", Hypervisor),
    event(326, "DOMAIN_EVENT_CALLBACK_BLOCK_JOB", Hypervisor),
    event(327, "DOMAIN_EVENT_CALLBACK_DISK_CHANGE", Hypervisor),
    event(328, "DOMAIN_EVENT_CALLBACK_TRAY_CHANGE", Hypervisor),
    event(329, "DOMAIN_EVENT_CALLBACK_PMWAKEUP", Hypervisor),
    event(330, "DOMAIN_EVENT_CALLBACK_PMSUSPEND", Hypervisor),
    event(331, "DOMAIN_EVENT_CALLBACK_BALLOON_CHANGE", Hypervisor),
    event(332, "DOMAIN_EVENT_CALLBACK_PMSUSPEND_DISK", Hypervisor),
    event(333, "DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED", Hypervisor),
    call(334, "DOMAIN_CORE_DUMP_WITH_FORMAT", RW, Normal, Hypervisor),
    call(335, "DOMAIN_FSFREEZE", RW, Normal, Hypervisor),
    call(336, "DOMAIN_FSTHAW", RW, Normal, Hypervisor),
    call(337, "DOMAIN_GET_TIME", RW, Normal, Hypervisor),
    call(338, "DOMAIN_SET_TIME", RW, Normal, Hypervisor),
    event(339, "DOMAIN_EVENT_BLOCK_JOB_2", Hypervisor),
    call(340, "NODE_GET_FREE_PAGES", RO, High, Hypervisor),
    call(341, "NETWORK_GET_DHCP_LEASES", RO, Normal, Network),
    call(342, "CONNECT_GET_DOMAIN_CAPABILITIES", RW, Normal, Hypervisor),
    call(343, "DOMAIN_OPEN_GRAPHICS_FD", RW, Normal, Hypervisor),
    call(344, "CONNECT_GET_ALL_DOMAIN_STATS", RO, Normal, Hypervisor),
    call(345, "DOMAIN_BLOCK_COPY", RW, Normal, Hypervisor),
    event(346, "DOMAIN_EVENT_CALLBACK_TUNABLE", Hypervisor),
    call(347, "NODE_ALLOC_PAGES", RW, Normal, Hypervisor),
    event(348, "DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE", Hypervisor),
    call(349, "DOMAIN_GET_FSINFO", RW, Normal, Hypervisor),
    call(350, "DOMAIN_DEFINE_XML_FLAGS", RW, High, Hypervisor),
    call(351, "DOMAIN_GET_IOTHREAD_INFO", RO, Normal, Hypervisor),
    call(352, "DOMAIN_PIN_IOTHREAD", RW, Normal, Hypervisor),
    call(353, "DOMAIN_INTERFACE_ADDRESSES", RO, Normal, Hypervisor),
    event(354, "DOMAIN_EVENT_CALLBACK_DEVICE_ADDED", Hypervisor),
    call(355, "DOMAIN_ADD_IOTHREAD", RW, Normal, Hypervisor),
    call(356, "DOMAIN_DEL_IOTHREAD", RW, Normal, Hypervisor),
    call(357, "DOMAIN_SET_USER_PASSWORD", RW, Normal, Hypervisor),
    call(358, "DOMAIN_RENAME", RW, Normal, Hypervisor),
    event(359, "DOMAIN_EVENT_CALLBACK_MIGRATION_ITERATION", Hypervisor),
    call(360, "CONNECT_REGISTER_CLOSE_CALLBACK", RO, High, Connection),
    call(361, "CONNECT_UNREGISTER_CLOSE_CALLBACK", RO, High, Connection),
    event(362, "CONNECT_EVENT_CONNECTION_CLOSED", Connection),
    event(363, "DOMAIN_EVENT_CALLBACK_JOB_COMPLETED", Hypervisor),
    call(364, "DOMAIN_MIGRATE_START_POST_COPY", RW, Normal, Hypervisor),
    call(365, "DOMAIN_GET_PERF_EVENTS", RO, Normal, Hypervisor),
    call(366, "DOMAIN_SET_PERF_EVENTS", RW, Normal, Hypervisor),
    event(367, "DOMAIN_EVENT_CALLBACK_DEVICE_REMOVAL_FAILED", Hypervisor),
    call(368, "CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY", RO, High, Storage),
    call(369, "CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY", RO, High, Storage),
    event(370, "STORAGE_POOL_EVENT_LIFECYCLE", Storage),
    call(371, "DOMAIN_GET_GUEST_VCPUS", RW, Normal, Hypervisor),
    call(372, "DOMAIN_SET_GUEST_VCPUS", RW, Normal, Hypervisor),
    event(373, "STORAGE_POOL_EVENT_REFRESH", Storage),
    call(374, "CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY", RO, High, NodeDevice),
    call(375, "CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY", RO, High, NodeDevice),
    event(376, "NODE_DEVICE_EVENT_LIFECYCLE", NodeDevice),
    event(377, "NODE_DEVICE_EVENT_UPDATE", NodeDevice),
    call(378, "STORAGE_VOL_GET_INFO_FLAGS", RO, High, Storage),
    event(379, "DOMAIN_EVENT_CALLBACK_METADATA_CHANGE", Hypervisor),
    call(380, "CONNECT_SECRET_EVENT_REGISTER_ANY", RO, High, Secret),
    call(381, "CONNECT_SECRET_EVENT_DEREGISTER_ANY", RO, High, Secret),
    event(382, "SECRET_EVENT_LIFECYCLE", Secret),
    event(383, "SECRET_EVENT_VALUE_CHANGED", Secret),
    call(384, "DOMAIN_SET_VCPU", RW, Normal, Hypervisor),
    event(385, "DOMAIN_EVENT_BLOCK_THRESHOLD", Hypervisor),
    call(386, "DOMAIN_SET_BLOCK_THRESHOLD", RW, Normal, Hypervisor),
    call(387, "DOMAIN_MIGRATE_GET_MAX_DOWNTIME", RW, Normal, Hypervisor),
    call(388, "DOMAIN_MANAGED_SAVE_GET_XML_DESC", RO, Normal, Hypervisor),
    call(389, "DOMAIN_MANAGED_SAVE_DEFINE_XML", RW, Normal, Hypervisor),
    call(390, "DOMAIN_SET_LIFECYCLE_ACTION", RW, Normal, Hypervisor),
    call(391, "STORAGE_POOL_LOOKUP_BY_TARGET_PATH", RO, High, Storage),
    call(392, "DOMAIN_DETACH_DEVICE_ALIAS", RW, Normal, Hypervisor),
    call(393, "CONNECT_COMPARE_HYPERVISOR_CPU", RW, Normal, Hypervisor),
    call(394, "CONNECT_BASELINE_HYPERVISOR_CPU", RW, Normal, Hypervisor),
    call(395, "NODE_GET_SEV_INFO", RO, Normal, Hypervisor),
    call(396, "DOMAIN_GET_LAUNCH_SECURITY_INFO", RO, Normal, Hypervisor),
    call(397, "NWFILTER_BINDING_LOOKUP_BY_PORT_DEV", RO, High, NwFilter),
    call(398, "NWFILTER_BINDING_GET_XML_DESC", RO, High, NwFilter),
    call(399, "NWFILTER_BINDING_CREATE_XML", RW, High, NwFilter),
    call(400, "NWFILTER_BINDING_DELETE", RW, High, NwFilter),
    call(401, "CONNECT_LIST_ALL_NWFILTER_BINDINGS", RO, High, NwFilter),
    call(402, "DOMAIN_SET_IOTHREAD_PARAMS", RW, Normal, Hypervisor),
    call(403, "CONNECT_GET_STORAGE_POOL_CAPABILITIES", RO, Normal, Storage),
    call(404, "NETWORK_LIST_ALL_PORTS", RO, High, Network),
    call(405, "NETWORK_PORT_LOOKUP_BY_UUID", RO, High, Network),
    call(406, "NETWORK_PORT_CREATE_XML", RW, Normal, Network),
    call(407, "NETWORK_PORT_GET_PARAMETERS", RO, Normal, Network),
    call(408, "NETWORK_PORT_SET_PARAMETERS", RW, Normal, Network),
    call(409, "NETWORK_PORT_GET_XML_DESC", RO, Normal, Network),
    call(410, "NETWORK_PORT_DELETE", RW, Normal, Network),
    call(411, "DOMAIN_CHECKPOINT_CREATE_XML", RW, Normal, Hypervisor),
    call(412, "DOMAIN_CHECKPOINT_GET_XML_DESC", RO, Normal, Hypervisor),
    call(413, "DOMAIN_LIST_ALL_CHECKPOINTS", RO, High, Hypervisor),
    call(414, "DOMAIN_CHECKPOINT_LIST_ALL_CHILDREN", RO, High, Hypervisor),
    call(415, "DOMAIN_CHECKPOINT_LOOKUP_BY_NAME", RO, High, Hypervisor),
    call(416, "DOMAIN_CHECKPOINT_GET_PARENT", RO, High, Hypervisor),
    call(417, "DOMAIN_CHECKPOINT_DELETE", RW, Normal, Hypervisor),
    call(418, "DOMAIN_GET_GUEST_INFO", RW, Normal, Hypervisor),
    call(419, "CONNECT_SET_IDENTITY", RW, Normal, Connection),
    call(420, "DOMAIN_AGENT_SET_RESPONSE_TIMEOUT", RW, Normal, Hypervisor),
    call(421, "DOMAIN_BACKUP_BEGIN", RW, Normal, Hypervisor),
    call(422, "DOMAIN_BACKUP_GET_XML_DESC", RO, High, Hypervisor),
    event(423, "DOMAIN_EVENT_MEMORY_FAILURE", Hypervisor),
    call(424, "DOMAIN_AUTHORIZED_SSH_KEYS_GET", RW, Normal, Hypervisor),
    call(425, "DOMAIN_AUTHORIZED_SSH_KEYS_SET", RW, Normal, Hypervisor),
    call(426, "DOMAIN_GET_MESSAGES", RO, Normal, Hypervisor),
    call(427, "DOMAIN_START_DIRTY_RATE_CALC", RW, Normal, Hypervisor),
    call(428, "NODE_DEVICE_DEFINE_XML", RW, Normal, NodeDevice),
    call(429, "NODE_DEVICE_UNDEFINE", RW, High, NodeDevice),
    call(430, "NODE_DEVICE_CREATE", RW, High, NodeDevice),
    call(431, "NWFILTER_DEFINE_XML_FLAGS", RW, High, NwFilter),
    call(432, "NETWORK_DEFINE_XML_FLAGS", RW, High, Network),
    call(433, "NODE_DEVICE_GET_AUTOSTART", RO, High, NodeDevice),
    call(434, "NODE_DEVICE_SET_AUTOSTART", RW, High, NodeDevice),
    call(435, "NODE_DEVICE_IS_PERSISTENT", RO, High, NodeDevice),
    call(436, "NODE_DEVICE_IS_ACTIVE", RO, High, NodeDevice),
    call(437, "NETWORK_CREATE_XML_FLAGS", RW, High, Network),
    event(438, "DOMAIN_EVENT_MEMORY_DEVICE_SIZE_CHANGE", Hypervisor),
    call(439, "DOMAIN_SET_LAUNCH_SECURITY_STATE", RW, Normal, Hypervisor),
    call(440, "DOMAIN_SAVE_PARAMS", RW, Normal, Hypervisor),
    call(441, "DOMAIN_RESTORE_PARAMS", RW, Normal, Hypervisor),
    call(442, "DOMAIN_ABORT_JOB_FLAGS", RW, Normal, Hypervisor),
    call(443, "DOMAIN_FD_ASSOCIATE", RW, Normal, Hypervisor),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::REMOTE;

    fn row(n: i32) -> &'static Procedure {
        REMOTE
            .procedure(n)
            .unwrap_or_else(|| panic!("no REMOTE procedure {n}"))
    }

    #[test]
    fn covers_every_number_of_libvirt_9_0() {
        assert_eq!(REMOTE_PROCEDURES.len(), 443);
        for (i, p) in REMOTE_PROCEDURES.iter().enumerate() {
            assert_eq!(p.number, i as i32 + 1, "gap or duplicate before {}", p.name);
        }
    }

    #[test]
    fn known_rows() {
        let open = row(1);
        assert_eq!(
            (open.name, open.driver, open.readonly_ok),
            ("CONNECT_OPEN", Connection, true)
        );
        assert_eq!(open.priority, High);

        let destroy = row(12);
        assert_eq!(destroy.name, "DOMAIN_DESTROY");
        assert_eq!((destroy.priority, destroy.readonly_ok), (High, false));
        assert_eq!(destroy.driver, Hypervisor);

        let auth = row(66);
        assert_eq!(
            (auth.name, auth.driver, auth.readonly_ok),
            ("AUTH_LIST", Connection, true)
        );

        let nets = row(283);
        assert_eq!(nets.name, "CONNECT_LIST_ALL_NETWORKS");
        assert_eq!(
            (nets.driver, nets.readonly_ok, nets.kind),
            (Network, true, ProcKind::Call)
        );

        let lifecycle = row(318);
        assert_eq!(lifecycle.name, "DOMAIN_EVENT_CALLBACK_LIFECYCLE");
        assert_eq!((lifecycle.kind, lifecycle.readonly_ok), (ProcKind::Event, true));

        let identity = row(419);
        assert_eq!(
            (identity.name, identity.readonly_ok),
            ("CONNECT_SET_IDENTITY", false)
        );
        assert_eq!(identity.driver, Connection);

        assert_eq!(row(203).driver, Hypervisor, "CONNECT_GET_SYSINFO");
        assert_eq!(row(285).driver, NodeDevice, "CONNECT_LIST_ALL_NODE_DEVICES");
        assert_eq!(row(400).driver, NwFilter, "NWFILTER_BINDING_DELETE");
        assert_eq!(row(75).driver, Storage, "CONNECT_FIND_STORAGE_POOL_SOURCES");
        assert!(!row(75).readonly_ok, "detect_storage_pools writes");
        assert!(!row(145).readonly_ok, "SECRET_GET_VALUE needs read_secure");
        assert!(!row(58).readonly_ok, "DOMAIN_SET_SCHEDULER_PARAMETERS");
        assert!(
            row(14).readonly_ok,
            "DOMAIN_GET_XML_DESC: read_secure only with a flag"
        );
        assert_eq!((row(316).kind, row(316).readonly_ok), (ProcKind::Call, true));
    }

    #[test]
    fn column_totals() {
        let count = |f: &dyn Fn(&Procedure) -> bool| REMOTE_PROCEDURES.iter().filter(|p| f(p)).count();
        assert_eq!(count(&|p| p.priority == High), 184);
        assert_eq!(count(&|p| p.kind == ProcKind::Event), 51);
        assert_eq!(count(&|p| p.readonly_ok), 246);
        assert_eq!(count(&|p| p.driver == Connection), 17);
        assert_eq!(count(&|p| p.kind == ProcKind::Event && !p.readonly_ok), 0);
    }

    #[test]
    fn event_rows_are_server_messages() {
        for p in REMOTE_PROCEDURES {
            let registers = p.name.starts_with("CONNECT_") && p.name.contains("REGISTER");
            if p.kind == ProcKind::Event {
                assert!(p.name.contains("_EVENT_"), "{}", p.name);
                assert!(!registers, "{}", p.name);
            } else {
                let msg = p.name.contains("_EVENT_") && !registers && !p.name.contains("PERF_EVENTS");
                assert!(!msg, "{} looks like an event", p.name);
            }
        }
    }

    /// `"N": "NAME"` pairs of one program in `proc-names.json` (a flat JSON
    /// object of objects; no nesting inside a program).
    fn names_in_json(json: &str, prog: &str) -> Vec<(i32, String)> {
        let start = json.find(&format!("\"{prog}\"")).expect("program key");
        let body = &json[start..];
        let body = &body[body.find('{').expect("object") + 1..];
        let body = &body[..body.find('}').expect("end of object")];
        body.split(',')
            .filter(|kv| !kv.trim().is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once(':').expect("key: value");
                let k = k.trim().trim_matches('"').parse().expect("number");
                (k, v.trim().trim_matches('"').to_owned())
            })
            .collect()
    }

    #[test]
    fn names_and_numbers_match_proc_names_json() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/reference/libvirt-9.0/tools/proc-names.json"
        );
        let Ok(json) = std::fs::read_to_string(path) else {
            eprintln!("skipped: {path} is not present (clean checkout)");
            return;
        };
        let names = names_in_json(&json, "0x20008086");
        assert_eq!(names.len(), REMOTE_PROCEDURES.len());
        for (n, name) in names {
            assert_eq!(row(n).name, name, "procedure {n}");
        }
    }
}
