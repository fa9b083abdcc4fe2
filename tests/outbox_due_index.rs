//! `due`, `next_due` and `pending_count` are served from the due index: only pending entries,
//! earliest first, and nothing else in the store is read. Records that are not pending are made
//! unreadable on purpose: a pass that decoded every entry would fail on them.

use fhirscribe::store::outbox::now_ms;
use fhirscribe::store::{open_db, DeliveryState, Outbox, StoreError};
use serde_json::json;

const N: usize = 2000;

#[test]
fn due_reads_only_pending_entries_in_due_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).unwrap();
    let outbox = Outbox::in_db(&db).unwrap();
    let now = now_ms();
    let mut due_now = Vec::new();
    let mut later = Vec::new();
    for i in 0..N {
        let id = format!("job-{i:05}");
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "n": i});
        outbox.enqueue(&id, bundle).unwrap();
        let rev = outbox.get(&id).unwrap().unwrap().revision;
        match i % 10 {
            // Most of a long-running store is history: delivered or dead.
            0..=5 => {
                outbox.mark_delivered(&id, rev, 200, vec![]).unwrap();
            }
            6 => {
                outbox
                    .mark_failed(&id, rev, Some(422), "invalid".into(), None, None)
                    .unwrap();
            }
            // Backing off: due at scattered past times (not in id order) ...
            7 | 8 => {
                let at = now - 1 - ((i * 7919) % 100_000) as u64;
                outbox
                    .mark_failed(&id, rev, Some(503), "HTTP 503".into(), None, Some(at))
                    .unwrap();
                due_now.push((at, id));
            }
            // ... or later.
            _ => {
                let at = now + 3_600_000 + i as u64;
                outbox
                    .mark_failed(&id, rev, None, "timed out".into(), None, Some(at))
                    .unwrap();
                later.push((at, id));
            }
        }
    }
    due_now.sort();
    later.sort();

    // Overwrite every delivered and dead record with garbage, behind the outbox's back.
    let entries = db.open_tree("fhir_outbox").unwrap();
    let mut spoiled = 0;
    for e in outbox.list().unwrap() {
        if e.state != DeliveryState::Pending {
            entries.insert(e.id.as_bytes(), &b"{not json"[..]).unwrap();
            spoiled += 1;
        }
    }
    assert_eq!(spoiled, N * 7 / 10);
    assert!(matches!(outbox.list(), Err(StoreError::Corrupt { .. })));

    let got: Vec<(u64, String)> = outbox
        .due(now)
        .unwrap()
        .into_iter()
        .map(|e| {
            assert_eq!(e.state, DeliveryState::Pending);
            (e.next_attempt_at, e.id)
        })
        .collect();
    assert_eq!(got, due_now, "exactly the due entries, earliest first");
    assert_eq!(outbox.pending_count().unwrap(), due_now.len() + later.len());
    assert_eq!(outbox.next_due().unwrap(), Some(due_now[0].0));

    // Delivering the due ones leaves the later ones, which fall due at their own time.
    for (_, id) in &due_now {
        let rev = outbox.get(id).unwrap().unwrap().revision;
        outbox.mark_delivered(id, rev, 200, vec![]).unwrap();
    }
    assert!(outbox.due(now).unwrap().is_empty());
    assert_eq!(outbox.next_due().unwrap(), Some(later[0].0));
    let at_first = outbox.due(later[0].0).unwrap();
    assert_eq!(at_first.len(), 1);
    assert_eq!(at_first[0].id, later[0].1);
    let all_later: Vec<String> = outbox
        .due(u64::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        all_later,
        later.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>()
    );
    assert_eq!(outbox.pending_count().unwrap(), later.len());
}
