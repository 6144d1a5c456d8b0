//! What the event tests share (`network_events.rs`, `storage_events.rs`,
//! `secret_events.rs`, `nodedev_events.rs`): the real `virsh <x>-event`
//! running in the background as a [`Listener`], waiting until every
//! listener hears a probe object ([`until_listening`]), and, on a
//! [`RawClient`], the registration procedures and the event `MESSAGE`
//! frames that come beside a call's reply.
//!
//! A driver's events are described once by a [`DriverEvents`]: virsh's
//! command (`net-event`), the URI scheme (`network`) and the REMOTE
//! procedures that register and deregister a callback. Every driver's
//! registration reply and deregistration arguments are the same XDR
//! (`int callbackID`), so one codec serves them all.

use crate::raw::{RawClient, Recv};
use crate::{ChildGuard, Daemon, require_tool, wait_for};
use modvirt_wire::remote::ConnectOpenArgs;
use modvirt_wire::{ErrorCode, ErrorDomain, Header, MessageType, RpcError, Status, XdrDecode, XdrEncode};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// `SCHEME:///system?socket=…` on `d`'s read-write socket (`<d>-sock`), or
/// its read-only one (`<d>-sock-ro`) when `readonly`: a connection straight
/// to a secondary daemon (`network`, `storage`, `secret`, `nodedev`).
pub fn driver_uri(d: &Daemon, scheme: &str, readonly: bool) -> String {
    let socket = d.socket(if readonly { "sock-ro" } else { "sock" });
    format!("{scheme}:///system?socket={}", socket.display())
}

/// One driver's events, as virsh and the wire know them.
#[derive(Debug, Clone, Copy)]
pub struct DriverEvents {
    /// virsh's command (`net-event`, `pool-event`, …).
    pub command: &'static str,
    /// The URI scheme of the driver's own daemon (`network`, …).
    pub scheme: &'static str,
    /// `CONNECT_<X>_EVENT_REGISTER_ANY`.
    pub register: i32,
    /// `CONNECT_<X>_EVENT_DEREGISTER_ANY`.
    pub deregister: i32,
}

impl DriverEvents {
    /// [`driver_uri`] of this driver's scheme on `d`.
    pub fn uri(&self, d: &Daemon, readonly: bool) -> String {
        driver_uri(d, self.scheme, readonly)
    }

    /// Starts `virsh [-r] -c URI COMMAND ARGS…` in the background, its
    /// stdout and stderr in `COMMAND-TAG.out` / `.err` under `d`'s root.
    pub fn listen(&self, d: &Daemon, tag: &str, readonly: bool, uri: &str, args: &[&str]) -> Listener {
        let out = d.root.path().join(format!("{}-{tag}.out", self.command));
        let err = d.root.path().join(format!("{}-{tag}.err", self.command));
        let file = |p: &Path| std::fs::File::create(p).expect("listener output file");
        let mut cmd = Command::new(require_tool("virsh"));
        if readonly {
            cmd.arg("-r");
        }
        let child = ChildGuard::spawn(
            cmd.arg("-c")
                .arg(uri)
                .arg(self.command)
                .args(args)
                .env_remove("LIBVIRT_DEFAULT_URI")
                .stdin(Stdio::null())
                .stdout(file(&out))
                .stderr(file(&err)),
        );
        Listener {
            command: self.command,
            child,
            out,
            err,
        }
    }

    /// Runs `virsh -c URI COMMAND --event EVENT --timeout 20` (without
    /// `--loop`: virsh waits for one event) and `round`, then 200 ms, until
    /// that virsh exits, which it must within 15 s saying that it received
    /// one event. Returns the event lines it printed.
    pub fn one_event(&self, d: &Daemon, uri: &str, event: &str, mut round: impl FnMut()) -> Vec<String> {
        let mut one = self.listen(d, "one", false, uri, &["--event", event, "--timeout", "20"]);
        let ok = wait_for(Duration::from_secs(15), || {
            round();
            std::thread::sleep(Duration::from_millis(200));
            one.exited().is_some()
        });
        assert!(ok, "{}{}", one.stdout(), one.stderr());
        assert!(one.stdout().contains("events received: 1"), "{}", one.stdout());
        one.events()
    }

    /// Runs `virsh -c URI COMMAND --event EVENT --timeout 1`, and `during`
    /// while it waits: virsh must exit within 10 s saying that its event
    /// loop timed out, having printed no event. Returns all it printed.
    pub fn no_event(&self, d: &Daemon, uri: &str, event: &str, during: impl FnOnce()) -> String {
        let mut quiet = self.listen(d, "quiet", false, uri, &["--event", event, "--timeout", "1"]);
        during();
        assert!(quiet.wait_exit(Duration::from_secs(10)).is_some());
        let out = quiet.stdout();
        assert!(out.contains("event loop timed out"), "{out}{}", quiet.stderr());
        assert!(quiet.events().is_empty(), "{out}");
        out
    }

    /// A raw connection to `socket` opened as virsh opens
    /// `SCHEME:///system`: `AUTH_LIST`, then `CONNECT_OPEN` (flags 0).
    pub fn open_raw(&self, socket: &Path) -> RawClient {
        let mut c = RawClient::connect(socket);
        c.auth_list();
        let open = ConnectOpenArgs {
            name: Some(format!("{}:///system", self.scheme)),
            flags: 0,
        };
        c.rpc_ok(crate::raw::procs::CONNECT_OPEN, &open.to_xdr());
        c
    }

    /// Registers a callback with `args` (the driver's register arguments);
    /// the callback id of the reply.
    pub fn register(&self, c: &mut RawClient, args: &impl XdrEncode) -> Result<i32, RpcError> {
        c.rpc(self.register, &args.to_xdr())
            .map(|r| i32::from_xdr(&r).expect("register ret"))
    }

    /// Deregisters callback `callback_id`.
    pub fn deregister(&self, c: &mut RawClient, callback_id: i32) -> Result<Vec<u8>, RpcError> {
        c.rpc(self.deregister, &callback_id.to_xdr())
    }
}

/// A `virsh <x>-event` running in the background (from
/// [`DriverEvents::listen`]); killed by pid and reaped when dropped.
#[derive(Debug)]
pub struct Listener {
    command: &'static str,
    child: ChildGuard,
    out: PathBuf,
    err: PathBuf,
}

impl Listener {
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The event lines printed so far.
    pub fn events(&self) -> Vec<String> {
        self.stdout()
            .lines()
            .filter(|l| l.starts_with("event '"))
            .map(str::to_owned)
            .collect()
    }

    /// The event lines printed so far that do not mention `probe`.
    pub fn events_past(&self, probe: &str) -> Vec<String> {
        self.events().into_iter().filter(|l| !l.contains(probe)).collect()
    }

    /// The exit status if virsh has exited (reaps it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.exited()
    }

    /// Waits up to `timeout` for virsh to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.wait_exit(timeout)
    }

    /// Interrupts it as Ctrl-C would; it must end its loop and exit.
    /// Returns all it printed.
    pub fn interrupt(&mut self) -> String {
        self.child.signal(Signal::SIGINT);
        let status = self.child.wait_exit(Duration::from_secs(10));
        assert!(status.is_some(), "virsh {} did not exit on SIGINT", self.command);
        self.stdout()
    }

    /// Interrupts it (as [`Listener::interrupt`]) and asserts that virsh
    /// said on its way out that it received `n` events.
    #[track_caller]
    pub fn interrupt_after(&mut self, n: usize) {
        let out = self.interrupt();
        assert!(out.contains(&format!("events received: {n}")), "{out}");
    }

    /// Prints `TITLE printed:` and the event lines, for the test's output.
    pub fn show(&self, title: &str) {
        println!("{title} printed:");
        for l in self.events() {
            println!("  {l}");
        }
    }
}

/// Runs `round` (which makes a probe object send events), then waits
/// 200 ms, until every listener printed an event line that `heard` accepts
/// (called with the listener's index and the line); fails the test if
/// that takes more than 15 s. Lets 300 ms pass for what is still on its
/// way, and returns how many event lines each listener had then (the
/// lines a test skips before counting its own).
pub fn until_listening(
    listeners: &[&Listener],
    heard: impl Fn(usize, &str) -> bool,
    mut round: impl FnMut(),
) -> Vec<usize> {
    let listening = wait_for(Duration::from_secs(15), || {
        round();
        std::thread::sleep(Duration::from_millis(200));
        listeners
            .iter()
            .enumerate()
            .all(|(i, l)| l.events().iter().any(|e| heard(i, e)))
    });
    let state: Vec<String> = listeners
        .iter()
        .map(|l| format!("{}{}", l.stdout(), l.stderr()))
        .collect();
    assert!(listening, "listeners never heard the probe:\n{state:#?}");
    std::thread::sleep(Duration::from_millis(300));
    listeners.iter().map(|l| l.events().len()).collect()
}

/// `e` is libvirt's `VIR_ERR_INTERNAL_ERROR` of the RPC domain (as the
/// daemons answer bad event registrations) reading exactly `message`.
#[track_caller]
pub fn assert_internal_error(e: &RpcError, message: &str) {
    assert_eq!(
        (e.code, e.domain, e.message.as_deref()),
        (ErrorCode::INTERNAL_ERROR, ErrorDomain::RPC, Some(message)),
        "unexpected error: {e:?}"
    );
}

/// A frame: its header and payload.
pub type Frame = (Header, Vec<u8>);

/// Sends call `proc_` and reads until its reply and `events` event
/// `MESSAGE`s came, in either order (events are written beside replies,
/// not in line with them). Returns the reply's payload and the messages.
/// The call must succeed, each message must carry serial 1, and any other
/// frame (one more message, too) fails the test.
pub fn call_with_events(c: &mut RawClient, proc_: i32, args: &[u8], events: usize) -> (Vec<u8>, Vec<Frame>) {
    read_reply_and_events(c, proc_, args, Until::Count(events))
}

/// Like [`call_with_events`] for as many event `MESSAGE`s as come until
/// none came for `quiet` after the reply; the reply, too, must come with
/// no gap of `quiet`.
pub fn call_until_quiet(
    c: &mut RawClient,
    proc_: i32,
    args: &[u8],
    quiet: Duration,
) -> (Vec<u8>, Vec<Frame>) {
    read_reply_and_events(c, proc_, args, Until::Quiet(quiet))
}

/// When [`read_reply_and_events`] stops reading, once the reply is in.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// When this many messages came.
    Count(usize),
    /// When no frame came for this long.
    Quiet(Duration),
}

fn read_reply_and_events(c: &mut RawClient, proc_: i32, args: &[u8], until: Until) -> (Vec<u8>, Vec<Frame>) {
    let sent = c.call(proc_, args);
    let mut reply = None;
    let mut msgs = Vec::new();
    loop {
        let (h, payload) = match until {
            Until::Count(n) if reply.is_some() && msgs.len() >= n => break,
            Until::Count(_) => c.recv(),
            Until::Quiet(quiet) => match c.recv_within(quiet) {
                Recv::Frame(h, payload) => (h, payload),
                Recv::TimedOut if reply.is_some() => break,
                other => panic!("no reply to procedure {proc_}: {other:?}"),
            },
        };
        let more = match until {
            Until::Count(n) => msgs.len() < n,
            Until::Quiet(_) => true,
        };
        match h.type_ {
            MessageType::Reply if h.serial == sent.serial => {
                assert_eq!(h.status, Status::Ok, "procedure {proc_} failed");
                reply = Some(payload);
            }
            MessageType::Message if more => {
                assert_eq!(h.serial, 1, "{h:?}");
                msgs.push((h, payload));
            }
            _ => panic!("unexpected frame {h:?}"),
        }
    }
    (reply.unwrap_or_default(), msgs)
}
