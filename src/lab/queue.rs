//! `fhirscribe eval queue`: what the shared job queue itself costs, without the pipeline.
//! Against a PostgreSQL store it measures
//! - claim latency: `JOBS` queued jobs taken one at a time by one worker (p50/p99 of each
//!   `claim_next` call: the `FOR UPDATE SKIP LOCKED` select, the lease update, the audit row);
//! - claims per second with a no-op pipeline: `W` threads each claim a job and finish it at
//!   once (claim + finish transactions, as a real worker does around the pipeline), for each
//!   `W` asked for. This is where the database becomes the limit when machines are added.
//!
//! Run it on a throwaway database: it creates and deletes jobs named `queue-bench-…`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::healthscribe::MedicalScribeJobStatus;
use crate::store::jobs::{conformance, JobStore};
use crate::store::pg::PgJobStore;
use crate::store::StoreError;

/// One configuration's figures.
#[derive(Debug, Clone)]
pub struct ClaimFigures {
    pub workers: usize,
    pub jobs: usize,
    pub secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl ClaimFigures {
    pub fn per_sec(&self) -> f64 {
        self.jobs as f64 / self.secs
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn fill(store: &PgJobStore, tag: &str, jobs: usize) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::with_capacity(jobs);
    for i in 0..jobs {
        let name = format!("queue-bench-{tag}-{i:05}");
        store.create_job(&conformance::record(store, &name), usize::MAX)?;
        names.push(name);
    }
    Ok(names)
}

/// Queues `jobs` jobs, lets `workers` threads claim and finish them (no pipeline), deletes
/// them; the figures of the claims.
pub fn measure(
    store: &PgJobStore,
    workers: usize,
    jobs: usize,
) -> Result<ClaimFigures, StoreError> {
    let tag = format!("{workers}w-{}", uuid::Uuid::new_v4().simple());
    let names = fill(store, &tag, jobs)?;
    let lease = Duration::from_secs(60);
    let latencies = Mutex::new(Vec::with_capacity(jobs));
    let failure: Mutex<Option<StoreError>> = Mutex::new(None);
    let t = Instant::now();
    std::thread::scope(|s| {
        for w in 0..workers {
            let (latencies, failure) = (&latencies, &failure);
            s.spawn(move || {
                let worker = format!("queue-bench/w{w}");
                loop {
                    let t = Instant::now();
                    let claimed = store.claim_next(&worker, lease);
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    let mut job = match claimed {
                        Ok(Some(j)) => j,
                        Ok(None) => return,
                        Err(e) => {
                            *failure.lock().unwrap() = Some(e);
                            return;
                        }
                    };
                    latencies.lock().unwrap().push(ms);
                    job.status = MedicalScribeJobStatus::Completed;
                    if let Err(e) = store.finish_job(&job, &[("noop.json", b"{}")], None) {
                        *failure.lock().unwrap() = Some(e);
                        return;
                    }
                }
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    for n in &names {
        store.delete_job(n)?;
    }
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    let mut l = latencies.into_inner().unwrap();
    l.sort_by(f64::total_cmp);
    Ok(ClaimFigures {
        workers,
        jobs: l.len(),
        secs,
        p50_ms: percentile(&l, 0.5),
        p99_ms: percentile(&l, 0.99),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(super::percentile(&v, 0.5), 51.0);
        assert_eq!(super::percentile(&v, 0.99), 99.0);
        assert_eq!(super::percentile(&[], 0.5), 0.0);
    }
}
