//! The optional model rewrite against real peers on loopback: a server that answers well, one
//! that adds a fact, one that is too slow, one that sends garbage, and a closed port. The tiny
//! `std::net` server in this file stands in for an OpenAI-compatible LLM server (llama.cpp,
//! vLLM, Ollama), which cannot run here; it speaks just enough HTTP/1.1 for one request.

mod note_common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use fhirscribe::diarize::SpeakerMode;
use fhirscribe::healthscribe::{
    MedicalScribeContext, MedicalScribePatientContext, NoteTemplate, Pronouns, RewriteCheck,
    RewriteFallback,
};
use fhirscribe::note::llm::{rewrite, LlmConfig};
use fhirscribe::note::{generate, NoteContext, Templates};
use fhirscribe::pipeline::{document, ScribeSettings};

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

/// The note's pertinent negatives, one line (the generator merges the review of systems).
const DENIES: &str = "Denies fall, twist, chest pain, shortness of breath or swelling.";

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
                "Heart rate: 76." => "Heart rate 76.".to_owned(),
                // Adds a number and a drug the evidence does not have.
                "Lisinopril 10 mg once a day." => "Lisinopril 40 mg and aspirin daily.".to_owned(),
                // Drops the negation.
                DENIES => "Fall, twist, chest pain, shortness of breath and swelling.".to_owned(),
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
    assert!(s.contains(&"Heart rate 76.".to_owned()));
    assert!(s.contains(&"Lisinopril 10 mg once a day.".to_owned()));
    assert!(s.contains(&DENIES.to_owned()));
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
    assert_eq!(out.sections, doc.sections);
    assert_eq!(
        report.fallback,
        Some(fhirscribe::note::llm::LlmError::Timeout)
    );
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
        assert_eq!(out.sections, doc.sections, "{garbage}");
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
    assert_eq!(out.sections, doc.sections);
    assert!(report.fallback.unwrap().to_string().contains("failed"));
}

/// An OpenAI-style reply whose content is `out` as a JSON array.
fn chat_reply(out: &[String]) -> String {
    let content = serde_json::to_string(out).unwrap();
    http_json(
        &serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]})
            .to_string(),
    )
}

/// The sentences the model was sent.
fn sent(body: &str) -> Vec<String> {
    let req: serde_json::Value = serde_json::from_str(body).unwrap();
    serde_json::from_str(req["messages"][1]["content"].as_str().unwrap()).unwrap()
}

fn settings(llm: Option<LlmConfig>) -> ScribeSettings {
    ScribeSettings {
        context: Some(MedicalScribeContext {
            patient_context: Some(MedicalScribePatientContext {
                pronouns: Some(Pronouns::HeHim),
            }),
        }),
        llm,
        ..ScribeSettings::new("j", SpeakerMode::Single)
    }
}

fn rewrite_check(doc: &fhirscribe::healthscribe::ClinicalDocumentation) -> RewriteCheck {
    doc.extensions.as_ref().unwrap().rewrite.unwrap()
}

/// The pipeline's note stage calls the model when configured and keeps a checked rewrite.
#[test]
fn pipeline_calls_the_rewrite_and_keeps_a_checked_one() {
    let (conv, _) = note();
    let t = Templates::builtin().unwrap();
    let plain = document(&conv, &t, &settings(None));
    assert!(plain.extensions.as_ref().unwrap().rewrite.is_none());
    let url = serve(1, Duration::ZERO, |body| {
        let out: Vec<String> = sent(body)
            .into_iter()
            .map(|s| {
                if s == "Heart rate: 76." {
                    "Heart rate 76.".into()
                } else {
                    s
                }
            })
            .collect();
        chat_reply(&out)
    });
    let doc = document(&conv, &t, &settings(Some(config(url, 5000))));
    let s = sentences(&doc);
    assert!(s.contains(&"Heart rate 76.".to_owned()), "{s:?}");
    assert!(!s.contains(&"Heart rate: 76.".to_owned()), "{s:?}");
    let rc = rewrite_check(&doc);
    assert_eq!(
        (rc.rewritten, rc.rejected, rc.fallback),
        (1, 0, None),
        "{rc:?}"
    );
    assert_eq!(rc.sentences, sentences(&plain).len());
    // The evidence check of the generated note is still reported.
    assert!(doc.extensions.unwrap().evidence_check.is_some());
}

/// A rewrite that invents a condition or flips a negation fails the evidence check: the
/// original sentence stays and the rejection is counted.
#[test]
fn pipeline_rejects_an_invented_condition_and_a_negation_flip() {
    let (conv, _) = note();
    let t = Templates::builtin().unwrap();
    let plain = document(&conv, &t, &settings(None));
    let url = serve(1, Duration::ZERO, |body| {
        let out: Vec<String> = sent(body)
            .into_iter()
            .map(|s| match s.as_str() {
                DENIES => {
                    "Reports fall, twist, chest pain, shortness of breath or swelling.".to_owned()
                }
                "Heart rate: 76." => "Heart rate: 76; has pneumonia.".to_owned(),
                _ => s,
            })
            .collect();
        chat_reply(&out)
    });
    let doc = document(&conv, &t, &settings(Some(config(url, 5000))));
    assert_eq!(doc.sections, plain.sections);
    let rc = rewrite_check(&doc);
    assert_eq!(
        (rc.rewritten, rc.rejected, rc.fallback),
        (0, 2, None),
        "{rc:?}"
    );
}

/// A model that does not answer in time leaves the checked note as it was, counted as TIMEOUT.
#[test]
fn pipeline_falls_back_on_timeout() {
    let (conv, _) = note();
    let t = Templates::builtin().unwrap();
    let plain = document(&conv, &t, &settings(None));
    let url = serve(1, Duration::from_secs(3), |_| http_json("{}"));
    let doc = document(&conv, &t, &settings(Some(config(url, 300))));
    assert_eq!(doc.sections, plain.sections);
    assert_eq!(rewrite_check(&doc).fallback, Some(RewriteFallback::Timeout));
}

/// Garbage, a refusal and an HTTP error leave the checked note as it was, counted by kind.
#[test]
fn pipeline_falls_back_on_garbage_refusals_and_http_errors() {
    let (conv, _) = note();
    let t = Templates::builtin().unwrap();
    let plain = document(&conv, &t, &settings(None));
    for (reply, kind) in [
        (
            http_json("<html>oops</html>"),
            RewriteFallback::InvalidReply,
        ),
        (
            http_json(
                r#"{"choices": [{"message": {"content": "I'm sorry, I can't help with medical notes."}}]}"#,
            ),
            RewriteFallback::InvalidReply,
        ),
        (
            http_json(r#"{"choices": [{"message": {"content": "[\"one\"]"}}]}"#),
            RewriteFallback::WrongLength,
        ),
        (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_owned(),
            RewriteFallback::HttpError,
        ),
    ] {
        let r = reply.clone();
        let url = serve(1, Duration::ZERO, move |_| r.clone());
        let doc = document(&conv, &t, &settings(Some(config(url, 2000))));
        assert_eq!(doc.sections, plain.sections, "{reply}");
        let rc = rewrite_check(&doc);
        assert_eq!(rc.fallback, Some(kind), "{reply}: {rc:?}");
        assert_eq!((rc.rewritten, rc.rejected), (0, 0));
        // Counts only in the output file: no sentence text, no reason text.
        let json = serde_json::to_string(&doc.extensions).unwrap();
        assert!(!json.contains("oops") && !json.contains("sorry"), "{json}");
    }
}

/// The blocking client must not panic when the caller is inside an async runtime (the
/// service will call the note stage from its job workers).
#[test]
fn rewrite_does_not_panic_inside_an_async_runtime() {
    let (conv, doc) = note();
    let url = serve(1, Duration::ZERO, |body| chat_reply(&sent(body)));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (out, report) = rt.block_on(async { rewrite(&doc, &conv, &config(url, 5000)) });
    assert_eq!(report.fallback, None, "{report:?}");
    assert_eq!(out.sections, doc.sections);
}
