//! The outbox worker: takes due Bundles from [`crate::store::Outbox`], sends each with
//! [`crate::fhir::client::FhirClient`], and records the result durably before moving on.
//!
//! Invariants: an entry leaves `Pending` only after the server's answer is recorded; retries
//! back off exponentially with jitter (capped), honour `Retry-After`, and stop after
//! `max_attempts` (dead letter, visible to operators). Logs carry ids, statuses and counts only.
//! Each result is recorded against the revision that was sent: a Bundle replaced while its
//! POST was in flight stays pending and goes out next (see [`crate::store::outbox`]).
//! The store's calls read and fsync the disk, so they run on tokio's blocking pool, never on the
//! async threads that serve requests.

use std::time::Duration;

use rand::Rng;
use tracing::Instrument;

use crate::fhir::client::{Attempt, FhirClient};
use crate::store::{outbox::now_ms, DeliveryState, Outbox, OutboxEntry, StoreError};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// First retry waits about this long; each further one doubles it.
    pub base: Duration,
    pub max: Duration,
    /// Attempts before an entry becomes a dead letter.
    pub max_attempts: u32,
    /// Longest `Retry-After` honoured as given.
    pub max_retry_after: Duration,
    /// Entries one pass claims from a shared (PostgreSQL) outbox, and how long the claim keeps
    /// other processes off them: it must cover sending all of them, so it is at least
    /// `claim_batch` request timeouts (see [`crate::store::Outbox::claim_due`]).
    pub claim_batch: usize,
    pub claim_lease: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(300),
            max_attempts: 20,
            max_retry_after: Duration::from_secs(3600),
            claim_batch: 4,
            claim_lease: Duration::from_secs(150),
        }
    }
}

impl RetryPolicy {
    /// The default policy with a claim lease that covers a batch of requests of
    /// `request_timeout` each, plus a margin.
    pub fn for_timeout(request_timeout: Duration) -> Self {
        let d = Self::default();
        let claim_lease =
            request_timeout.saturating_mul(d.claim_batch as u32) + Duration::from_secs(10);
        Self { claim_lease, ..d }
    }

    /// "Equal jitter": half the exponential delay fixed, half random, so a crowd of retries
    /// after an outage spreads out instead of arriving together.
    pub fn delay(&self, attempts: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX))
            .min(self.max);
        let half = exp / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }
}

/// Counts from one pass over the due entries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
    /// Attempts whose Bundle was replaced (or deleted) while in flight: their answer changed
    /// nothing; a replacing Bundle is still pending.
    pub superseded: usize,
}

/// Runs a store call on the blocking pool (sled reads and fsyncs the disk).
async fn store<T, F>(outbox: &Outbox, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Outbox) -> Result<T, StoreError> + Send + 'static,
{
    let outbox = outbox.clone();
    match tokio::task::spawn_blocking(move || f(&outbox)).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Interrupted),
    }
}

/// Records one attempt's result; false when it no longer applied (replaced or deleted while
/// in flight).
async fn record<F>(outbox: &Outbox, sent: &OutboxEntry, f: F) -> Result<bool, StoreError>
where
    F: FnOnce(&Outbox, &str, u64) -> Result<OutboxEntry, StoreError> + Send + 'static,
{
    let (id, revision) = (sent.id.clone(), sent.revision);
    match store(outbox, move |o| f(o, &id, revision)).await {
        Ok(now) if now.revision == revision => Ok(true),
        Ok(_) => {
            tracing::info!("bundle was replaced while in flight; the new one is sent next");
            Ok(false)
        }
        Err(StoreError::NotFound(_)) => {
            tracing::info!("outbox entry was deleted while in flight");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

enum Outcome {
    Delivered,
    Retrying,
    Dead,
    Superseded,
}

/// Sends one entry and records the answer against the revision sent.
async fn attempt(
    outbox: &Outbox,
    client: &FhirClient,
    policy: &RetryPolicy,
    entry: OutboxEntry,
) -> Result<Outcome, StoreError> {
    let (outcome, applied) = match client.post_transaction(&entry.bundle).await {
        Attempt::Delivered { status, locations } => {
            tracing::info!(status, resources = locations.len(), "bundle delivered");
            let applied = record(outbox, &entry, move |o, id, rev| {
                o.mark_delivered(id, rev, status, locations)
            });
            (Outcome::Delivered, applied.await?)
        }
        Attempt::Retry {
            status,
            reason,
            after,
        } => {
            let attempts = entry.attempts + 1;
            if attempts >= policy.max_attempts {
                tracing::warn!(?status, attempts, "giving up: dead letter");
                let error = format!("gave up after {attempts} attempts; last: {reason}");
                let applied = record(outbox, &entry, move |o, id, rev| {
                    o.mark_failed(id, rev, status, error, None, None)
                });
                (Outcome::Dead, applied.await?)
            } else {
                let wait = after
                    .map(|a| a.min(policy.max_retry_after))
                    .unwrap_or_else(|| policy.delay(entry.attempts));
                tracing::info!(?status, wait_ms = wait.as_millis() as u64, "will retry");
                let at = now_ms() + wait.as_millis() as u64;
                let applied = record(outbox, &entry, move |o, id, rev| {
                    o.mark_failed(id, rev, status, reason, None, Some(at))
                });
                (Outcome::Retrying, applied.await?)
            }
        }
        Attempt::Dead {
            status,
            reason,
            outcome,
        } => {
            tracing::warn!(?status, "delivery refused: dead letter");
            let applied = record(outbox, &entry, move |o, id, rev| {
                o.mark_failed(id, rev, status, reason, outcome, None)
            });
            (Outcome::Dead, applied.await?)
        }
    };
    Ok(if applied {
        outcome
    } else {
        Outcome::Superseded
    })
}

/// Sends the entries due now (in a shared outbox: the batch this process claimed), one at a
/// time (a FHIR server applies transactions serially anyway), and records each result.
pub async fn deliver_due(
    outbox: &Outbox,
    client: &FhirClient,
    policy: &RetryPolicy,
) -> Result<PassReport, StoreError> {
    let mut report = PassReport::default();
    let now = now_ms();
    let (lease, batch) = (policy.claim_lease.as_millis() as u64, policy.claim_batch);
    for entry in store(outbox, move |o| o.claim_due(now, lease, batch)).await? {
        let span = tracing::info_span!("deliver", job = %entry.id, attempt = entry.attempts + 1);
        match attempt(outbox, client, policy, entry)
            .instrument(span)
            .await?
        {
            Outcome::Delivered => report.delivered += 1,
            Outcome::Retrying => report.retrying += 1,
            Outcome::Dead => report.dead += 1,
            Outcome::Superseded => report.superseded += 1,
        }
    }
    Ok(report)
}

/// Runs passes until nothing is pending (every entry delivered or dead) or `deadline` passes;
/// sleeps until the next entry falls due in between. Returns the totals.
pub async fn drain(
    outbox: &Outbox,
    client: &FhirClient,
    policy: &RetryPolicy,
    deadline: Option<std::time::Instant>,
) -> Result<PassReport, StoreError> {
    let mut total = PassReport::default();
    loop {
        let r = deliver_due(outbox, client, policy).await?;
        total.delivered += r.delivered;
        total.dead += r.dead;
        total.superseded += r.superseded;
        total.retrying = r.retrying;
        let Some(next) = store(outbox, |o| o.next_due()).await? else {
            total.retrying = 0;
            return Ok(total);
        };
        let wait = Duration::from_millis(next.saturating_sub(now_ms()));
        if let Some(d) = deadline {
            if std::time::Instant::now() + wait > d {
                total.retrying = store(outbox, |o| o.pending_count()).await?;
                return Ok(total);
            }
        }
        tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
    }
}

/// One destination of [`run_all`]: a name for logs, its outbox and the client that sends it.
pub struct Target {
    pub name: String,
    pub outbox: Outbox,
    pub client: FhirClient,
}

/// The long-running worker for one outbox: a pass whenever something is due, until `stop`.
pub async fn run(
    outbox: Outbox,
    client: FhirClient,
    policy: RetryPolicy,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let target = Target {
        name: String::new(),
        outbox,
        client,
    };
    run_all(vec![target], policy, stop, |_, _| {}).await
}

/// The long-running worker for `serve`: passes over every target's due Bundles, one target at
/// a time, until `stop`; `on_pass` sees each target's counts (metrics, liveness).
pub async fn run_all(
    targets: Vec<Target>,
    policy: RetryPolicy,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut on_pass: impl FnMut(&str, &PassReport),
) {
    loop {
        let mut wait = Duration::from_secs(1);
        for t in &targets {
            let span = tracing::info_span!("delivery", ehr = %t.name);
            match deliver_due(&t.outbox, &t.client, &policy)
                .instrument(span)
                .await
            {
                Ok(r) => on_pass(&t.name, &r),
                Err(e) => tracing::error!(ehr = %t.name, error = %e, "outbox pass failed"),
            }
            if let Ok(Some(next)) = store(&t.outbox, |o| o.next_due()).await {
                wait = wait.min(Duration::from_millis(next.saturating_sub(now_ms())));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Counts by state, for operators.
pub fn summary(outbox: &Outbox) -> Result<[(DeliveryState, usize); 3], StoreError> {
    let all = outbox.list()?;
    let n = |s| all.iter().filter(|e| e.state == s).count();
    Ok([
        (DeliveryState::Pending, n(DeliveryState::Pending)),
        (DeliveryState::Delivered, n(DeliveryState::Delivered)),
        (DeliveryState::DeadLetter, n(DeliveryState::DeadLetter)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
            ..Default::default()
        };
        for attempts in 0..40 {
            let exp = (2u64 << attempts.min(20)).min(60);
            let d = p.delay(attempts);
            assert!(
                d >= Duration::from_secs(exp) / 2 && d <= Duration::from_secs(exp),
                "{attempts}: {d:?}"
            );
        }
        let spread: std::collections::BTreeSet<_> = (0..20).map(|_| p.delay(5)).collect();
        assert!(spread.len() > 1, "jitter varies");
    }
}
