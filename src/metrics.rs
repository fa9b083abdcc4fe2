//! Prometheus metrics of the service, rendered in the text exposition format by hand: a few
//! counters, gauges and histograms do not need a metrics framework.
//!
//! Invariant: label values are fixed vocabularies (statuses, stage names, outcome and reason
//! labels), never a job name, a user or any content, so a scrape can never leak PHI and the
//! number of series stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Upper bounds (seconds) of the duration histograms' buckets.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

/// The service's metrics; one instance shared by the API, the workers and the delivery loop.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    gauges: Mutex<BTreeMap<(&'static str, String), i64>>,
    histograms: Mutex<BTreeMap<(&'static str, String), Histogram>>,
    /// Microseconds the workers spent on jobs (busy share = this / wall time / workers).
    worker_busy_us: AtomicU64,
    audio_ms: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `name{label="value"}` parts: one optional label per series keeps rendering simple.
fn series(name: &str, label: &str) -> String {
    if label.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{label}}}")
    }
}

impl Metrics {
    /// Adds 1 to a counter; `label` is `key="value"` from a fixed vocabulary, or empty.
    pub fn inc(&self, name: &'static str, label: impl Into<String>) {
        *lock(&self.counters)
            .entry((name, label.into()))
            .or_default() += 1;
    }

    /// Adds `n` to a counter.
    pub fn add(&self, name: &'static str, label: impl Into<String>, n: u64) {
        if n > 0 {
            *lock(&self.counters)
                .entry((name, label.into()))
                .or_default() += n;
        }
    }

    pub fn gauge_add(&self, name: &'static str, label: impl Into<String>, delta: i64) {
        *lock(&self.gauges).entry((name, label.into())).or_default() += delta;
    }

    pub fn gauge_set(&self, name: &'static str, label: impl Into<String>, value: i64) {
        lock(&self.gauges).insert((name, label.into()), value);
    }

    pub fn observe(&self, name: &'static str, label: impl Into<String>, secs: f64) {
        lock(&self.histograms)
            .entry((name, label.into()))
            .or_default()
            .observe(secs);
    }

    pub fn add_worker_busy(&self, d: std::time::Duration) {
        self.worker_busy_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn add_audio_secs(&self, secs: f64) {
        self.audio_ms
            .fetch_add((secs * 1000.0) as u64, Ordering::Relaxed);
    }

    pub fn worker_busy_secs(&self) -> f64 {
        self.worker_busy_us.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut typed = std::collections::BTreeSet::new();
        let mut header = |out: &mut String, name: &str, kind: &str| {
            if typed.insert(name.to_owned()) {
                let _ = writeln!(out, "# TYPE {name} {kind}");
            }
        };
        for ((name, label), v) in lock(&self.counters).iter() {
            header(&mut out, name, "counter");
            let _ = writeln!(out, "{} {v}", series(name, label));
        }
        for ((name, label), v) in lock(&self.gauges).iter() {
            header(&mut out, name, "gauge");
            let _ = writeln!(out, "{} {v}", series(name, label));
        }
        for ((name, label), h) in lock(&self.histograms).iter() {
            header(&mut out, name, "histogram");
            let sep = if label.is_empty() { "" } else { "," };
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{label}{sep}le=\"{b}\"}} {}",
                    h.counts.get(i).copied().unwrap_or(0)
                );
            }
            let _ = writeln!(out, "{name}_bucket{{{label}{sep}le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{} {}", series(&format!("{name}_sum"), label), h.sum);
            let _ = writeln!(
                out,
                "{} {}",
                series(&format!("{name}_count"), label),
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# TYPE fhirscribe_worker_busy_seconds_total counter\nfhirscribe_worker_busy_seconds_total {}",
            self.worker_busy_secs()
        );
        let _ = writeln!(
            out,
            "# TYPE fhirscribe_audio_seconds_total counter\nfhirscribe_audio_seconds_total {}",
            self.audio_ms.load(Ordering::Relaxed) as f64 / 1000.0
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.inc("fhirscribe_auth_failures_total", "reason=\"expired\"");
        m.inc("fhirscribe_auth_failures_total", "reason=\"expired\"");
        m.gauge_set("fhirscribe_queue_depth", "", 3);
        m.observe("fhirscribe_stage_seconds", "stage=\"decode\"", 0.2);
        m.add_audio_secs(1.5);
        let t = m.render();
        assert!(
            t.contains("# TYPE fhirscribe_auth_failures_total counter"),
            "{t}"
        );
        assert!(
            t.contains("fhirscribe_auth_failures_total{reason=\"expired\"} 2"),
            "{t}"
        );
        assert!(t.contains("fhirscribe_queue_depth 3"), "{t}");
        assert!(
            t.contains("fhirscribe_stage_seconds_bucket{stage=\"decode\",le=\"0.25\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("fhirscribe_stage_seconds_bucket{stage=\"decode\",le=\"0.1\"} 0"),
            "{t}"
        );
        assert!(
            t.contains("fhirscribe_stage_seconds_count{stage=\"decode\"} 1"),
            "{t}"
        );
        assert!(t.contains("fhirscribe_audio_seconds_total 1.5"), "{t}");
    }
}
