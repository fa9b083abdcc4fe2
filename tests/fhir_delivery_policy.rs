//! The delivery policy for answers a real FHIR server will not give on demand (429 with
//! Retry-After, 503, a 2xx that is not a transaction-response). A scripted HTTP responder on
//! loopback stands in for the server here, and only here: everything else runs against HFS in
//! tests/fhir_writeback.rs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fhirscribe::delivery::{self, RetryPolicy};
use fhirscribe::fhir::client::{Attempt, FhirClient};
use fhirscribe::store::{DeliveryState, Outbox};
use serde_json::json;

/// A scripted answer: status, extra headers, body.
type Answer = (u16, Vec<(&'static str, String)>, String);

/// Answers each request with the next scripted (status, headers, body); repeats the last one.
/// Returns the base URL and the number of requests seen.
fn scripted(answers: Vec<Answer>) -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(0usize));
    let count = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let n = {
                let mut c = count.lock().unwrap();
                *c += 1;
                *c
            };
            let (status, headers, body) = answers[(n - 1).min(answers.len() - 1)].clone();
            let mut resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/fhir+json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                resp.push_str(&format!("{k}: {v}\r\n"));
            }
            resp.push_str("\r\n");
            resp.push_str(&body);
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    (base, seen)
}

fn client(base: &str) -> FhirClient {
    FhirClient::new(
        base,
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
        None,
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn bundle() -> serde_json::Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": []})
}

#[test]
fn each_kind_of_answer_is_classified() {
    let rt = rt();
    let oo = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error",
        "code": "invalid", "diagnostics": "Condition.subject: minimum 1"}]})
    .to_string();
    let cases: Vec<(Answer, &str)> = vec![
        ((429, vec![("Retry-After", "7".into())], String::new()), "retry-7s"),
        ((503, vec![], oo.clone()), "retry"),
        ((408, vec![], String::new()), "retry"),
        ((400, vec![], oo.clone()), "dead-outcome"),
        ((404, vec![], String::new()), "dead"),
        ((200, vec![], json!({"resourceType": "Patient"}).to_string()), "dead"),
        (
            (200, vec![], json!({"resourceType": "Bundle", "type": "transaction-response",
                "entry": [{"response": {"status": "201 Created", "location": "Condition/1/_history/1"}}]}).to_string()),
            "delivered",
        ),
    ];
    for (answer, expect) in cases {
        let status = answer.0;
        let (base, _) = scripted(vec![answer]);
        let got = rt.block_on(client(&base).post_transaction(&bundle()));
        match (expect, &got) {
            ("retry-7s", Attempt::Retry { after, .. }) => {
                assert_eq!(*after, Some(Duration::from_secs(7)))
            }
            (
                "retry",
                Attempt::Retry {
                    status: s, reason, ..
                },
            ) => {
                assert_eq!(*s, Some(status));
                if status == 503 {
                    assert!(reason.contains("minimum 1"), "{reason}");
                }
            }
            (
                "dead-outcome",
                Attempt::Dead {
                    outcome, reason, ..
                },
            ) => {
                assert!(outcome.is_some());
                assert!(reason.starts_with("HTTP 400"), "{reason}");
            }
            ("dead", Attempt::Dead { .. }) => {}
            ("delivered", Attempt::Delivered { locations, .. }) => {
                assert_eq!(locations, &vec!["Condition/1/_history/1".to_string()])
            }
            _ => panic!("HTTP {status}: expected {expect}, got {got:?}"),
        }
    }
    // Nobody listening: a connection error is worth retrying.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match rt.block_on(client(&format!("http://127.0.0.1:{port}")).post_transaction(&bundle())) {
        Attempt::Retry {
            status: None,
            reason,
            ..
        } => {
            assert!(reason.contains("connection"), "{reason}")
        }
        other => panic!("refused connection: {other:?}"),
    }
}

#[test]
fn a_server_that_keeps_failing_ends_as_a_dead_letter_after_max_attempts() {
    let (base, seen) = scripted(vec![(503, vec![], String::new())]);
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    outbox.enqueue("job-1", bundle()).unwrap();
    let policy = RetryPolicy {
        base: Duration::from_millis(10),
        max: Duration::from_millis(40),
        max_attempts: 4,
        ..Default::default()
    };
    let r = rt()
        .block_on(delivery::drain(&outbox, &client(&base), &policy, None))
        .unwrap();
    assert_eq!((r.delivered, r.dead), (0, 1));
    let e = outbox.get("job-1").unwrap().unwrap();
    assert_eq!(e.state, DeliveryState::DeadLetter);
    assert_eq!(e.attempts, 4);
    assert_eq!(*seen.lock().unwrap(), 4);
    assert!(e.last_error.unwrap().contains("gave up after 4 attempts"));
}

#[test]
fn retry_after_is_honoured_before_the_next_attempt() {
    let ok =
        json!({"resourceType": "Bundle", "type": "transaction-response", "entry": []}).to_string();
    let (base, seen) = scripted(vec![
        (429, vec![("Retry-After", "1".into())], String::new()),
        (200, vec![], ok),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    outbox.enqueue("job-2", bundle()).unwrap();
    let started = std::time::Instant::now();
    let r = rt()
        .block_on(delivery::drain(
            &outbox,
            &client(&base),
            &RetryPolicy::default(),
            None,
        ))
        .unwrap();
    assert_eq!(r.delivered, 1);
    assert_eq!(*seen.lock().unwrap(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited for Retry-After"
    );
}
