//! The clinician's review of a completed job (issue 18): the AI draft as editable sentences
//! and chart items, edits applied one at a time (each one an [`AuditEntry`]), and the signed
//! transaction Bundle that writes the result to the EHR. Knows neither HTTP nor the store:
//! the job service keeps a [`Review`] and its audit trail; the UI routes post the Bundle.
//!
//! Invariants (and why):
//! - **The AI draft is never lost.** A sentence keeps its AI text beside the clinician's
//!   (`ai_text`), a removed one stays (marked `removed`), and the job's
//!   `clinical-documentation.json` is never rewritten: the draft and the signed version are
//!   both on record.
//! - **Edits only take away from the chart.** A clinician may rewrite note text and add
//!   free-text sentences (marked clinician-written, no evidence), but chart items (Conditions,
//!   MedicationStatements) can only be kept or removed: nothing reaches the chart as coded
//!   data that the evidence check did not back.
//! - **Signing is idempotent.** Every entry of the signed Bundle is a conditional update on
//!   the resource's business identifier (or a conditional create on a stable tag), so a retry,
//!   or the preliminary Bundle arriving after it, updates in place and never duplicates.
//! - **After signing, nothing changes.** A signed (or signing) review refuses edits.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::healthscribe::ClinicalDocumentation;
use crate::note::template::Template;

/// Longest sentence a clinician may write (characters).
pub const MAX_SENTENCE_CHARS: usize = 2000;
/// Most sentences a review may hold (a bound on what one session can store).
pub const MAX_SENTENCES: usize = 500;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReviewError {
    #[error("no sentence {0} in this note")]
    NoSentence(String),
    #[error("no section {0} in this note's template")]
    NoSection(String),
    #[error("no chart item {0} in this job")]
    NoItem(String),
    #[error("the sentence is empty")]
    Empty,
    #[error("the sentence is longer than {MAX_SENTENCE_CHARS} characters")]
    TooLong,
    #[error("the note holds {MAX_SENTENCES} sentences already")]
    TooMany,
    #[error("this note is signed (or being signed): it cannot change")]
    Signed,
    #[error("signing needs the clinician's FHIR identity (fhirUser) from the EHR launch")]
    NoSigner,
    #[error("the job's FHIR Bundle is unreadable: {0}")]
    Bundle(String),
}

/// Where a sentence's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The AI draft, unchanged.
    Ai,
    /// The AI draft, rewritten by the clinician.
    Edited,
    /// Written by the clinician (no evidence needed).
    Clinician,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentence {
    /// Stable within the review: `s{section}-{n}` for the draft's, `c{n}` for added ones.
    pub id: String,
    pub text: String,
    pub origin: Origin,
    /// The AI draft's text (None for a clinician-written sentence).
    #[serde(default)]
    pub ai_text: Option<String>,
    /// Transcript segment ids (the AI draft's evidence).
    #[serde(default)]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewSection {
    /// `SectionName` (`CHIEF_COMPLAINT`, …).
    pub name: String,
    pub title: String,
    pub sentences: Vec<Sentence>,
}

/// A Condition or MedicationStatement of the draft Bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartItem {
    /// The resource's business identifier value (unique per job).
    pub key: String,
    pub resource_type: String,
    /// What the clinician reads (code text, dosage).
    pub display: String,
    #[serde(default)]
    pub removed: bool,
}

/// Where signing stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SignState {
    /// The Bundle is built and being written; edits are refused.
    Signing,
    /// The EHR accepted the transaction; `written` are its `response.location`s.
    Written { written: Vec<String> },
    /// Queued for the service's own delivery (backend-services write-back).
    Queued,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The clinician (`fhirUser`, e.g. `Practitioner/123`).
    pub by: String,
    /// RFC 3339.
    pub at: String,
    #[serde(flatten)]
    pub state: SignState,
}

/// One job's review: the draft, every edit applied, and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub job_name: String,
    /// Bumped by every change.
    pub version: u64,
    pub sections: Vec<ReviewSection>,
    pub items: Vec<ChartItem>,
    #[serde(default)]
    pub signature: Option<Signature>,
    /// Why the last attempt to sign failed (cleared by the next one).
    #[serde(default)]
    pub sign_error: Option<String>,
    /// Counter for clinician-written sentence ids.
    #[serde(default)]
    pub added: u64,
    /// `fullUrl` → `Type/id` of what earlier attempts to sign wrote resource by resource, so
    /// signing again finishes the write instead of repeating it.
    #[serde(default)]
    pub written_ids: std::collections::BTreeMap<String, String>,
}

/// One change to a review, as the page sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Edit {
    /// Rewrite a sentence.
    Edit {
        id: String,
        text: String,
    },
    /// Take a sentence out of the note (kept on record).
    Remove {
        id: String,
    },
    /// Put a removed sentence back.
    Restore {
        id: String,
    },
    /// A clinician-written sentence at the end of a section.
    Add {
        section: String,
        text: String,
    },
    /// Keep a chart item out of the chart (written as entered-in-error if already there).
    RemoveItem {
        key: String,
    },
    RestoreItem {
        key: String,
    },
}

/// One line of a job's audit trail: who did what, when, and what it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: u64,
    /// `fhirUser` of the clinician, or the caller's subject.
    pub who: String,
    /// `edit`, `remove`, `restore`, `add`, `remove-item`, `restore-item`, `sign`, `signed`,
    /// `sign-failed`, `sign-queued`.
    pub action: String,
    /// The sentence id or chart item key it changed.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
}

fn section_title(name: &str) -> String {
    let s = name.replace('_', " ").to_lowercase();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

/// `Type` and business identifier value of a Bundle entry's resource.
fn identifier_value(resource: &Value) -> Option<&str> {
    resource["identifier"][0]["value"].as_str()
}

fn item_display(r: &Value) -> String {
    let code = r["code"]["text"]
        .as_str()
        .or_else(|| r["code"]["coding"][0]["display"].as_str())
        .or_else(|| r["medicationCodeableConcept"]["text"].as_str())
        .or_else(|| r["medicationCodeableConcept"]["coding"][0]["display"].as_str())
        .unwrap_or("(no text)");
    match r["dosage"][0]["text"].as_str() {
        Some(d) if !d.is_empty() => format!("{code}: {d}"),
        _ => code.to_owned(),
    }
}

impl Review {
    /// The review of a freshly completed job: the template's sections in order (empty ones
    /// too, so a clinician can write in them), the draft's sentences, and the Bundle's
    /// Conditions and MedicationStatements.
    pub fn from_draft(
        job_name: &str,
        doc: &ClinicalDocumentation,
        template: &Template,
        bundle: Option<&Value>,
    ) -> Review {
        let mut sections: Vec<ReviewSection> = template
            .sections
            .iter()
            .map(|t| ReviewSection {
                name: t.name.as_str().to_owned(),
                title: t.title.clone(),
                sentences: Vec::new(),
            })
            .collect();
        for (si, s) in doc.sections.iter().enumerate() {
            let name = s.section_name.as_str().to_owned();
            let idx = match sections.iter().position(|x| x.name == name) {
                Some(i) => i,
                None => {
                    sections.push(ReviewSection {
                        title: section_title(&name),
                        name,
                        sentences: Vec::new(),
                    });
                    sections.len() - 1
                }
            };
            for (n, line) in s.summary.iter().enumerate() {
                sections[idx].sentences.push(Sentence {
                    id: format!("s{si}-{n}"),
                    text: line.summarized_segment.trim().to_owned(),
                    origin: Origin::Ai,
                    ai_text: Some(line.summarized_segment.trim().to_owned()),
                    evidence: line
                        .evidence_links
                        .iter()
                        .map(|l| l.segment_id.clone())
                        .collect(),
                    removed: false,
                });
            }
        }
        let items = bundle
            .and_then(|b| b["entry"].as_array())
            .into_iter()
            .flatten()
            .map(|e| &e["resource"])
            .filter(|r| {
                matches!(
                    r["resourceType"].as_str(),
                    Some("Condition" | "MedicationStatement")
                )
            })
            .filter_map(|r| {
                Some(ChartItem {
                    key: identifier_value(r)?.to_owned(),
                    resource_type: r["resourceType"].as_str()?.to_owned(),
                    display: item_display(r),
                    removed: false,
                })
            })
            .collect();
        Review {
            job_name: job_name.to_owned(),
            version: 1,
            sections,
            items,
            signature: None,
            sign_error: None,
            added: 0,
            written_ids: Default::default(),
        }
    }

    fn sentence_mut(&mut self, id: &str) -> Result<&mut Sentence, ReviewError> {
        self.sections
            .iter_mut()
            .flat_map(|s| s.sentences.iter_mut())
            .find(|s| s.id == id)
            .ok_or_else(|| ReviewError::NoSentence(id.to_owned()))
    }

    fn item_mut(&mut self, key: &str) -> Result<&mut ChartItem, ReviewError> {
        self.items
            .iter_mut()
            .find(|i| i.key == key)
            .ok_or_else(|| ReviewError::NoItem(key.to_owned()))
    }

    /// Whether anything differs from the AI draft.
    pub fn is_edited(&self) -> bool {
        self.items.iter().any(|i| i.removed)
            || self
                .sections
                .iter()
                .flat_map(|s| &s.sentences)
                .any(|s| s.removed || s.origin != Origin::Ai)
    }

    /// Applies one edit; the audit entry says what it changed.
    pub fn apply(&mut self, edit: &Edit, who: &str, at_ms: u64) -> Result<AuditEntry, ReviewError> {
        if self.signature.is_some() {
            return Err(ReviewError::Signed);
        }
        let clean = |t: &str| -> Result<String, ReviewError> {
            let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
            if t.is_empty() {
                Err(ReviewError::Empty)
            } else if t.chars().count() > MAX_SENTENCE_CHARS {
                Err(ReviewError::TooLong)
            } else {
                Ok(t)
            }
        };
        let entry = |action: &str, target: &str, before: Option<String>, after: Option<String>| {
            AuditEntry {
                at_ms,
                who: who.to_owned(),
                action: action.to_owned(),
                target: Some(target.to_owned()),
                before,
                after,
            }
        };
        let audit = match edit {
            Edit::Edit { id, text } => {
                let text = clean(text)?;
                let s = self.sentence_mut(id)?;
                let before = std::mem::replace(&mut s.text, text.clone());
                if s.origin == Origin::Ai {
                    s.origin = Origin::Edited;
                }
                if s.ai_text.as_deref() == Some(text.as_str()) {
                    s.origin = Origin::Ai;
                }
                entry("edit", id, Some(before), Some(text))
            }
            Edit::Remove { id } => {
                let s = self.sentence_mut(id)?;
                s.removed = true;
                entry("remove", id, Some(s.text.clone()), None)
            }
            Edit::Restore { id } => {
                let s = self.sentence_mut(id)?;
                s.removed = false;
                entry("restore", id, None, Some(s.text.clone()))
            }
            Edit::Add { section, text } => {
                let text = clean(text)?;
                let count: usize = self.sections.iter().map(|s| s.sentences.len()).sum();
                if count >= MAX_SENTENCES {
                    return Err(ReviewError::TooMany);
                }
                let n = self.added + 1;
                let sec = self
                    .sections
                    .iter_mut()
                    .find(|s| s.name == *section)
                    .ok_or_else(|| ReviewError::NoSection(section.clone()))?;
                let id = format!("c{n}");
                sec.sentences.push(Sentence {
                    id: id.clone(),
                    text: text.clone(),
                    origin: Origin::Clinician,
                    ai_text: None,
                    evidence: Vec::new(),
                    removed: false,
                });
                self.added = n;
                entry("add", &id, None, Some(text))
            }
            Edit::RemoveItem { key } => {
                let i = self.item_mut(key)?;
                i.removed = true;
                entry("remove-item", key, Some(i.display.clone()), None)
            }
            Edit::RestoreItem { key } => {
                let i = self.item_mut(key)?;
                i.removed = false;
                entry("restore-item", key, None, Some(i.display.clone()))
            }
        };
        self.version += 1;
        Ok(audit)
    }

    /// The signed note as Markdown: a heading per section with sentences, one bullet each.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for s in &self.sections {
            let kept: Vec<&Sentence> = s.sentences.iter().filter(|x| !x.removed).collect();
            if kept.is_empty() {
                continue;
            }
            out.push_str(&format!("## {}\n\n", s.title));
            for x in kept {
                out.push_str("- ");
                out.push_str(&x.text);
                out.push('\n');
            }
            out.push('\n');
        }
        if out.is_empty() {
            out.push_str("_No clinical content was kept in this note._\n");
        }
        out
    }

    /// The signed transaction Bundle, built from the job's draft Bundle: the note
    /// `DocumentReference` final with the signed text and the signer as authenticator; kept
    /// Conditions and MedicationStatements as they were drafted; removed ones as
    /// `entered-in-error`; every kept one with a Provenance naming the clinician as verifier
    /// (and author, where the note was edited) and the scribe Device as author of the draft.
    pub fn sign_bundle(
        &self,
        draft: &Value,
        signer: &str,
        now: &str,
        provenance_system: &str,
    ) -> Result<Value, ReviewError> {
        let entries = draft["entry"]
            .as_array()
            .ok_or_else(|| ReviewError::Bundle("no entries".into()))?;
        let job = draft["identifier"]["value"]
            .as_str()
            .unwrap_or(&self.job_name);
        let device = entries
            .iter()
            .find(|e| e["resource"]["resourceType"] == "Device");
        let device_url = device
            .and_then(|e| e["fullUrl"].as_str())
            .map(str::to_owned);
        // The scribe Device by its identifier: a clinician's patient-scoped token may not
        // create Devices, and the chart's Device (if the draft was delivered) is found by it.
        let device_ref = device.map(|e| {
            let d = &e["resource"];
            json!({"identifier": d["identifier"][0], "display": d["deviceName"][0]["name"]
                .as_str().unwrap_or("fhirscribe AI scribe")})
        });
        let mut out: Vec<Value> = Vec::new();
        let mut verified: Vec<(String, String, bool)> = Vec::new(); // (fullUrl, key, is note)
        let mut removed_urls: Vec<String> = Vec::new();
        for e in entries {
            let r = &e["resource"];
            let ty = r["resourceType"].as_str().unwrap_or_default();
            let url = e["fullUrl"].as_str().unwrap_or_default().to_owned();
            let ident = (r["identifier"][0]["system"].as_str(), identifier_value(r));
            let conditional_put = |resource: Value| -> Result<Value, ReviewError> {
                let (Some(sys), Some(val)) = ident else {
                    return Err(ReviewError::Bundle(format!("a {ty} has no identifier")));
                };
                Ok(json!({
                    "fullUrl": url,
                    "resource": resource,
                    "request": {"method": "PUT", "url": format!("{ty}?identifier={sys}|{val}")},
                }))
            };
            match ty {
                "DocumentReference" if is_note(r) => {
                    let mut doc = r.clone();
                    doc["docStatus"] = json!("final");
                    doc["date"] = json!(now);
                    doc["authenticator"] = json!({"reference": signer});
                    doc["description"] = json!(if self.is_edited() {
                        "Clinical note drafted by an AI scribe, edited and signed by the clinician"
                    } else {
                        "Clinical note drafted by an AI scribe, reviewed and signed by the clinician"
                    });
                    let mut authors = doc["author"].as_array().cloned().unwrap_or_default();
                    authors.push(json!({"reference": signer}));
                    doc["author"] = Value::Array(authors);
                    if let Some(content) = doc["content"].as_array_mut() {
                        for c in content.iter_mut() {
                            let a = &mut c["attachment"];
                            if a["contentType"] == "text/markdown" {
                                let md = self.markdown();
                                a["data"] = json!(b64(md.as_bytes()));
                                a["size"] = json!(md.len());
                            } else if a["title"] == "clinical-documentation.json" {
                                a["title"] = json!("clinical-documentation.json (AI draft)");
                            }
                        }
                    }
                    verified.push((url.clone(), ident.1.unwrap_or_default().to_owned(), true));
                    out.push(conditional_put(doc)?);
                }
                "Condition" | "MedicationStatement" => {
                    let key = ident.1.unwrap_or_default();
                    let removed = self.items.iter().any(|i| i.key == key && i.removed);
                    let mut res = r.clone();
                    if removed {
                        if ty == "Condition" {
                            // con-5: no clinicalStatus on an entered-in-error Condition.
                            if let Some(o) = res.as_object_mut() {
                                o.remove("clinicalStatus");
                            }
                            res["verificationStatus"] = json!({"coding": [{
                                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                "code": "entered-in-error", "display": "Entered in Error"}]});
                        } else {
                            res["status"] = json!("entered-in-error");
                        }
                        removed_urls.push(url.clone());
                    } else {
                        verified.push((url.clone(), key.to_owned(), false));
                    }
                    out.push(conditional_put(res)?);
                }
                "Provenance" => {
                    // The draft's evidence Provenance, unless it is only about removed items.
                    let targets: Vec<&str> = r["target"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t["reference"].as_str())
                        .collect();
                    if !targets.is_empty()
                        && targets.iter().all(|t| removed_urls.iter().any(|u| u == t))
                    {
                        continue;
                    }
                    out.push(e.clone());
                }
                "Device" => {}
                _ => out.push(e.clone()),
            }
        }
        let edited = self.is_edited();
        for (n, (url, key, is_note)) in verified.iter().enumerate() {
            let tag = format!("{job}/signed/{key}");
            let mut agents = vec![json!({
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                     "code": "verifier", "display": "Verifier"}]},
                "who": {"reference": signer},
            })];
            if *is_note && edited {
                agents.push(json!({
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                         "code": "author", "display": "Author"}]},
                    "who": {"reference": signer},
                }));
            }
            if let Some(d) = &device_ref {
                agents.push(json!({
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                         "code": "author", "display": "Author"}]},
                    "who": d,
                }));
            }
            let activity = if *is_note {
                json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DocumentCompletion",
                                   "code": "LA", "display": "legally authenticated"}]})
            } else {
                json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                   "code": "UPDATE", "display": "revise"}]})
            };
            let prov = json!({
                "resourceType": "Provenance",
                "meta": {"tag": [{"system": provenance_system, "code": tag}]},
                "target": [{"reference": url}],
                "recorded": now,
                "activity": activity,
                "agent": agents,
            });
            out.push(json!({
                "fullUrl": format!("urn:uuid:{}", signed_uuid(job, n)),
                "resource": prov,
                "request": {"method": "POST", "url": "Provenance",
                            "ifNoneExist": format!("_tag={provenance_system}|{tag}")},
            }));
        }
        if let (Some(url), Some(r)) = (&device_url, &device_ref) {
            for e in out.iter_mut() {
                replace_reference(&mut e["resource"], url, r);
            }
        }
        Ok(json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "identifier": {"system": draft["identifier"]["system"], "value": format!("{job}-signed")},
            "entry": out,
        }))
    }
}

/// Replaces every `{"reference": url}` inside `v` with `by`.
fn replace_reference(v: &mut Value, url: &str, by: &Value) {
    match v {
        Value::Object(o) => {
            if o.get("reference").and_then(Value::as_str) == Some(url) {
                *v = by.clone();
                return;
            }
            for x in o.values_mut() {
                replace_reference(x, url, by);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| replace_reference(x, url, by)),
        _ => {}
    }
}

/// The note DocumentReference (the one with a Markdown attachment), not the transcript's.
fn is_note(r: &Value) -> bool {
    r["content"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["attachment"]["contentType"] == "text/markdown")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A stable UUID for the n-th verifier Provenance of a job's signed Bundle.
fn signed_uuid(job: &str, n: usize) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("fhirscribe:signed:{job}:{n}").as_bytes(),
    )
}

#[cfg(test)]
mod tests;
