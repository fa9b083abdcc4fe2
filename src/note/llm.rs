//! Optional rephrasing of the evidence-built note by a language model behind any
//! OpenAI-compatible `POST {base}/chat/completions` endpoint. Off unless configured: the
//! pipeline calls [`rewrite`] after [`super::generate`] when its settings hold an
//! [`LlmConfig`] (the CLI builds one from `--llm-*` flags or `FHIRSCRIBE_LLM_*`; the library
//! reads no environment).
//!
//! The model may only rephrase: it gets the note's sentences as a numbered JSON array and must
//! return an array of the same length. Every returned sentence is checked against the segments
//! its original links to with the same independent checker that gates the generator
//! ([`super::support::check_sentence`]: every word, number and entity must be found there,
//! negations/family/hypotheticals kept); a rewrite that fails is rejected — the checked,
//! evidence-built sentence stays in its place — and counted. Any failure of the call itself
//! (refused connection, timeout, HTTP error, unparsable reply or refusal, wrong length) returns
//! the evidence-built note unchanged with the reason. The outcome is recorded as counts in
//! `ClinicalDocumentation."Extensions"."Rewrite"`.
//!
//! The call blocks the calling thread until the reply or the timeout (HTTP or HTTPS via rustls,
//! e.g. a local llama.cpp, vLLM or Ollama server). It runs on its own short-lived thread, so it
//! does not panic inside an async runtime; a server should still call it from
//! `spawn_blocking`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::healthscribe::{
    ClinicalDocumentation, ClinicalInsight, Conversation, DocumentationExtensions, RewriteCheck,
    RewriteFallback,
};

use super::support::check_sentence;
use crate::smart::backend::without_url;

/// Where and how to call the model; `None` in the pipeline settings means no rewrite.
/// `Debug` leaves the API key out, so settings can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct LlmConfig {
    /// Up to and including the version path (`http://host:port/v1`).
    pub base_url: String,
    pub model: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// For the whole call: connect, send, wait, read.
    pub timeout: Duration,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why the model's answer was not used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("request to the rewrite endpoint timed out")]
    Timeout,
    #[error("request to the rewrite endpoint failed: {0}")]
    Connection(String),
    #[error("request to the rewrite endpoint failed: HTTP {0}")]
    Http(u16),
    #[error("reply of the rewrite endpoint is not usable: {0}")]
    InvalidReply(String),
    #[error("model returned {got} sentences for {sent}")]
    WrongLength { got: usize, sent: usize },
}

impl LlmError {
    /// The documented `Extensions.Rewrite.Fallback` value.
    pub fn fallback(&self) -> RewriteFallback {
        match self {
            Self::Timeout => RewriteFallback::Timeout,
            Self::Connection(_) => RewriteFallback::Connection,
            Self::Http(_) => RewriteFallback::HttpError,
            Self::InvalidReply(_) => RewriteFallback::InvalidReply,
            Self::WrongLength { .. } => RewriteFallback::WrongLength,
        }
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
    pub fallback: Option<LlmError>,
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
    let n = sentences.len();
    let candidates = match call(cfg, &sentences) {
        Ok(c) if c.len() == n => c,
        Ok(c) => {
            return fallback(
                doc,
                n,
                LlmError::WrongLength {
                    got: c.len(),
                    sent: n,
                },
            )
        }
        Err(e) => return fallback(doc, n, e),
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
    record(&mut out, n, &report);
    if !report.dropped.is_empty() {
        // Counts only: sentences may hold PHI.
        tracing::warn!(
            rejected = report.dropped.len(),
            "rewritten sentences without support kept their original"
        );
    }
    (out, report)
}

fn record(doc: &mut ClinicalDocumentation, sentences: usize, report: &RewriteReport) {
    doc.extensions
        .get_or_insert_with(DocumentationExtensions::default)
        .rewrite = Some(RewriteCheck {
        sentences,
        rewritten: report.rewritten,
        rejected: report.dropped.len(),
        fallback: report.fallback.as_ref().map(LlmError::fallback),
    });
}

fn fallback(
    doc: &ClinicalDocumentation,
    sentences: usize,
    e: LlmError,
) -> (ClinicalDocumentation, RewriteReport) {
    tracing::warn!(reason = %e, "note rewrite skipped; keeping the evidence-built note");
    let report = RewriteReport {
        fallback: Some(e),
        ..RewriteReport::default()
    };
    let mut out = doc.clone();
    record(&mut out, sentences, &report);
    (out, report)
}

/// Sends the sentences and reads back the model's array. reqwest's blocking client runs its
/// own runtime and panics when built or dropped inside an async one, so it lives on a scoped
/// thread of its own.
fn call(cfg: &LlmConfig, sentences: &[&str]) -> Result<Vec<String>, LlmError> {
    std::thread::scope(|s| s.spawn(|| call_blocking(cfg, sentences)).join())
        .unwrap_or_else(|_| Err(LlmError::Connection("HTTP client thread panicked".into())))
}

fn http_error(e: reqwest::Error) -> LlmError {
    if e.is_timeout() {
        LlmError::Timeout
    } else {
        LlmError::Connection(without_url(&e))
    }
}

fn call_blocking(cfg: &LlmConfig, sentences: &[&str]) -> Result<Vec<String>, LlmError> {
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
        .map_err(|e| LlmError::Connection(format!("cannot set up the HTTP client: {e}")))?;
    let mut req = client.post(&url).json(&body);
    if let Some(key) = &cfg.api_key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().map_err(http_error)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(LlmError::Http(status.as_u16()));
    }
    let text = resp.text().map_err(http_error)?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| LlmError::InvalidReply(format!("not JSON: {e}")))?;
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| LlmError::InvalidReply("no choices[0].message.content".into()))?;
    let (a, b) = (content.find('['), content.rfind(']'));
    let array = match (a, b) {
        (Some(a), Some(b)) if a < b => &content[a..=b],
        // A refusal or chatter instead of the array.
        _ => return Err(LlmError::InvalidReply("content holds no JSON array".into())),
    };
    serde_json::from_str::<Vec<String>>(array)
        .map_err(|e| LlmError::InvalidReply(format!("array is not a list of strings: {e}")))
}
