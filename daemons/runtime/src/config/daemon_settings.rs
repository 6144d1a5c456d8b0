//! Typed daemon settings read from a [`ConfFile`]: the main and admin servers'
//! worker and client limits, keepalive, and logging, with libvirt's defaults.

use super::{ConfFile, ConfigError};

/// Limits of one server (libvirt's `virNetServer`): its worker pool, its clients
/// and their keepalive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    pub min_workers: usize,
    pub max_workers: usize,
    pub prio_workers: usize,
    pub max_clients: usize,
    /// Clients accepted but not yet authenticated.
    pub max_anonymous_clients: usize,
    /// Calls one client may have in flight.
    pub max_client_requests: usize,
    /// Seconds between keepalive probes; -1 disables keepalive.
    pub keepalive_interval: i32,
    /// Unanswered probes before the client is dropped.
    pub keepalive_count: u32,
}

/// Everything a daemon reads from its configuration file that the runtime uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSettings {
    pub main: ServerSettings,
    pub admin: ServerSettings,
    /// Global log level, 1 (debug) ..= 4 (error).
    pub log_level: u32,
    pub log_filters: Option<String>,
    pub log_outputs: Option<String>,
    /// modvirt's own key `call_spans` (0 or 1, default 1): record a span
    /// for every RPC call.
    pub call_spans: bool,
    /// modvirt's own key `peer_call_timeout` (seconds, 1..=3600, default
    /// 30, libvirt's keepalive interval × count): how long a call forwarded
    /// to a peer daemon waits for its reply before failing with a timeout.
    pub peer_call_timeout: std::time::Duration,
    /// TCP/TLS listening (`virtproxyd --listen`).
    pub net: super::NetSettings,
}

/// The configuration keys of one server; `None` where the server has no such key.
struct ServerKeys {
    min_workers: &'static str,
    max_workers: &'static str,
    prio_workers: Option<&'static str>,
    max_clients: &'static str,
    max_anonymous_clients: &'static str,
    max_client_requests: &'static str,
    keepalive_interval: &'static str,
    keepalive_count: &'static str,
}

const MAIN_KEYS: ServerKeys = ServerKeys {
    min_workers: "min_workers",
    max_workers: "max_workers",
    prio_workers: Some("prio_workers"),
    max_clients: "max_clients",
    max_anonymous_clients: "max_anonymous_clients",
    max_client_requests: "max_client_requests",
    keepalive_interval: "keepalive_interval",
    keepalive_count: "keepalive_count",
};

const ADMIN_KEYS: ServerKeys = ServerKeys {
    min_workers: "admin_min_workers",
    max_workers: "admin_max_workers",
    prio_workers: None,
    max_clients: "admin_max_clients",
    max_anonymous_clients: "admin_max_queued_clients",
    max_client_requests: "admin_max_client_requests",
    keepalive_interval: "admin_keepalive_interval",
    keepalive_count: "admin_keepalive_count",
};

impl ServerSettings {
    /// libvirt's defaults for the main (driver) server.
    pub const MAIN_DEFAULT: ServerSettings = ServerSettings {
        min_workers: 5,
        max_workers: 20,
        prio_workers: 5,
        max_clients: 5000,
        max_anonymous_clients: 20,
        max_client_requests: 5,
        keepalive_interval: 5,
        keepalive_count: 5,
    };

    /// libvirt's defaults for the admin server.
    /// The admin server's defaults as libvirt 9.0's daemons really apply
    /// them (virt-admin shows min 5 / max 20 / prio 0 workers).
    pub const ADMIN_DEFAULT: ServerSettings = ServerSettings {
        min_workers: 5,
        max_workers: 20,
        prio_workers: 0,
        max_clients: 5000,
        max_anonymous_clients: 20,
        max_client_requests: 5,
        keepalive_interval: 5,
        keepalive_count: 5,
    };

    fn from_conf(
        conf: &ConfFile,
        keys: &ServerKeys,
        default: &ServerSettings,
    ) -> Result<ServerSettings, ConfigError> {
        let usize_or = |key: &str, default: usize| -> Result<usize, ConfigError> {
            Ok(conf.get_usize(key)?.unwrap_or(default))
        };
        let settings = ServerSettings {
            min_workers: usize_or(keys.min_workers, default.min_workers)?,
            max_workers: usize_or(keys.max_workers, default.max_workers)?,
            prio_workers: match keys.prio_workers {
                Some(key) => usize_or(key, default.prio_workers)?,
                None => default.prio_workers,
            },
            max_clients: usize_or(keys.max_clients, default.max_clients)?,
            max_anonymous_clients: usize_or(keys.max_anonymous_clients, default.max_anonymous_clients)?,
            max_client_requests: usize_or(keys.max_client_requests, default.max_client_requests)?,
            keepalive_interval: conf
                .get_i32(keys.keepalive_interval)?
                .unwrap_or(default.keepalive_interval),
            keepalive_count: conf
                .get_u32(keys.keepalive_count)?
                .unwrap_or(default.keepalive_count),
        };
        settings.validate(conf, keys)?;
        Ok(settings)
    }

    fn validate(&self, conf: &ConfFile, keys: &ServerKeys) -> Result<(), ConfigError> {
        if self.max_workers < 1 {
            return Err(conf.invalid(keys.max_workers, "must be greater than 0"));
        }
        if self.min_workers > self.max_workers {
            let reason = format!(
                "{} ({}) must be less than or equal to {} ({})",
                keys.min_workers, self.min_workers, keys.max_workers, self.max_workers
            );
            return Err(conf.invalid(blame(conf, keys.min_workers, keys.max_workers), reason));
        }
        if self.max_clients < 1 {
            return Err(conf.invalid(keys.max_clients, "must be greater than 0"));
        }
        if self.max_anonymous_clients > self.max_clients {
            let reason = format!(
                "{} ({}) must be less than or equal to {} ({})",
                keys.max_anonymous_clients, self.max_anonymous_clients, keys.max_clients, self.max_clients
            );
            let key = blame(conf, keys.max_anonymous_clients, keys.max_clients);
            return Err(conf.invalid(key, reason));
        }
        if self.keepalive_interval == 0 || self.keepalive_interval < -1 {
            return Err(conf.invalid(
                keys.keepalive_interval,
                "must be -1 (disabled) or a positive number of seconds",
            ));
        }
        Ok(())
    }
}

/// Which of two keys in a violated relation to point at: the first if the file
/// sets it, otherwise the second (the first then holds its default).
fn blame(conf: &ConfFile, first: &'static str, second: &'static str) -> &'static str {
    if conf.line_of(first).is_some() {
        first
    } else {
        second
    }
}

impl Default for DaemonSettings {
    fn default() -> DaemonSettings {
        DaemonSettings {
            main: ServerSettings::MAIN_DEFAULT,
            admin: ServerSettings::ADMIN_DEFAULT,
            log_level: 3,
            log_filters: None,
            log_outputs: None,
            call_spans: true,
            peer_call_timeout: std::time::Duration::from_secs(30),
            net: super::NetSettings::default(),
        }
    }
}

impl DaemonSettings {
    /// Reads the settings from `conf`, using libvirt's default for every key it
    /// does not set, and checks them; errors name the line of the offending key.
    pub fn from_conf(conf: &ConfFile) -> Result<DaemonSettings, ConfigError> {
        let default = DaemonSettings::default();
        let call_spans = match conf.get_u32("call_spans")? {
            None => default.call_spans,
            Some(0) => false,
            Some(1) => true,
            Some(_) => return Err(conf.invalid("call_spans", "must be 0 or 1")),
        };
        let peer_call_timeout = match conf.get_u32("peer_call_timeout")? {
            None => default.peer_call_timeout,
            Some(s @ 1..=3600) => std::time::Duration::from_secs(s.into()),
            Some(_) => return Err(conf.invalid("peer_call_timeout", "must be 1 .. 3600 (seconds)")),
        };
        let log_level = conf.get_u32("log_level")?.unwrap_or(default.log_level);
        if !(1..=4).contains(&log_level) {
            return Err(conf.invalid("log_level", "must be 1 (debug) .. 4 (error)"));
        }
        Ok(DaemonSettings {
            main: ServerSettings::from_conf(conf, &MAIN_KEYS, &default.main)?,
            admin: ServerSettings::from_conf(conf, &ADMIN_KEYS, &default.admin)?,
            log_level,
            log_filters: conf.get_string("log_filters")?,
            log_outputs: conf.get_string("log_outputs")?,
            call_spans,
            peer_call_timeout,
            net: super::NetSettings::from_conf(conf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn settings(text: &str) -> Result<DaemonSettings, ConfigError> {
        let conf = ConfFile::parse(Path::new("/x/virtqemud.conf"), text)?;
        DaemonSettings::from_conf(&conf)
    }

    fn invalid(text: &str) -> (usize, String, String) {
        match settings(text) {
            Err(ConfigError::Invalid {
                line, key, reason, ..
            }) => (line, key, reason),
            other => panic!("expected an invalid-value error, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_gives_libvirt_defaults() {
        let s = settings("").expect("defaults are valid");
        assert_eq!(s, DaemonSettings::default());
        assert_eq!(s.main.max_workers, 20);
        assert_eq!(s.main.max_clients, 5000);
        assert_eq!(s.admin.min_workers, 5);
        assert_eq!(s.admin.prio_workers, 0);
        assert_eq!(s.log_level, 3);
        let empty = DaemonSettings::from_conf(&ConfFile::empty()).expect("defaults");
        assert_eq!(empty, DaemonSettings::default());
    }

    #[test]
    fn reads_every_key() {
        let s = settings(
            "min_workers = 2\nmax_workers = 4\nprio_workers = 1\nmax_clients = 10\n\
             max_anonymous_clients = 3\nmax_client_requests = 7\nkeepalive_interval = -1\n\
             keepalive_count = 0\nadmin_min_workers = 2\nadmin_max_workers = 3\n\
             admin_max_clients = 8\nadmin_max_queued_clients = 2\nadmin_max_client_requests = 9\n\
             admin_keepalive_interval = 30\nadmin_keepalive_count = 6\nlog_level = 1\n\
             log_filters = \"1:rpc 3:util\"\nlog_outputs = \"1:file:/var/log/x.log\"\n\
             unknown_key = [\"ignored\"]\n",
        )
        .expect("valid");
        assert_eq!(
            s.main,
            ServerSettings {
                min_workers: 2,
                max_workers: 4,
                prio_workers: 1,
                max_clients: 10,
                max_anonymous_clients: 3,
                max_client_requests: 7,
                keepalive_interval: -1,
                keepalive_count: 0,
            }
        );
        assert_eq!(
            s.admin,
            ServerSettings {
                min_workers: 2,
                max_workers: 3,
                prio_workers: 0,
                max_clients: 8,
                max_anonymous_clients: 2,
                max_client_requests: 9,
                keepalive_interval: 30,
                keepalive_count: 6,
            }
        );
        assert_eq!(s.log_level, 1);
        assert_eq!(s.log_filters.as_deref(), Some("1:rpc 3:util"));
        assert_eq!(s.log_outputs.as_deref(), Some("1:file:/var/log/x.log"));
    }

    #[test]
    fn rejects_bad_worker_counts() {
        let (line, key, _) = invalid("a = 1\nmax_workers = 0\n");
        assert_eq!((line, key.as_str()), (2, "max_workers"));
        let (line, key, reason) = invalid("max_workers = 8\n\nmin_workers = 9\n");
        assert_eq!((line, key.as_str()), (3, "min_workers"));
        assert_eq!(
            reason,
            "min_workers (9) must be less than or equal to max_workers (8)"
        );
        // min_workers keeps its default of 5: the file's max_workers is to blame.
        let (line, key, _) = invalid("\nmax_workers = 2\n");
        assert_eq!((line, key.as_str()), (2, "max_workers"));
        let (line, key, _) = invalid("admin_max_workers = 0\n");
        assert_eq!((line, key.as_str()), (1, "admin_max_workers"));
    }

    #[test]
    fn rejects_bad_client_limits() {
        let (line, key, _) = invalid("max_clients = 0\n");
        assert_eq!((line, key.as_str()), (1, "max_clients"));
        let (line, key, _) = invalid("max_clients = 10\nmax_anonymous_clients = 11\n");
        assert_eq!((line, key.as_str()), (2, "max_anonymous_clients"));
        // max_anonymous_clients keeps its default of 20.
        let (line, key, _) = invalid("max_clients = 10\n");
        assert_eq!((line, key.as_str()), (1, "max_clients"));
        let (line, key, _) = invalid("admin_max_clients = 2\nadmin_max_queued_clients = 3\n");
        assert_eq!((line, key.as_str()), (2, "admin_max_queued_clients"));
    }

    #[test]
    fn rejects_bad_keepalive_and_log_level() {
        for text in ["keepalive_interval = 0", "keepalive_interval = -2"] {
            let (line, key, _) = invalid(text);
            assert_eq!((line, key.as_str()), (1, "keepalive_interval"));
        }
        let (_, key, _) = invalid("admin_keepalive_interval = 0");
        assert_eq!(key, "admin_keepalive_interval");
        for text in ["log_level = 0", "log_level = 5"] {
            let (line, key, reason) = invalid(text);
            assert_eq!((line, key.as_str()), (1, "log_level"));
            assert_eq!(reason, "must be 1 (debug) .. 4 (error)");
        }
    }

    #[test]
    fn type_errors_propagate_with_line() {
        let err = settings("max_workers = \"many\"\n").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("configuration file error: /x/virtqemud.conf:1: max_workers: expected an unsigned integer")
        );
        assert!(matches!(
            settings("\nmin_workers = -1\n"),
            Err(ConfigError::Type { line: 2, .. })
        ));
        assert!(matches!(
            settings("log_outputs = 3\n"),
            Err(ConfigError::Type {
                expected: "a string",
                ..
            })
        ));
    }

    #[test]
    fn invalid_message_is_libvirt_like() {
        let err = settings("max_workers = 0\n").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("configuration file error: /x/virtqemud.conf:1: max_workers: must be greater than 0")
        );
    }
}
