//! The identity a call is made for, as libvirt passes it between daemons
//! with `CONNECT_SET_IDENTITY`: a hypervisor daemon (or the proxy) that
//! forwards a client's call to a secondary daemon opens its connection
//! there with the client's identity, so the secondary daemon sees (and
//! shows, in its in-flight calls) the real client rather than the daemon
//! in between.

use modvirt_wire::typed_param::{TypedParam, TypedValue};

/// `VIR_CONNECT_IDENTITY_*` names.
pub mod param {
    pub const USER_NAME: &str = "user-name";
    pub const UNIX_USER_ID: &str = "unix-user-id";
    pub const GROUP_NAME: &str = "group-name";
    pub const UNIX_GROUP_ID: &str = "unix-group-id";
    pub const PROCESS_ID: &str = "process-id";
    pub const PROCESS_TIME: &str = "process-time";
}

/// Who a call is made for: a local process and its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// The process's start time (`/proc/PID/stat` field 22, clock ticks
    /// since boot), which tells a pid's reuse apart; 0 when unknown.
    pub process_time: u64,
    pub user_name: Option<String>,
    pub group_name: Option<String>,
}

impl Identity {
    /// The identity of a local process seen through `SO_PEERCRED`.
    pub fn of_process(pid: i32, uid: u32, gid: u32) -> Identity {
        Identity {
            pid,
            uid,
            gid,
            process_time: process_start_ticks(pid).unwrap_or(0),
            user_name: nix::unistd::User::from_uid(uid.into())
                .ok()
                .flatten()
                .map(|u| u.name),
            group_name: nix::unistd::Group::from_gid(gid.into())
                .ok()
                .flatten()
                .map(|g| g.name),
        }
    }

    /// The typed parameters of `CONNECT_SET_IDENTITY`.
    pub fn to_params(&self) -> Vec<TypedParam> {
        let mut params = Vec::with_capacity(6);
        if let Some(name) = &self.user_name {
            params.push(TypedParam::new(
                param::USER_NAME,
                TypedValue::String(name.clone()),
            ));
        }
        params.push(TypedParam::new(
            param::UNIX_USER_ID,
            TypedValue::ULLong(self.uid.into()),
        ));
        if let Some(name) = &self.group_name {
            params.push(TypedParam::new(
                param::GROUP_NAME,
                TypedValue::String(name.clone()),
            ));
        }
        params.push(TypedParam::new(
            param::UNIX_GROUP_ID,
            TypedValue::ULLong(self.gid.into()),
        ));
        params.push(TypedParam::new(
            param::PROCESS_ID,
            TypedValue::LLong(self.pid.into()),
        ));
        if self.process_time != 0 {
            params.push(TypedParam::new(
                param::PROCESS_TIME,
                TypedValue::ULLong(self.process_time),
            ));
        }
        params
    }

    /// Reads `CONNECT_SET_IDENTITY`'s parameters; unknown names (SELinux
    /// context, SASL or x509 names) are ignored, a known name with the wrong
    /// type is an error naming it.
    pub fn from_params(params: &[TypedParam]) -> Result<Identity, String> {
        let mut id = Identity {
            pid: -1,
            uid: u32::MAX,
            gid: u32::MAX,
            process_time: 0,
            user_name: None,
            group_name: None,
        };
        for p in params {
            let bad = || format!("identity parameter '{}' has the wrong type", p.field);
            match (p.field.as_str(), &p.value) {
                (param::USER_NAME, TypedValue::String(s)) => id.user_name = Some(s.clone()),
                (param::GROUP_NAME, TypedValue::String(s)) => id.group_name = Some(s.clone()),
                (param::UNIX_USER_ID, TypedValue::ULLong(v)) => {
                    id.uid = u32::try_from(*v).map_err(|_| bad())?
                }
                (param::UNIX_GROUP_ID, TypedValue::ULLong(v)) => {
                    id.gid = u32::try_from(*v).map_err(|_| bad())?
                }
                (param::PROCESS_ID, TypedValue::LLong(v)) => id.pid = i32::try_from(*v).map_err(|_| bad())?,
                (param::PROCESS_TIME, TypedValue::ULLong(v)) => id.process_time = *v,
                (
                    param::USER_NAME
                    | param::GROUP_NAME
                    | param::UNIX_USER_ID
                    | param::UNIX_GROUP_ID
                    | param::PROCESS_ID
                    | param::PROCESS_TIME,
                    _,
                ) => return Err(bad()),
                _ => {}
            }
        }
        Ok(id)
    }
}

/// Field 22 of `/proc/PID/stat` (after the parenthesised command name).
fn process_start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_and_unknown_names_are_ignored() {
        let me = Identity::of_process(std::process::id() as i32, 0, 0);
        assert!(me.process_time > 0);
        assert_eq!(me.user_name.as_deref(), Some("root"));
        let mut params = me.to_params();
        params.push(TypedParam::new("selinux-context", TypedValue::String("x".into())));
        assert_eq!(Identity::from_params(&params), Ok(me));
    }

    #[test]
    fn a_known_name_with_the_wrong_type_is_refused() {
        let params = [TypedParam::new(param::PROCESS_ID, TypedValue::String("1".into()))];
        assert_eq!(
            Identity::from_params(&params),
            Err("identity parameter 'process-id' has the wrong type".into())
        );
    }
}
