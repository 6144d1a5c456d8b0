//! Start-up phases: a named, timed tree from exec to ready.
//!
//! `phases.begin("sockets")` returns a guard that ends the phase when
//! dropped; `guard.step("enumerate")` opens a child; `guard.detail("412
//! devices")` annotates it. Each phase that starts is announced (e.g. as
//! systemd `STATUS=`) through the callback given at creation. The tree is
//! kept after start-up for `virt-daemons boot`.

use modvirt_wire::observe::Phase;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

type Announce = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Debug, Clone)]
struct Node {
    /// Open while the phase runs; closing it records the phase's span.
    span: tracing::Span,
    name: String,
    start: Instant,
    end: Option<Instant>,
    detail: Option<String>,
    children: Vec<usize>,
    parent: Option<usize>,
}

struct Inner {
    exec: Instant,
    /// The root span of start-up; every top-level phase is its child.
    root: Mutex<tracing::Span>,
    nodes: Mutex<Vec<Node>>,
    announce: Announce,
}

/// The phase tree of one daemon.
#[derive(Clone)]
pub struct Phases {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phases").field("exec", &self.inner.exec).finish()
    }
}

/// An open phase; ends when dropped.
#[derive(Debug)]
#[must_use = "the phase ends when the guard is dropped"]
pub struct PhaseGuard {
    phases: Phases,
    idx: usize,
}

impl Phases {
    /// `exec` is when the process started; `announce` receives
    /// `"Starting: sockets"`-style texts as phases begin.
    pub fn new(exec: Instant, announce: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            inner: Arc::new(Inner {
                exec,
                root: Mutex::new(tracing::info_span!(target: "daemon.phase", "start-up")),
                nodes: Mutex::new(Vec::new()),
                announce: Box::new(announce),
            }),
        }
    }

    fn nodes(&self) -> MutexGuard<'_, Vec<Node>> {
        self.inner.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self, name: &str, parent: Option<usize>) -> PhaseGuard {
        let path = {
            let mut nodes = self.nodes();
            let idx = nodes.len();
            let parent_span = match parent {
                Some(p) => nodes[p].span.id(),
                None => self.inner.root.lock().unwrap_or_else(|e| e.into_inner()).id(),
            };
            let span = tracing::info_span!(
                target: "daemon.phase",
                parent: parent_span,
                "phase",
                otel.name = name,
                phase.detail = tracing::field::Empty
            );
            nodes.push(Node {
                span,
                name: name.to_owned(),
                start: Instant::now(),
                end: None,
                detail: None,
                children: Vec::new(),
                parent,
            });
            if let Some(p) = parent {
                nodes[p].children.push(idx);
            }
            let mut names = vec![name.to_owned()];
            let mut cur = parent;
            while let Some(p) = cur {
                names.push(nodes[p].name.clone());
                cur = nodes[p].parent;
            }
            names.reverse();
            (idx, names.join(": "))
        };
        (self.inner.announce)(&format!("Starting: {}", path.1));
        PhaseGuard {
            phases: self.clone(),
            idx: path.0,
        }
    }

    /// Adds a top-level phase that was timed before the tree existed.
    pub fn record(&self, name: &str, start: Instant, end: Instant) {
        self.nodes().push(Node {
            span: tracing::Span::none(),
            name: name.to_owned(),
            start,
            end: Some(end),
            detail: None,
            children: Vec::new(),
            parent: None,
        });
    }

    /// Opens a top-level phase.
    pub fn begin(&self, name: &str) -> PhaseGuard {
        self.open(name, None)
    }

    /// Start-up is over: closes the root span (recording it).
    pub fn finish(&self) {
        let root = std::mem::replace(
            &mut *self.inner.root.lock().unwrap_or_else(|e| e.into_inner()),
            tracing::Span::none(),
        );
        drop(root);
    }

    /// Time since exec.
    pub fn since_exec(&self) -> Duration {
        self.inner.exec.elapsed()
    }

    /// The tree as observers see it.
    pub fn snapshot(&self) -> Vec<Phase> {
        let nodes = self.nodes();
        let exec = self.inner.exec;
        fn build(nodes: &[Node], idx: usize, exec: Instant) -> Phase {
            let n = &nodes[idx];
            Phase {
                name: n.name.clone(),
                start_ms: n.start.saturating_duration_since(exec).as_secs_f64() * 1e3,
                duration_ms: n.end.map(|e| e.duration_since(n.start).as_secs_f64() * 1e3),
                detail: n.detail.clone(),
                children: n.children.iter().map(|&c| build(nodes, c, exec)).collect(),
            }
        }
        nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.parent.is_none())
            .map(|(i, _)| build(&nodes, i, exec))
            .collect()
    }
}

impl PhaseGuard {
    /// Opens a child step of this phase.
    pub fn step(&self, name: &str) -> PhaseGuard {
        self.phases.open(name, Some(self.idx))
    }

    /// Annotates the phase (e.g. `enumerate 412 devices`).
    pub fn detail(&self, text: impl Into<String>) {
        self.phases.nodes()[self.idx].detail = Some(text.into());
    }
}

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        let span = {
            let mut nodes = self.phases.nodes();
            let n = &mut nodes[self.idx];
            n.end = Some(Instant::now());
            std::mem::replace(&mut n.span, tracing::Span::none())
        };
        if let Some(detail) = self.phases.nodes()[self.idx].detail.clone() {
            span.record("phase.detail", detail.as_str());
        }
        drop(span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_with_durations_details_and_announcements() {
        let said = Arc::new(Mutex::new(Vec::new()));
        let s2 = said.clone();
        let p = Phases::new(Instant::now(), move |t| s2.lock().unwrap().push(t.to_owned()));
        {
            let _c = p.begin("config");
        }
        let d = p.begin("driver");
        {
            let e = d.step("enumerate");
            e.detail("412 devices");
        }
        let snap = p.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].name, "config");
        assert!(snap[0].duration_ms.is_some());
        assert_eq!(snap[1].duration_ms, None, "still running");
        assert_eq!(snap[1].children[0].detail.as_deref(), Some("412 devices"));
        assert!(snap[1].children[0].start_ms >= snap[1].start_ms);
        drop(d);
        assert!(p.snapshot()[1].duration_ms.is_some());
        assert_eq!(
            *said.lock().unwrap(),
            [
                "Starting: config",
                "Starting: driver",
                "Starting: driver: enumerate"
            ]
        );
    }

    #[test]
    fn phases_are_spans_under_a_start_up_root() {
        use tracing_subscriber::layer::SubscriberExt;
        let (rec, layer) = crate::observe::spans::SpanRecorder::new("t", 64);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let p = Phases::new(Instant::now(), |_| {});
            {
                let d = p.begin("driver");
                let e = d.step("enumerate");
                e.detail("412 devices");
            }
            p.finish();
        });
        let spans = rec.page(0, 64).spans;
        let by = |n: &str| {
            spans
                .iter()
                .find(|s| s.name == n)
                .unwrap_or_else(|| panic!("{n}: {spans:#?}"))
        };
        let (root, driver, step) = (by("start-up"), by("driver"), by("enumerate"));
        assert_eq!(driver.parent_span_id.as_deref(), Some(root.span_id.as_str()));
        assert_eq!(step.parent_span_id.as_deref(), Some(driver.span_id.as_str()));
        assert_eq!(step.trace_id, root.trace_id);
        assert!(
            step.attributes
                .iter()
                .any(|(k, v)| k == "phase.detail" && v == "412 devices")
        );
    }
}
