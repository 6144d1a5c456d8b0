//! `modvirt_rpc_calls_total` and `modvirt_rpc_duration_seconds`: counted on
//! every call, so built for it. Each (program, procedure) has its own
//! counters, striped by thread: a call adds to its thread's stripe (its own
//! cache lines, so calls finishing on different cores never contend), and
//! a scrape sums the stripes. Handles are found without hashing: a table
//! per program, indexed by procedure number, filled on first use; other
//! calls (unknown numbers, a fifth program) go through a map.

use super::{DURATION_BUCKETS, PROCEDURE_SLOTS, PROGRAM_TABLES};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const STRIPES: usize = 8;
const BUCKETS: usize = DURATION_BUCKETS.len();
const CALLS: &str = "modvirt_rpc_calls_total";
const DURATION: &str = "modvirt_rpc_duration_seconds";

/// This thread's stripe (threads are spread round-robin).
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    MINE.with(|m| *m)
}

/// The bucket upper bounds in nanoseconds.
fn bounds_ns() -> &'static [u64; BUCKETS] {
    static B: OnceLock<[u64; BUCKETS]> = OnceLock::new();
    B.get_or_init(|| DURATION_BUCKETS.map(|s| (s * 1e9) as u64))
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    ok: AtomicU64,
    error: AtomicU64,
    sum_ns: AtomicU64,
    /// Per bucket (not cumulative); the last is `+Inf` only.
    buckets: [AtomicU64; BUCKETS + 1],
}

/// One (program, procedure)'s counts.
#[derive(Debug)]
pub(super) struct CallStat {
    program: String,
    procedure: String,
    stripes: Box<[Stripe; STRIPES]>,
}

impl CallStat {
    fn new(program: &str, procedure: &str) -> CallStat {
        CallStat {
            program: program.to_owned(),
            procedure: procedure.to_owned(),
            stripes: Box::default(),
        }
    }

    pub(super) fn record(&self, ok: bool, duration: Duration) {
        let s = &self.stripes[stripe()];
        if ok { &s.ok } else { &s.error }.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        s.sum_ns.fetch_add(ns, Ordering::Relaxed);
        let i = bounds_ns().iter().position(|b| ns <= *b).unwrap_or(BUCKETS);
        s.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// (ok, error, sum in ns, per-bucket counts) over every stripe.
    fn totals(&self) -> (u64, u64, u64, [u64; BUCKETS + 1]) {
        let mut t = (0, 0, 0, [0u64; BUCKETS + 1]);
        for s in self.stripes.iter() {
            t.0 += s.ok.load(Ordering::Relaxed);
            t.1 += s.error.load(Ordering::Relaxed);
            t.2 += s.sum_ns.load(Ordering::Relaxed);
            for (acc, b) in t.3.iter_mut().zip(&s.buckets) {
                *acc += b.load(Ordering::Relaxed);
            }
        }
        t
    }
}

#[derive(Debug)]
struct ProcedureTable {
    program: &'static str,
    /// Indexed by procedure number.
    slots: Box<[OnceLock<CallStat>]>,
}

#[derive(Debug)]
struct Inner {
    /// Claimed in order by the first programs seen; never freed.
    tables: [OnceLock<ProcedureTable>; PROGRAM_TABLES],
    uncached: Mutex<BTreeMap<(String, String), Arc<CallStat>>>,
    descs: Vec<Desc>,
}

/// The call metrics of one daemon; a clone registers as their collector.
#[derive(Debug, Clone)]
pub(super) struct CallMetrics(Arc<Inner>);

fn labels(pairs: &[(&str, &str)]) -> Vec<proto::LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = proto::LabelPair::default();
            l.set_name((*k).to_owned());
            l.set_value((*v).to_owned());
            l
        })
        .collect()
}

impl CallMetrics {
    pub(super) fn new() -> CallMetrics {
        let desc = |name: &str, help: &str, labels: &[&str]| {
            Desc::new(
                name.to_owned(),
                help.to_owned(),
                labels.iter().map(|l| (*l).to_owned()).collect(),
                HashMap::new(),
            )
            .expect("valid metric")
        };
        CallMetrics(Arc::new(Inner {
            tables: std::array::from_fn(|_| OnceLock::new()),
            uncached: Mutex::new(BTreeMap::new()),
            descs: vec![
                desc(
                    CALLS,
                    "RPC calls this daemon answered, by program, procedure and result (ok, error).",
                    &["program", "procedure", "result"],
                ),
                desc(
                    DURATION,
                    "Duration of RPC calls, from the request being read to the reply being sent, by program and procedure.",
                    &["program", "procedure"],
                ),
            ],
        }))
    }

    /// Counts one finished call.
    pub(super) fn record(
        &self,
        program: &'static str,
        number: i32,
        procedure: &'static str,
        ok: bool,
        d: Duration,
    ) {
        match self.cached(program, number, procedure) {
            Some(stat) => stat.record(ok, d),
            None => {
                let stat = {
                    let mut map = self.0.uncached.lock().unwrap_or_else(|e| e.into_inner());
                    map.entry((program.to_owned(), procedure.to_owned()))
                        .or_insert_with(|| Arc::new(CallStat::new(program, procedure)))
                        .clone()
                };
                stat.record(ok, d);
            }
        }
    }

    /// The cached counts of a call, created on first use; `None` when the
    /// call does not fit the cache (number out of range, too many programs,
    /// or a second name for a number already seen).
    fn cached(&self, program: &'static str, number: i32, procedure: &'static str) -> Option<&CallStat> {
        let index = usize::try_from(number).ok().filter(|i| *i < PROCEDURE_SLOTS)?;
        let table = self.0.tables.iter().find_map(|slot| {
            let table = slot.get_or_init(|| ProcedureTable {
                program,
                slots: (0..PROCEDURE_SLOTS).map(|_| OnceLock::new()).collect(),
            });
            // The same `&'static str` almost always: compare addresses first.
            (std::ptr::eq(table.program, program) || table.program == program).then_some(table)
        })?;
        let stat = table.slots[index].get_or_init(|| CallStat::new(program, procedure));
        (stat.procedure == procedure).then_some(stat)
    }

    fn families(&self) -> Vec<MetricFamily> {
        let mut calls = Vec::new();
        let mut durations = Vec::new();
        let mut add = |stat: &CallStat| {
            let (ok, error, sum_ns, buckets) = stat.totals();
            for (result, n) in [("ok", ok), ("error", error)] {
                let mut c = proto::Counter::default();
                c.set_value(n as f64);
                let mut m = proto::Metric::default();
                m.set_label(labels(&[
                    ("program", &stat.program),
                    ("procedure", &stat.procedure),
                    ("result", result),
                ]));
                m.set_counter(c);
                calls.push(m);
            }
            let mut h = proto::Histogram::default();
            let mut cumulative = 0;
            h.set_bucket(
                DURATION_BUCKETS
                    .iter()
                    .zip(&buckets)
                    .map(|(bound, n)| {
                        cumulative += n;
                        let mut b = proto::Bucket::default();
                        b.set_upper_bound(*bound);
                        b.set_cumulative_count(cumulative);
                        b
                    })
                    .collect(),
            );
            h.set_sample_count(ok + error);
            h.set_sample_sum(sum_ns as f64 / 1e9);
            let mut m = proto::Metric::default();
            m.set_label(labels(&[
                ("program", &stat.program),
                ("procedure", &stat.procedure),
            ]));
            m.set_histogram(h);
            durations.push(m);
        };
        for table in self.0.tables.iter().filter_map(OnceLock::get) {
            table.slots.iter().filter_map(OnceLock::get).for_each(&mut add);
        }
        let uncached: Vec<Arc<CallStat>> = self
            .0
            .uncached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        uncached.iter().for_each(|s| add(s));
        let family = |desc: &Desc, kind, metrics: Vec<proto::Metric>| {
            let mut f = MetricFamily::default();
            f.set_name(desc.fq_name.clone());
            f.set_help(desc.help.clone());
            f.set_field_type(kind);
            f.set_metric(metrics);
            f
        };
        let mut out = Vec::new();
        if !calls.is_empty() {
            out.push(family(&self.0.descs[0], MetricType::COUNTER, calls));
            out.push(family(&self.0.descs[1], MetricType::HISTOGRAM, durations));
        }
        out
    }
}

impl Collector for CallMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.families()
    }
}
