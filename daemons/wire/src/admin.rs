//! Arguments and return values of the ADMIN program (`admin_protocol.x`),
//! procedures 1–19, and the typed-parameter field names virt-admin reads.

use crate::typed_param::TypedParam;
use crate::xdr_struct;

/// `ADMIN_SERVER_LIST_MAX`.
pub const SERVER_LIST_MAX: u32 = 16_384;
/// `ADMIN_CLIENT_LIST_MAX`.
pub const CLIENT_LIST_MAX: u32 = 16_384;
/// `ADMIN_SERVER_THREADPOOL_PARAMETERS_MAX`.
pub const THREADPOOL_PARAMETERS_MAX: u32 = 32;
/// `ADMIN_CLIENT_INFO_PARAMETERS_MAX`.
pub const CLIENT_INFO_PARAMETERS_MAX: u32 = 64;
/// `ADMIN_SERVER_CLIENT_LIMITS_MAX`.
pub const CLIENT_LIMITS_MAX: u32 = 32;

/// `virClientTransport`.
pub mod transport {
    pub const UNIX: u32 = 0;
    pub const TCP: u32 = 1;
    pub const TLS: u32 = 2;
}

/// Typed-parameter field names from `libvirt-admin.h`.
pub mod field {
    pub const THREADPOOL_WORKERS_MIN: &str = "minWorkers";
    pub const THREADPOOL_WORKERS_MAX: &str = "maxWorkers";
    pub const THREADPOOL_WORKERS_PRIORITY: &str = "prioWorkers";
    pub const THREADPOOL_WORKERS_FREE: &str = "freeWorkers";
    pub const THREADPOOL_WORKERS_CURRENT: &str = "nWorkers";
    pub const THREADPOOL_JOB_QUEUE_DEPTH: &str = "jobQueueDepth";
    pub const CLIENT_INFO_READONLY: &str = "readonly";
    pub const CLIENT_INFO_SOCKET_ADDR: &str = "sock_addr";
    pub const CLIENT_INFO_SASL_USER_NAME: &str = "sasl_user_name";
    pub const CLIENT_INFO_X509_DISTINGUISHED_NAME: &str = "tls_x509_dname";
    pub const CLIENT_INFO_UNIX_USER_ID: &str = "unix_user_id";
    pub const CLIENT_INFO_UNIX_USER_NAME: &str = "unix_user_name";
    pub const CLIENT_INFO_UNIX_GROUP_ID: &str = "unix_group_id";
    pub const CLIENT_INFO_UNIX_GROUP_NAME: &str = "unix_group_name";
    pub const CLIENT_INFO_UNIX_PROCESS_ID: &str = "unix_process_id";
    pub const CLIENT_INFO_SELINUX_CONTEXT: &str = "selinux_context";
    pub const SERVER_CLIENTS_MAX: &str = "nclients_max";
    pub const SERVER_CLIENTS_CURRENT: &str = "nclients";
    pub const SERVER_CLIENTS_UNAUTH_MAX: &str = "nclients_unauth_max";
    pub const SERVER_CLIENTS_UNAUTH_CURRENT: &str = "nclients_unauth";
}

xdr_struct! {
    /// `admin_nonnull_server`.
    pub struct AdminServer {
        pub name: String,
    }
}

xdr_struct! {
    /// `admin_nonnull_client`.
    pub struct AdminClient {
        pub srv: AdminServer,
        pub id: u64,
        pub timestamp: i64,
        pub transport: u32,
    }
}

xdr_struct! {
    /// Arguments that are only `flags` (procs 1, 14, 15).
    pub struct FlagsArgs {
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ConnectGetLibVersionRet {
        pub lib_ver: u64,
    }
}

xdr_struct! {
    pub struct ConnectListServersArgs {
        pub need_results: u32,
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ConnectListServersRet {
        pub servers: Vec<AdminServer> [max SERVER_LIST_MAX],
        pub ret: u32,
    }
}

xdr_struct! {
    pub struct ConnectLookupServerArgs {
        pub name: String,
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ConnectLookupServerRet {
        pub srv: AdminServer,
    }
}

xdr_struct! {
    /// Arguments naming a server (procs 6, 12, 18).
    pub struct ServerArgs {
        pub srv: AdminServer,
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ThreadpoolParametersRet {
        pub params: Vec<TypedParam> [max THREADPOOL_PARAMETERS_MAX],
    }
}

xdr_struct! {
    pub struct ServerSetThreadpoolParametersArgs {
        pub srv: AdminServer,
        pub params: Vec<TypedParam> [max THREADPOOL_PARAMETERS_MAX],
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ServerListClientsArgs {
        pub srv: AdminServer,
        pub need_results: u32,
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ServerListClientsRet {
        pub clients: Vec<AdminClient> [max CLIENT_LIST_MAX],
        pub ret: u32,
    }
}

xdr_struct! {
    pub struct ServerLookupClientArgs {
        pub srv: AdminServer,
        pub id: u64,
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ServerLookupClientRet {
        pub clnt: AdminClient,
    }
}

xdr_struct! {
    /// Arguments naming a client (procs 10, 11).
    pub struct ClientArgs {
        pub clnt: AdminClient,
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ClientGetInfoRet {
        pub params: Vec<TypedParam> [max CLIENT_INFO_PARAMETERS_MAX],
    }
}

xdr_struct! {
    pub struct ClientLimitsRet {
        pub params: Vec<TypedParam> [max CLIENT_LIMITS_MAX],
    }
}

xdr_struct! {
    pub struct ServerSetClientLimitsArgs {
        pub srv: AdminServer,
        pub params: Vec<TypedParam> [max CLIENT_LIMITS_MAX],
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ConnectGetLoggingOutputsRet {
        pub outputs: String,
        pub noutputs: u32,
    }
}

xdr_struct! {
    pub struct ConnectGetLoggingFiltersRet {
        pub filters: Option<String>,
        pub nfilters: u32,
    }
}

xdr_struct! {
    pub struct ConnectSetLoggingOutputsArgs {
        pub outputs: Option<String>,
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ConnectSetLoggingFiltersArgs {
        pub filters: Option<String>,
        pub flags: u32,
    }
}

xdr_struct! {
    pub struct ConnectSetDaemonTimeoutArgs {
        pub timeout: u32,
        pub flags: u32,
    }
}
