//! `virt-daemons trace`: recent spans of every running daemon, joined into
//! traces by trace id (trace context travels across proxy and peer hops,
//! so one trace can span daemons) and shown as a waterfall: each span
//! under its parent, with its offset from the trace's start, its duration
//! and a bar on the trace's time line.

use super::{Snapshot, fmt_ms, fmt_utc, probe_all, table};
use crate::discover::KnownDaemon;
use modvirt_wire::observe::{Span, SpansPage};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

/// Width of the waterfall bar.
const BAR: usize = 30;

/// One span in a trace, placed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placed {
    pub daemon: String,
    /// 0 for a root.
    pub depth: usize,
    /// Start, relative to the trace's first span.
    pub offset_ns: u64,
    #[serde(flatten)]
    pub span: Span,
}

/// One trace: its spans in tree order (parent before children, siblings by start).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    pub trace_id: String,
    pub start_unix_ns: u64,
    pub duration_ns: u64,
    pub daemons: Vec<String>,
    pub spans: Vec<Placed>,
}

/// Spans of the running daemons, and the daemons that did not give them.
#[derive(Debug, Default)]
pub struct Collected {
    /// (daemon, every span still in its ring).
    pub pages: Vec<(String, SpansPage)>,
    /// (daemon, error).
    pub errors: Vec<(String, String)>,
}

/// Spans per daemon, following each ring from cursor 0 (at most 100 000
/// per daemon); running daemons only.
pub fn collect(snap: &Snapshot, timeout: Duration) -> Collected {
    let daemons: Vec<&KnownDaemon> = snap.daemons.iter().map(|o| &o.daemon).collect();
    let results = probe_all(&daemons, timeout, |c| c.all_spans(100_000));
    let mut pages = Vec::new();
    let mut errors = Vec::new();
    for (d, r) in daemons.iter().zip(results) {
        match r {
            Some(Ok(page)) => pages.push((d.name.clone(), page)),
            Some(Err(e)) => errors.push((d.name.clone(), e.to_string())),
            None => {}
        }
    }
    Collected { pages, errors }
}

/// Groups spans (daemon, page) into traces, newest first, at most `limit`;
/// with `daemon`, only the traces that touch it (with all their spans).
pub fn build(pages: &[(String, SpansPage)], daemon: Option<&str>, limit: usize) -> Vec<Trace> {
    let mut by_trace: BTreeMap<&str, Vec<(&str, &Span)>> = BTreeMap::new();
    for (d, page) in pages {
        for s in &page.spans {
            by_trace
                .entry(s.trace_id.as_str())
                .or_default()
                .push((d.as_str(), s));
        }
    }
    let mut traces: Vec<Trace> = by_trace
        .into_iter()
        .filter(|(_, spans)| daemon.is_none_or(|want| spans.iter().any(|(d, _)| *d == want)))
        .map(|(id, spans)| place(id, spans))
        .collect();
    traces.sort_by_key(|t| std::cmp::Reverse(t.start_unix_ns));
    traces.truncate(limit);
    traces
}

fn place(trace_id: &str, mut spans: Vec<(&str, &Span)>) -> Trace {
    spans.sort_by_key(|(_, s)| (s.start_unix_ns, s.seq));
    let start = spans.first().map_or(0, |(_, s)| s.start_unix_ns);
    let end = spans
        .iter()
        .map(|(_, s)| s.start_unix_ns.saturating_add(s.duration_ns))
        .max()
        .unwrap_or(start);
    let ids: HashSet<&str> = spans.iter().map(|(_, s)| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, (_, s)) in spans.iter().enumerate() {
        match s.parent_span_id.as_deref() {
            Some(p) if ids.contains(p) && p != s.span_id => children.entry(p).or_default().push(i),
            _ => roots.push(i),
        }
    }
    let mut placed = Vec::with_capacity(spans.len());
    let mut done = vec![false; spans.len()];
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    // Spans only reachable through a parent cycle become roots too.
    let mut leftovers = (0..spans.len()).rev();
    while let Some((i, depth)) = stack
        .pop()
        .or_else(|| leftovers.find(|&i| !done[i]).map(|i| (i, 0)))
    {
        if done[i] {
            continue;
        }
        done[i] = true;
        let (d, s) = spans[i];
        if let Some(kids) = children.get(s.span_id.as_str()) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
        placed.push(Placed {
            daemon: d.to_owned(),
            depth,
            offset_ns: s.start_unix_ns.saturating_sub(start),
            span: s.clone(),
        });
    }
    let mut daemons: Vec<String> = Vec::new();
    for p in &placed {
        if !daemons.contains(&p.daemon) {
            daemons.push(p.daemon.clone());
        }
    }
    Trace {
        trace_id: trace_id.to_owned(),
        start_unix_ns: start,
        duration_ns: end - start,
        daemons,
        spans: placed,
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn bar(offset_ns: u64, duration_ns: u64, total_ns: u64) -> String {
    let total = total_ns.max(1) as f64;
    let from = ((offset_ns as f64 / total) * BAR as f64).floor() as usize;
    let from = from.min(BAR - 1);
    let len = (((duration_ns as f64 / total) * BAR as f64).round() as usize).clamp(1, BAR - from);
    format!(
        "|{}{}{}|",
        " ".repeat(from),
        "=".repeat(len),
        " ".repeat(BAR - from - len)
    )
}

/// The waterfall, newest trace first; `errors` are daemons that did not answer.
pub fn render_text(traces: &[Trace], errors: &[(String, String)]) -> String {
    let mut out = String::new();
    if traces.is_empty() {
        out.push_str("no spans recorded by the running daemons\n");
    }
    for t in traces {
        let _ = writeln!(
            out,
            "trace {}  {}  {} span(s)  {}  {}",
            t.trace_id,
            fmt_ms(ms(t.duration_ns)),
            t.spans.len(),
            t.daemons.join(", "),
            fmt_utc(t.start_unix_ns / 1_000_000)
        );
        let mut rows = vec![
            ["  OFFSET", "DURATION", "DAEMON", "SPAN", "WATERFALL", ""]
                .map(String::from)
                .to_vec(),
        ];
        for p in &t.spans {
            let mut note = String::new();
            if p.span.status != "ok" {
                note = format!("✗ {}", p.span.status);
            }
            for (k, v) in p.span.attributes.iter().take(3) {
                let _ = write!(note, "{}{k}={v}", if note.is_empty() { "" } else { " " });
            }
            rows.push(vec![
                format!("  +{}", fmt_ms(ms(p.offset_ns))),
                fmt_ms(ms(p.span.duration_ns)),
                p.daemon.clone(),
                format!("{}{}", "  ".repeat(p.depth), p.span.name),
                bar(p.offset_ns, p.span.duration_ns, t.duration_ns),
                note,
            ]);
        }
        out.push_str(&table(&rows));
        out.push('\n');
    }
    for (d, e) in errors {
        let _ = writeln!(out, "{d}: not answering: {e}");
    }
    out
}

/// `{"traces": [Trace…], "errors": [{daemon, error}], "missed": {daemon: n}}`.
pub fn render_json(traces: &[Trace], errors: &[(String, String)], pages: &[(String, SpansPage)]) -> Value {
    json!({
        "traces": traces,
        "errors": errors.iter().map(|(d, e)| json!({"daemon": d, "error": e})).collect::<Vec<_>>(),
        "missed": pages.iter().map(|(d, p)| (d.clone(), json!({"missed": p.missed, "dropped": p.dropped})))
            .collect::<serde_json::Map<_, _>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use modvirt_wire::observe::SCHEMA;

    fn span(seq: u64, trace: &str, id: &str, parent: Option<&str>, start: u64, dur: u64) -> Span {
        Span {
            seq,
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            name: format!("span-{id}"),
            start_unix_ns: start,
            duration_ns: dur,
            attributes: vec![],
            status: "ok".into(),
        }
    }

    fn page(spans: Vec<Span>) -> SpansPage {
        SpansPage {
            schema: SCHEMA,
            next_cursor: spans.len() as u64,
            spans,
            missed: 0,
            dropped: 0,
        }
    }

    #[test]
    fn spans_across_daemons_form_one_tree() {
        let pages = vec![
            (
                "virtqemud".to_owned(),
                page(vec![
                    span(0, "t1", "a", None, 1_000, 50_000_000),
                    span(1, "t1", "c", Some("a"), 2_000, 1_000),
                    span(2, "t0", "x", None, 10, 5),
                ]),
            ),
            (
                "virtnetworkd".to_owned(),
                page(vec![span(0, "t1", "b", Some("a"), 1_500, 40_000_000)]),
            ),
        ];
        let traces = build(&pages, None, 10);
        assert_eq!(traces.len(), 2);
        let t = &traces[0];
        assert_eq!(t.trace_id, "t1", "newest first");
        let order: Vec<(&str, usize)> = t
            .spans
            .iter()
            .map(|p| (p.span.span_id.as_str(), p.depth))
            .collect();
        assert_eq!(order, [("a", 0), ("b", 1), ("c", 1)]);
        assert_eq!(t.daemons, ["virtqemud", "virtnetworkd"]);
        assert_eq!(t.spans[1].offset_ns, 500);
        assert_eq!(build(&pages, Some("virtnetworkd"), 10).len(), 1);
        assert_eq!(build(&pages, None, 1).len(), 1);
        let text = render_text(&traces, &[]);
        assert!(text.contains("trace t1"), "{text}");
        assert!(text.contains("    span-b"), "child indented: {text}");
    }

    #[test]
    fn parent_cycles_and_orphans_do_not_lose_spans() {
        let pages = vec![(
            "d".to_owned(),
            page(vec![
                span(0, "t", "a", Some("b"), 1, 1),
                span(1, "t", "b", Some("a"), 2, 1),
                span(2, "t", "c", Some("gone"), 3, 1),
            ]),
        )];
        let t = &build(&pages, None, 5)[0];
        assert_eq!(t.spans.len(), 3);
    }

    #[test]
    fn bars_stay_in_bounds() {
        assert_eq!(bar(0, 10, 10).len(), BAR + 2);
        assert_eq!(bar(10, 0, 10).len(), BAR + 2);
        assert_eq!(bar(0, 0, 0).len(), BAR + 2);
        assert_eq!(bar(5, 5, 10), format!("|{}{}|", " ".repeat(15), "=".repeat(15)));
    }
}
