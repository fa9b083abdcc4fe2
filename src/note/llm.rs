//! Optional rephrasing of the evidence-built note by a language model behind any
//! OpenAI-compatible `POST {base}/chat/completions` endpoint. Off unless configured.
//!
//! The model may only rephrase: it gets the note's sentences as a numbered JSON array and must
//! return an array of the same length. Every returned sentence is checked against the segments
//! its original links to with the independent checker ([`super::eval::check_sentence`]: every
//! word, number and entity must be found there, negations/family/hypotheticals kept); a rewrite
//! that fails is dropped — the evidence-built sentence stays in its place — and reported.
//! Any failure of the call itself (refused connection, timeout, HTTP error, unparsable reply,
//! wrong length) returns the evidence-built note unchanged with the reason.
//!
//! Configuration from the environment: `FHIRSCRIBE_LLM_BASE_URL` (e.g.
//! `http://127.0.0.1:8080/v1`; unset = off), `FHIRSCRIBE_LLM_MODEL`, `FHIRSCRIBE_LLM_API_KEY`
//! (optional bearer token), `FHIRSCRIBE_LLM_TIMEOUT_MS` (default 20000). HTTP or HTTPS (rustls),
//! e.g. a local llama.cpp, vLLM or Ollama server.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::healthscribe::{ClinicalDocumentation, ClinicalInsight, Conversation};

use super::eval::check_sentence;
use crate::smart::backend::without_url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmConfig {
    /// Up to and including the version path (`http://host:port/v1`).
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// For the whole call: connect, send, wait, read.
    pub timeout: Duration,
}

impl LlmConfig {
    /// `None` (rewrite off) unless `FHIRSCRIBE_LLM_BASE_URL` is set.
    pub fn from_env() -> Option<Self> {
        let base_url = std::env::var("FHIRSCRIBE_LLM_BASE_URL")
            .ok()
            .filter(|s| !s.trim().is_empty())?;
        Some(Self {
            base_url,
            model: std::env::var("FHIRSCRIBE_LLM_MODEL").unwrap_or_else(|_| "default".into()),
            api_key: std::env::var("FHIRSCRIBE_LLM_API_KEY")
                .ok()
                .filter(|s| !s.is_empty()),
            timeout: Duration::from_millis(
                std::env::var("FHIRSCRIBE_LLM_TIMEOUT_MS")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(20_000),
            ),
        })
    }
}

/// A rewrite that was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedRewrite {
    pub original: String,
    pub candidate: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteReport {
    /// Sentences replaced by their checked rewrite.
    pub rewritten: usize,
    pub dropped: Vec<DroppedRewrite>,
    /// Why the model's answer was not used at all (the note is the evidence-built one).
    pub fallback: Option<String>,
}

const SYSTEM_PROMPT: &str = "You edit clinical notes. You receive a JSON array of note \
sentences. Return ONLY a JSON array of the same length, where item i rephrases sentence i in \
concise clinical style (third person, no filler). Never add facts, numbers, names, diagnoses or \
negations that the sentence does not contain; keep every negation; if unsure, return the \
sentence unchanged.";

/// Rephrases `doc` with the configured model; see the module docs for the guarantees.
pub fn rewrite(
    doc: &ClinicalDocumentation,
    conv: &Conversation,
    cfg: &LlmConfig,
) -> (ClinicalDocumentation, RewriteReport) {
    let sentences: Vec<&str> = doc
        .sections
        .iter()
        .flat_map(|s| s.summary.iter().map(|l| l.summarized_segment.as_str()))
        .collect();
    if sentences.is_empty() {
        return (doc.clone(), RewriteReport::default());
    }
    let candidates = match call(cfg, &sentences) {
        Ok(c) if c.len() == sentences.len() => c,
        Ok(c) => {
            return fallback(
                doc,
                format!(
                    "model returned {} sentences for {}",
                    c.len(),
                    sentences.len()
                ),
            )
        }
        Err(e) => return fallback(doc, e),
    };
    let by_id: HashMap<&str, &str> = conv
        .transcript_segments
        .iter()
        .map(|s| (s.segment_id.as_str(), s.content.as_str()))
        .collect();
    let mut out = doc.clone();
    let mut report = RewriteReport::default();
    let mut k = 0;
    for section in &mut out.sections {
        for line in &mut section.summary {
            let candidate = candidates[k].trim().to_owned();
            k += 1;
            if candidate == line.summarized_segment {
                continue;
            }
            let ids: Vec<&str> = line
                .evidence_links
                .iter()
                .map(|l| l.segment_id.as_str())
                .collect();
            let texts: Vec<&str> = ids.iter().filter_map(|id| by_id.get(id).copied()).collect();
            let insights: Vec<&ClinicalInsight> = conv
                .clinical_insights
                .iter()
                .filter(|i| i.spans.iter().any(|s| ids.contains(&s.segment_id.as_str())))
                .collect();
            let verdict = if candidate.is_empty() {
                Err("empty rewrite".to_owned())
            } else {
                check_sentence(&candidate, &texts, &insights)
            };
            match verdict {
                Ok(()) => {
                    line.summarized_segment = candidate;
                    report.rewritten += 1;
                }
                Err(reason) => report.dropped.push(DroppedRewrite {
                    original: line.summarized_segment.clone(),
                    candidate,
                    reason,
                }),
            }
        }
    }
    (out, report)
}

fn fallback(doc: &ClinicalDocumentation, reason: String) -> (ClinicalDocumentation, RewriteReport) {
    tracing::warn!(%reason, "note rewrite skipped; keeping the evidence-built note");
    (
        doc.clone(),
        RewriteReport {
            fallback: Some(reason),
            ..RewriteReport::default()
        },
    )
}

fn call(cfg: &LlmConfig, sentences: &[&str]) -> Result<Vec<String>, String> {
    let url = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
    let body = json!({
        "model": cfg.model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": serde_json::to_string(sentences).unwrap_or_default()},
        ],
    });
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(cfg.timeout)
        .timeout(cfg.timeout)
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    let mut req = client.post(&url).json(&body);
    if let Some(key) = &cfg.api_key {
        req = req.bearer_auth(key);
    }
    let resp = req
        .send()
        .map_err(|e| format!("request to {url} failed: {}", without_url(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("request to {url} failed: HTTP {}", status.as_u16()));
    }
    let v: Value = resp
        .json()
        .map_err(|e| format!("reply from {url} is not JSON: {}", without_url(&e)))?;
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| "reply has no choices[0].message.content".to_owned())?;
    let (a, b) = (content.find('['), content.rfind(']'));
    let array = match (a, b) {
        (Some(a), Some(b)) if a < b => &content[a..=b],
        _ => return Err("reply content holds no JSON array".into()),
    };
    serde_json::from_str::<Vec<String>>(array)
        .map_err(|e| format!("reply array is not a list of strings: {e}"))
}
