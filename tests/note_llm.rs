//! The optional model rewrite against real peers on loopback: a server that answers well, one
//! that adds a fact, one that is too slow, one that sends garbage, and a closed port.

mod note_common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use fhirscribe::healthscribe::{NoteTemplate, Pronouns};
use fhirscribe::note::llm::{rewrite, LlmConfig};
use fhirscribe::note::{generate, NoteContext, Templates};

/// Serves `n` connections: reads one request, waits `delay`, writes `reply(request_body)`.
fn serve(n: usize, delay: Duration, reply: impl Fn(&str) -> String + Send + 'static) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read headers, then Content-Length bytes.
            let body = loop {
                let k = s.read(&mut chunk).unwrap_or(0);
                if k == 0 {
                    break String::new();
                }
                buf.extend_from_slice(&chunk[..k]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(h) = text.find("\r\n\r\n") {
                    let len: usize = text[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= h + 4 + len {
                        break text[h + 4..].to_owned();
                    }
                }
            };
            std::thread::sleep(delay);
            let _ = s.write_all(reply(&body).as_bytes());
        }
    });
    format!("http://{addr}/v1")
}

fn http_json(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn config(base_url: String, timeout_ms: u64) -> LlmConfig {
    LlmConfig {
        base_url,
        model: "test".into(),
        api_key: Some("k".into()),
        timeout: Duration::from_millis(timeout_ms),
    }
}

fn note() -> (
    fhirscribe::healthscribe::Conversation,
    fhirscribe::healthscribe::ClinicalDocumentation,
) {
    let conv = note_common::encounter();
    let t = Templates::builtin().unwrap();
    let doc = generate(
        &conv,
        t.get(NoteTemplate::HistoryAndPhysical),
        &NoteContext {
            pronouns: Some(Pronouns::HeHim),
        },
    );
    (conv, doc)
}

fn sentences(doc: &fhirscribe::healthscribe::ClinicalDocumentation) -> Vec<String> {
    doc.sections
        .iter()
        .flat_map(|s| s.summary.iter().map(|l| l.summarized_segment.clone()))
        .collect()
}

#[test]
fn checked_rewrites_are_kept_and_invented_facts_dropped() {
    let (conv, doc) = note();
    let url = serve(1, Duration::ZERO, |body| {
        let req: serde_json::Value = serde_json::from_str(body).unwrap();
        let sent: Vec<String> =
            serde_json::from_str(req["messages"][1]["content"].as_str().unwrap()).unwrap();
        let out: Vec<String> = sent
            .iter()
            .map(|s| match s.as_str() {
                "Denies chest pain." => "No chest pain.".to_owned(),
                // Adds a number and a drug the evidence does not have.
                s if s.starts_with("He is on lisinopril") => {
                    "He takes lisinopril 40 mg and aspirin daily.".to_owned()
                }
                // Drops the negation.
                "Denies shortness of breath or swelling." => {
                    "Shortness of breath and swelling.".to_owned()
                }
                s => s.to_owned(),
            })
            .collect();
        let content = serde_json::to_string(&out).unwrap();
        http_json(&serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string())
    });
    let (out, report) = rewrite(&doc, &conv, &config(url, 5000));
    assert_eq!(report.fallback, None);
    assert_eq!(report.rewritten, 1, "{report:?}");
    assert_eq!(report.dropped.len(), 2, "{report:?}");
    let s = sentences(&out);
    assert!(s.contains(&"No chest pain.".to_owned()));
    assert!(s.iter().any(|x| x.starts_with("He is on lisinopril 10 mg")));
    assert!(s.contains(&"Denies shortness of breath or swelling.".to_owned()));
    assert!(report.dropped.iter().any(|d| d.reason.contains("40")));
    assert!(report.dropped.iter().any(|d| d.reason.contains("negated")));
}

#[test]
fn slow_endpoint_times_out_to_the_evidence_built_note() {
    let (conv, doc) = note();
    let url = serve(1, Duration::from_secs(3), |_| http_json("{}"));
    let t0 = Instant::now();
    let (out, report) = rewrite(&doc, &conv, &config(url, 300));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(out, doc);
    assert!(report.fallback.is_some(), "{report:?}");
}

#[test]
fn garbage_replies_fall_back() {
    let (conv, doc) = note();
    for garbage in [
        "this is not http\r\n\r\n".to_owned(),
        http_json("not json at all"),
        http_json(r#"{"choices": [{"message": {"content": "Sure! Here is your note."}}]}"#),
        http_json(r#"{"choices": [{"message": {"content": "[\"only one\"]"}}]}"#),
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_owned(),
    ] {
        let g = garbage.clone();
        let url = serve(1, Duration::ZERO, move |_| g.clone());
        let (out, report) = rewrite(&doc, &conv, &config(url, 2000));
        assert_eq!(out, doc, "{garbage}");
        assert!(report.fallback.is_some(), "{garbage}: {report:?}");
    }
}

#[test]
fn refused_connection_falls_back() {
    let (conv, doc) = note();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // listener dropped: the port refuses.
    let (out, report) = rewrite(
        &doc,
        &conv,
        &config(format!("http://127.0.0.1:{port}/v1"), 2000),
    );
    assert_eq!(out, doc);
    assert!(report.fallback.unwrap().contains("failed"));
}

#[test]
fn off_unless_configured() {
    std::env::remove_var("FHIRSCRIBE_LLM_BASE_URL");
    assert_eq!(LlmConfig::from_env(), None);
}
