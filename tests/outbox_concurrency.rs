//! The outbox under concurrency: an `enqueue` that replaces a job's Bundle races the worker's
//! `mark_delivered` / `mark_failed` and an operator's `retry`, on real threads, many times. No
//! interleaving may lose the new Bundle or mark it delivered when only the old one was sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use fhirscribe::store::outbox::now_ms;
use fhirscribe::store::{DeliveryState, Enqueued, Outbox, OutboxEntry};
use serde_json::{json, Value};

const ROUNDS: usize = 400;

/// A Bundle big enough that (de)serialising it takes a while, which widens the race windows.
fn bundle(job: usize, version: u32) -> Value {
    let entries: Vec<Value> = (0..40)
        .map(|n| {
            json!({"request": {"method": "POST", "url": "Condition"},
                   "resource": {"resourceType": "Condition", "id": format!("c{n}"),
                                "note": [{"text": format!("job {job} version {version} item {n}")}]}})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction",
           "identifier": {"value": format!("job-{job}"), "version": version}, "entry": entries})
}

fn id(i: usize) -> String {
    format!("job-{i}")
}

/// Runs `ROUNDS` races: for each job, `worker` (given the entry it read, as a delivery attempt
/// would) and an `enqueue` of version 1 start together. Returns, per job, what the worker sent,
/// what the enqueue answered and the entry afterwards.
fn race(
    outbox: &Outbox,
    worker: impl Fn(&Outbox, &OutboxEntry) + Send + Sync + 'static,
) -> Vec<(OutboxEntry, Enqueued, OutboxEntry)> {
    let barrier = Arc::new(Barrier::new(2));
    let w = {
        let (outbox, barrier) = (outbox.clone(), barrier.clone());
        std::thread::spawn(move || {
            (0..ROUNDS)
                .map(|i| {
                    barrier.wait();
                    let sent = outbox.get(&id(i)).unwrap().unwrap();
                    worker(&outbox, &sent);
                    sent
                })
                .collect::<Vec<_>>()
        })
    };
    let p = {
        let (outbox, barrier) = (outbox.clone(), barrier.clone());
        std::thread::spawn(move || {
            (0..ROUNDS)
                .map(|i| {
                    barrier.wait();
                    outbox.enqueue(&id(i), bundle(i, 1)).unwrap()
                })
                .collect::<Vec<_>>()
        })
    };
    let sent = w.join().unwrap();
    let answers = p.join().unwrap();
    sent.into_iter()
        .zip(answers)
        .enumerate()
        .map(|(i, (s, a))| (s, a, outbox.get(&id(i)).unwrap().unwrap()))
        .collect()
}

fn fresh(state: impl Fn(&Outbox, &str)) -> (tempfile::TempDir, Outbox) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    for i in 0..ROUNDS {
        assert_eq!(outbox.enqueue(&id(i), bundle(i, 0)).unwrap(), Enqueued::New);
        state(&outbox, &id(i));
    }
    (dir, outbox)
}

/// Fails with counts of each kind of violation (and the first example) when there are any.
fn check(what: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "{what}: {} of {ROUNDS} races went wrong, e.g. {}",
        violations.len(),
        violations[0]
    );
}

#[test]
fn replacing_a_bundle_while_the_old_one_is_marked_delivered_loses_nothing() {
    let (_dir, outbox) = fresh(|_, _| {});
    let results = race(&outbox, |o, sent| {
        o.mark_delivered(&sent.id, sent.revision, 200, vec![])
            .unwrap();
    });
    let mut bad = Vec::new();
    for (i, (sent, answer, after)) in results.iter().enumerate() {
        match answer {
            Enqueued::Replaced => {
                if after.bundle != bundle(i, 1) {
                    bad.push(format!(
                        "{}: the replacing Bundle was lost (lost update)",
                        sent.id
                    ));
                } else if after.state == DeliveryState::Delivered && sent.bundle != bundle(i, 1) {
                    bad.push(format!(
                        "{}: marked delivered, but only the old Bundle was sent",
                        sent.id
                    ));
                }
            }
            Enqueued::AlreadyDelivered => {
                if after.state != DeliveryState::Delivered || after.bundle != bundle(i, 0) {
                    bad.push(format!("{}: delivered entry changed: {after:?}", sent.id));
                }
            }
            other => bad.push(format!("{}: enqueue answered {other:?}", sent.id)),
        }
    }
    check("enqueue-replace vs mark_delivered", bad);
}

#[test]
fn replacing_a_bundle_while_the_old_one_is_marked_failed_loses_nothing() {
    let far = u64::MAX / 2;
    let (_dir, outbox) = fresh(|_, _| {});
    let results = race(&outbox, move |o, sent| {
        o.mark_failed(
            &sent.id,
            sent.revision,
            Some(503),
            "HTTP 503".into(),
            None,
            Some(far),
        )
        .unwrap();
    });
    let mut bad = Vec::new();
    for (i, (sent, answer, after)) in results.iter().enumerate() {
        if *answer != Enqueued::Replaced {
            bad.push(format!("{}: enqueue answered {answer:?}", sent.id));
        } else if after.bundle != bundle(i, 1) {
            bad.push(format!(
                "{}: the replacing Bundle was lost (lost update)",
                sent.id
            ));
        } else if after.state != DeliveryState::Pending {
            bad.push(format!("{}: the new Bundle is {:?}", sent.id, after.state));
        } else if sent.bundle != bundle(i, 1) && after.next_attempt_at == far {
            bad.push(format!(
                "{}: the new Bundle waits for the old one's backoff",
                sent.id
            ));
        }
    }
    check("enqueue-replace vs mark_failed", bad);
}

#[test]
fn replacing_a_dead_letter_while_an_operator_retries_it_loses_nothing() {
    let (_dir, outbox) = fresh(|o, id| {
        let rev = o.get(id).unwrap().unwrap().revision;
        o.mark_failed(id, rev, Some(422), "invalid".into(), None, None)
            .unwrap();
    });
    let results = race(&outbox, |o, sent| {
        o.retry(&sent.id).unwrap();
    });
    let mut bad = Vec::new();
    for (i, (sent, answer, after)) in results.iter().enumerate() {
        if *answer != Enqueued::Replaced {
            bad.push(format!("{}: enqueue answered {answer:?}", sent.id));
        } else if after.bundle != bundle(i, 1) {
            bad.push(format!(
                "{}: the replacing Bundle was lost (lost update)",
                sent.id
            ));
        } else if after.state != DeliveryState::Pending {
            bad.push(format!("{}: the new Bundle is {:?}", sent.id, after.state));
        }
    }
    check("enqueue-replace vs retry", bad);
}

/// A worker loop (`due` → "POST" → `mark_delivered`) runs while every job's Bundle is replaced
/// again and again: each job ends delivered with the last Bundle it accepted, and that Bundle
/// is one the worker sent.
#[test]
fn the_last_accepted_bundle_of_every_job_is_the_one_delivered() {
    const JOBS: usize = 40;
    const VERSIONS: u32 = 10;
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (outbox, done) = (outbox.clone(), done.clone());
        std::thread::spawn(move || {
            let mut sent = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = outbox.due(now_ms()).unwrap();
                if batch.is_empty() && finished && outbox.pending_count().unwrap() == 0 {
                    return sent;
                }
                for e in batch {
                    outbox
                        .mark_delivered(&e.id, e.revision, 200, vec![])
                        .unwrap();
                    sent.push((e.id, e.bundle));
                }
            }
        })
    };
    let mut last = vec![None; JOBS];
    for v in 0..VERSIONS {
        for (j, last) in last.iter_mut().enumerate() {
            match outbox.enqueue(&id(j), bundle(j, v)).unwrap() {
                Enqueued::New | Enqueued::Replaced => *last = Some(v),
                Enqueued::AlreadyDelivered => {}
                Enqueued::Unchanged => panic!("every version differs"),
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    let sent = worker.join().unwrap();
    let mut bad = Vec::new();
    for (j, last) in last.iter().enumerate() {
        let e = outbox.get(&id(j)).unwrap().unwrap();
        let want = bundle(j, last.unwrap());
        if e.state != DeliveryState::Delivered {
            bad.push(format!("{}: ended {:?}", e.id, e.state));
        } else if e.bundle != want {
            bad.push(format!("{}: the last accepted Bundle was lost", e.id));
        } else if !sent.iter().any(|(i, b)| *i == e.id && *b == want) {
            bad.push(format!(
                "{}: delivered, but its Bundle was never sent",
                e.id
            ));
        }
    }
    assert!(bad.is_empty(), "{} of {JOBS} jobs: {bad:?}", bad.len());
}
