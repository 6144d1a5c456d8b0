//! The ADMIN program (libvirt's `admin_protocol.x`, procedures 1–19), as
//! `virt-admin` speaks it on `<d>-admin-sock`: servers, their worker pools
//! and client limits, clients (list, info, disconnect), logging outputs and
//! filters, and the idle timeout. Every setter really changes the daemon.

use crate::client::Client;
use crate::daemon::DaemonShared;
use crate::dispatch::{self, CallContext, CallFuture, CallResult, ProgramHandler, decode_args, encode_ret};
use crate::remote::LIB_VERSION;
use crate::server::Server;
use modvirt_wire::admin::{self as a, field};
use modvirt_wire::program::{ADMIN, Program};
use modvirt_wire::typed_param::{TypedParam, TypedValue};
use modvirt_wire::{ErrorCode, ErrorDomain, Procedure, RpcError};
use std::sync::Arc;

/// The ADMIN program handler.
#[derive(Debug, Default)]
pub struct AdminProgram;

fn no_server(name: &str) -> RpcError {
    RpcError::new(
        ErrorCode::NO_SERVER,
        ErrorDomain::RPC,
        "Server not found",
        format!("No server named '{name}'"),
    )
}

fn no_client(id: u64) -> RpcError {
    RpcError::new(
        ErrorCode::NO_CLIENT,
        ErrorDomain::RPC,
        "Client not found",
        format!("No client with matching ID '{id}'"),
    )
}

fn invalid_arg(domain: ErrorDomain, detail: impl Into<String>) -> RpcError {
    RpcError::new(ErrorCode::INVALID_ARG, domain, "invalid argument", detail)
}

fn server(d: &DaemonShared, name: &str) -> Result<Arc<Server>, RpcError> {
    d.servers()
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .ok_or_else(|| no_server(name))
}

fn client(d: &DaemonShared, c: &a::AdminClient) -> Result<(Arc<Server>, Arc<Client>), RpcError> {
    let srv = server(d, &c.srv.name)?;
    let cl = srv.client(c.id).ok_or_else(|| no_client(c.id))?;
    Ok((srv, cl))
}

fn wire_client(c: &Client) -> a::AdminClient {
    a::AdminClient {
        srv: a::AdminServer {
            name: c.server.clone(),
        },
        id: c.id,
        timestamp: (c.connected_ms / 1000) as i64,
        transport: c.transport,
    }
}

fn uint(name: &str, v: usize) -> TypedParam {
    TypedParam::new(name, TypedValue::UInt(u32::try_from(v).unwrap_or(u32::MAX)))
}

fn type_name(v: &TypedValue) -> &'static str {
    match v {
        TypedValue::Int(_) => "int",
        TypedValue::UInt(_) => "uint",
        TypedValue::LLong(_) => "llong",
        TypedValue::ULLong(_) => "ullong",
        TypedValue::Double(_) => "double",
        TypedValue::Boolean(_) => "boolean",
        TypedValue::String(_) => "string",
    }
}

/// Reads `uint` parameters from a setter's list; any other field is refused.
fn uint_params(
    params: &[TypedParam],
    known: &[&str],
    domain: ErrorDomain,
) -> Result<Vec<Option<usize>>, RpcError> {
    let mut out = vec![None; known.len()];
    for p in params {
        let Some(i) = known.iter().position(|k| *k == p.field) else {
            return Err(RpcError::new(
                ErrorCode::ARGUMENT_UNSUPPORTED,
                domain,
                "argument unsupported",
                format!("parameter '{}' not supported", p.field),
            ));
        };
        let TypedValue::UInt(v) = p.value else {
            return Err(invalid_arg(
                domain,
                format!(
                    "invalid type '{}' for parameter '{}', expected 'uint'",
                    type_name(&p.value),
                    p.field
                ),
            ));
        };
        out[i] = Some(v as usize);
    }
    Ok(out)
}

fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
}

fn group_name(gid: u32) -> Option<String> {
    nix::unistd::Group::from_gid(gid.into())
        .ok()
        .flatten()
        .map(|g| g.name)
}

impl ProgramHandler for AdminProgram {
    fn program(&self) -> &'static Program {
        &ADMIN
    }

    fn allowed_before_open(&self, procedure: i32) -> bool {
        matches!(procedure, 1 | 2)
    }

    fn call(&self, ctx: CallContext, payload: Vec<u8>) -> CallFuture {
        Box::pin(async move { call(&ctx, ctx.procedure, &payload) })
    }
}

fn call(ctx: &CallContext, p: &Procedure, payload: &[u8]) -> CallResult {
    let d = &ctx.daemon;
    match p.number {
        1 => {
            let args: a::FlagsArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            ctx.client.set_open(true);
            ctx.client.start_keepalive();
            encode_ret(&())
        }
        2 => {
            ctx.client.set_open(false);
            encode_ret(&())
        }
        3 => encode_ret(&a::ConnectGetLibVersionRet { lib_ver: LIB_VERSION }),
        4 => {
            let args: a::ConnectListServersArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let servers = d.servers();
            let list = if args.need_results != 0 {
                servers
                    .iter()
                    .map(|s| a::AdminServer { name: s.name.clone() })
                    .collect()
            } else {
                Vec::new()
            };
            encode_ret(&a::ConnectListServersRet {
                servers: list,
                ret: servers.len() as u32,
            })
        }
        5 => {
            let args: a::ConnectLookupServerArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let s = server(d, &args.name)?;
            encode_ret(&a::ConnectLookupServerRet {
                srv: a::AdminServer { name: s.name.clone() },
            })
        }
        6 => {
            let args: a::ServerArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let st = server(d, &args.srv.name)?.pool.stats();
            encode_ret(&a::ThreadpoolParametersRet {
                params: vec![
                    uint(field::THREADPOOL_WORKERS_MIN, st.min_workers),
                    uint(field::THREADPOOL_WORKERS_MAX, st.max_workers),
                    uint(field::THREADPOOL_WORKERS_CURRENT, st.n_workers),
                    uint(field::THREADPOOL_WORKERS_FREE, st.free_workers),
                    uint(field::THREADPOOL_WORKERS_PRIORITY, st.prio_workers),
                    uint(field::THREADPOOL_JOB_QUEUE_DEPTH, st.job_queue_depth),
                ],
            })
        }
        7 => {
            let args: a::ServerSetThreadpoolParametersArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let s = server(d, &args.srv.name)?;
            let v = uint_params(
                &args.params,
                &[
                    field::THREADPOOL_WORKERS_MIN,
                    field::THREADPOOL_WORKERS_MAX,
                    field::THREADPOOL_WORKERS_PRIORITY,
                ],
                ErrorDomain::THREAD,
            )?;
            s.pool
                .set_limits(v[0], v[1], v[2])
                .map_err(|e| invalid_arg(ErrorDomain::THREAD, e.to_string()))?;
            tracing::info!(target: "daemon.admin", "server {}: thread pool set to {:?}", s.name, s.pool.stats());
            encode_ret(&())
        }
        8 => {
            let args: a::ServerListClientsArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let clients = server(d, &args.srv.name)?.clients();
            let list = if args.need_results != 0 {
                clients.iter().map(|c| wire_client(c)).collect()
            } else {
                Vec::new()
            };
            encode_ret(&a::ServerListClientsRet {
                clients: list,
                ret: clients.len() as u32,
            })
        }
        9 => {
            let args: a::ServerLookupClientArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let c = server(d, &args.srv.name)?
                .client(args.id)
                .ok_or_else(|| no_client(args.id))?;
            encode_ret(&a::ServerLookupClientRet {
                clnt: wire_client(&c),
            })
        }
        10 => {
            let args: a::ClientArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let (_, c) = client(d, &args.clnt)?;
            let id = &c.identity;
            let mut params = vec![TypedParam::new(
                field::CLIENT_INFO_READONLY,
                TypedValue::Boolean(c.readonly()),
            )];
            if id.pid >= 0 {
                params.push(TypedParam::new(
                    field::CLIENT_INFO_UNIX_USER_ID,
                    TypedValue::Int(id.uid as i32),
                ));
                if let Some(n) = user_name(id.uid) {
                    params.push(TypedParam::new(
                        field::CLIENT_INFO_UNIX_USER_NAME,
                        TypedValue::String(n),
                    ));
                }
                params.push(TypedParam::new(
                    field::CLIENT_INFO_UNIX_GROUP_ID,
                    TypedValue::Int(id.gid as i32),
                ));
                if let Some(n) = group_name(id.gid) {
                    params.push(TypedParam::new(
                        field::CLIENT_INFO_UNIX_GROUP_NAME,
                        TypedValue::String(n),
                    ));
                }
                params.push(TypedParam::new(
                    field::CLIENT_INFO_UNIX_PROCESS_ID,
                    TypedValue::Int(id.pid),
                ));
            }
            encode_ret(&a::ClientGetInfoRet { params })
        }
        11 => {
            let args: a::ClientArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let (_, c) = client(d, &args.clnt)?;
            tracing::info!(target: "daemon.admin", "closing client {} of server {} on admin request", c.id, c.server);
            c.close();
            encode_ret(&())
        }
        12 => {
            let args: a::ServerArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let s = server(d, &args.srv.name)?;
            let l = s.limits();
            encode_ret(&a::ClientLimitsRet {
                params: vec![
                    uint(field::SERVER_CLIENTS_MAX, l.max_clients),
                    uint(field::SERVER_CLIENTS_CURRENT, s.nclients()),
                    uint(field::SERVER_CLIENTS_UNAUTH_MAX, l.max_unauth),
                    uint(field::SERVER_CLIENTS_UNAUTH_CURRENT, 0),
                ],
            })
        }
        13 => {
            let args: a::ServerSetClientLimitsArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let s = server(d, &args.srv.name)?;
            let v = uint_params(
                &args.params,
                &[field::SERVER_CLIENTS_MAX, field::SERVER_CLIENTS_UNAUTH_MAX],
                ErrorDomain::RPC,
            )?;
            s.set_limits(v[0], v[1])
                .map_err(|e| invalid_arg(ErrorDomain::RPC, e.to_string()))?;
            tracing::info!(target: "daemon.admin", "server {}: client limits set to {:?}", s.name, s.limits());
            encode_ret(&())
        }
        14 => {
            let args: a::FlagsArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            encode_ret(&a::ConnectGetLoggingOutputsRet {
                outputs: d.logging.outputs(),
                noutputs: d.logging.noutputs(),
            })
        }
        15 => {
            let args: a::FlagsArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let f = d.logging.filters();
            encode_ret(&a::ConnectGetLoggingFiltersRet {
                filters: (!f.is_empty()).then_some(f),
                nfilters: d.logging.nfilters(),
            })
        }
        16 => {
            let args: a::ConnectSetLoggingOutputsArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            d.logging
                .set_outputs(args.outputs.as_deref().unwrap_or(""))
                .map_err(|e| invalid_arg(ErrorDomain::LOGGING, e.to_string()))?;
            encode_ret(&())
        }
        17 => {
            let args: a::ConnectSetLoggingFiltersArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            d.logging
                .set_filters(args.filters.as_deref().unwrap_or(""))
                .map_err(|e| invalid_arg(ErrorDomain::LOGGING, e.to_string()))?;
            encode_ret(&())
        }
        18 => {
            let args: a::ServerArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            let s = server(d, &args.srv.name)?;
            tracing::debug!(target: "daemon.admin", "server {} has no TLS service: no TLS files to reload", s.name);
            encode_ret(&())
        }
        19 => {
            let args: a::ConnectSetDaemonTimeoutArgs = decode_args(payload)?;
            dispatch::check_flags(args.flags, 0, p)?;
            d.idle.set_timeout(args.timeout);
            tracing::info!(target: "daemon.admin", "idle timeout set to {} s", args.timeout);
            encode_ret(&())
        }
        _ => Err(dispatch::no_support(p)),
    }
}
