//! Native outputs → one FHIR R4 `transaction` Bundle.
//!
//! Invariants:
//! - The Bundle is a pure function of its inputs: fullUrls are UUIDv5 of (job, kind, key), so
//!   the same job always gives byte-identical Bundles.
//! - Every entry is a conditional create (`ifNoneExist` on the business identifier, or on the
//!   `meta.tag` business id for Provenance, which has no `identifier` in R4), so a replay
//!   creates nothing twice.
//! - Patient and Encounter come only from the launch/job context, never from audio content.
//! - Every AI-made resource carries `meta.security` AIAST and has exactly one Provenance whose
//!   evidence lists the transcript segments (ids and audio times) it came from.
//! - One resource per code per job, always: repeated mentions of the same condition or drug
//!   merge, their evidence is the union of the mentions, and the latest mention's trait rule
//!   decides its status (what was said last about a drug is what holds).
//! - Nothing is charted from a segment whose speaker role is unsure
//!   (`min_speaker_role_confidence`), and Conditions follow the mapping's chart policy.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde_json::{json, Value};

use super::mapping::{
    decide, ChartClass, ConditionOverride, Decision, Mapping, MedicationOverride, MedicationStatus,
};
use crate::healthscribe::{
    ClinicalDocumentation, ClinicalInsight, Conversation, EntitySubType,
    MedicalScribeParticipantRole, NoteTemplate, TraitName, TranscriptSectionName,
    TranscriptSegment,
};

const AIAST_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
const UCUM: &str = "http://unitsofmeasure.org";

/// Namespace of our fullUrl UUIDs.
const NS: uuid::Uuid = uuid::Uuid::from_bytes([
    0x6f, 0x1d, 0x3c, 0x57, 0x0b, 0x2e, 0x4c, 0x8a, 0x9e, 0x41, 0x7d, 0x25, 0xa0, 0x93, 0x5b, 0xc6,
]);

/// Where the outputs belong in the EHR: from the SMART launch or the job's API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncounterContext {
    /// `Patient/<id>`.
    pub patient: String,
    /// `Encounter/<id>`.
    pub encounter: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("{field} must be a relative reference `{kind}/<id>` (id: 1-64 of A-Z a-z 0-9 - .)")]
    BadReference {
        field: &'static str,
        kind: &'static str,
    },
    #[error("job name must be 1-200 characters of A-Z a-z 0-9 . _ - (HealthScribe's rule)")]
    BadJobName,
}

impl EncounterContext {
    /// Accepts `Patient/123` or a bare id `123` (and the same for the encounter).
    pub fn new(patient: &str, encounter: &str) -> Result<Self, ContextError> {
        Ok(Self {
            patient: reference("patient", "Patient", patient)?,
            encounter: reference("encounter", "Encounter", encounter)?,
        })
    }
}

fn reference(field: &'static str, kind: &'static str, s: &str) -> Result<String, ContextError> {
    let id = s
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(s);
    let ok = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(format!("{kind}/{id}"))
    } else {
        Err(ContextError::BadReference { field, kind })
    }
}

/// HealthScribe's `MedicalScribeJobName` pattern; it also keeps identifier values and the
/// `ifNoneExist` queries free of characters that would need escaping.
pub fn check_job_name(name: &str) -> Result<(), ContextError> {
    let ok = (1..=200).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    ok.then_some(()).ok_or(ContextError::BadJobName)
}

/// The scribe as a `Device`: a new version or model makes a new Device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScribeDevice {
    pub version: String,
    /// (role, model name), e.g. ("asr", "whisper base (ggml)").
    pub models: Vec<(String, String)>,
}

impl ScribeDevice {
    /// This build of fhirscribe with `asr_model`, the speech model that really made the
    /// transcript (its `Extensions.AsrModel`).
    pub fn for_asr_model(asr_model: &str) -> Self {
        ScribeDevice {
            version: env!("CARGO_PKG_VERSION").to_string(),
            models: vec![
                ("asr".into(), asr_model.to_string()),
                ("vad".into(), "silero-vad".into()),
                ("clinical".into(), "fhirscribe-clinical".into()),
            ],
        }
    }

    fn identifier_value(&self, name: &str) -> String {
        let models: Vec<&str> = self.models.iter().map(|(_, m)| m.as_str()).collect();
        format!("{name}/{}/{}", self.version, models.join("+"))
    }
}

/// One job's outputs, as the pipeline wrote them.
pub struct JobOutputs<'a> {
    pub job_name: &'a str,
    pub template: NoteTemplate,
    pub conversation: &'a Conversation,
    pub documentation: &'a ClinicalDocumentation,
    /// The note rendered for people (`text/markdown`).
    pub note_markdown: &'a str,
    /// The two native files, byte for byte as written.
    pub transcript_json: &'a [u8],
    pub documentation_json: &'a [u8],
    /// When the job completed (FHIR `instant`); used for every date in the Bundle.
    pub recorded: &'a str,
}

/// What was mapped and what was left out, and why (counts only: no PHI).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MappingReport {
    pub conditions: usize,
    pub medication_statements: usize,
    pub provenances: usize,
    /// Reason (`NEGATION`, `no ICD-10-CM code`, …) → insights not written for it.
    pub skipped: BTreeMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct MappedBundle {
    pub bundle: Value,
    pub report: MappingReport,
}

/// Builds the transaction Bundle for one job.
pub fn build_bundle(
    mapping: &Mapping,
    ctx: &EncounterContext,
    device: &ScribeDevice,
    out: &JobOutputs<'_>,
) -> Result<MappedBundle, ContextError> {
    check_job_name(out.job_name)?;
    let b = Builder {
        m: mapping,
        ctx,
        out,
        times: out
            .conversation
            .transcript_segments
            .iter()
            .map(|s| {
                (
                    s.segment_id.as_str(),
                    (s.begin_audio_time, s.end_audio_time),
                )
            })
            .collect(),
        plan_segments: out
            .conversation
            .transcript_segments
            .iter()
            .filter(|s| s.section_details.section_name == TranscriptSectionName::AssessmentAndPlan)
            .map(|s| s.segment_id.as_str())
            .collect(),
        segments: out
            .conversation
            .transcript_segments
            .iter()
            .map(|s| (s.segment_id.as_str(), s))
            .collect(),
    };
    let mut report = MappingReport::default();
    let mut entries = Vec::new();
    let mut provenances = Vec::new();

    let device_url = b.full_url("device", "scribe");
    let device_id = device.identifier_value(&mapping.device.name);
    entries.push(b.entry(
        &device_url,
        b.device(device, &device_id),
        "Device",
        &format!(
            "identifier={}|{device_id}",
            mapping.identifier_system("device")
        ),
    ));

    let transcript_url = b.full_url("document", "transcript");
    let (res, ine) = b.transcript_document(&device_url);
    entries.push(b.entry(&transcript_url, res, "DocumentReference", &ine));
    // The transcript comes from the audio: its evidence is every segment's stretch of audio.
    let all_segments: Vec<&str> = out
        .conversation
        .transcript_segments
        .iter()
        .map(|s| s.segment_id.as_str())
        .collect();
    provenances.push(b.provenance(
        "document/transcript",
        &transcript_url,
        &device_url,
        None,
        &all_segments,
    ));

    let note_url = b.full_url("document", "note");
    let (res, ine) = b.note_document(&device_url);
    entries.push(b.entry(&note_url, res, "DocumentReference", &ine));
    let mut note_evidence: Vec<&str> = unique(
        out.documentation
            .sections
            .iter()
            .flat_map(|s| &s.summary)
            .flat_map(|l| &l.evidence_links)
            .map(|e| e.segment_id.as_str()),
    );
    // A note with no sentence (a short or off-topic recording) still came from reading the
    // whole transcript: that is its evidence (the profile requires some).
    if note_evidence.is_empty() {
        note_evidence = all_segments.clone();
    }
    provenances.push(b.provenance(
        "document/note",
        &note_url,
        &device_url,
        Some(&transcript_url),
        &note_evidence,
    ));

    // Each Condition and MedicationStatement with the Provenance of its evidence.
    let mut add = |kind: &str,
                   ty: &str,
                   first: &ClinicalInsight,
                   (res, ine): (Value, String),
                   segments: &[&str]| {
        let url = b.full_url(kind, &first.insight_id);
        entries.push(b.entry(&url, res, ty, &ine));
        provenances.push(b.provenance(
            &format!("insight/{}", first.insight_id),
            &url,
            &device_url,
            Some(&transcript_url),
            segments,
        ));
    };
    for (group, class) in b.condition_groups(&mut report) {
        add(
            "condition",
            "Condition",
            group.first,
            b.condition(&group, class),
            &group.segments,
        );
        report.conditions += 1;
    }
    for group in b.medication_groups(&mut report) {
        let resource = b.medication_statement(&group);
        add(
            "medication",
            "MedicationStatement",
            group.first,
            resource,
            &group.segments,
        );
        report.medication_statements += 1;
    }
    report.provenances = provenances.len();
    entries.extend(provenances);
    Ok(MappedBundle {
        bundle: json!({
            "resourceType": "Bundle",
            "identifier": {"system": mapping.identifier_system("job"), "value": out.job_name},
            "type": "transaction",
            "entry": entries,
        }),
        report,
    })
}

/// The job a Bundle belongs to (its `identifier.value`): the outbox key.
pub fn job_of(bundle: &Value) -> Option<&str> {
    bundle["identifier"]["value"]
        .as_str()
        .filter(|j| check_job_name(j).is_ok())
}

fn unique<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = BTreeSet::new();
    it.filter(|s| seen.insert(*s)).collect()
}

/// Mentions of one coded concept, merged.
struct Group<'a, O> {
    first: &'a ClinicalInsight,
    code: &'a crate::healthscribe::Code,
    overrides: Option<&'a O>,
    segments: Vec<&'a str>,
    mentions: Vec<&'a ClinicalInsight>,
}

struct Builder<'a> {
    m: &'a Mapping,
    ctx: &'a EncounterContext,
    out: &'a JobOutputs<'a>,
    times: BTreeMap<&'a str, (f64, f64)>,
    plan_segments: BTreeSet<&'a str>,
    segments: BTreeMap<&'a str, &'a TranscriptSegment>,
}

/// Reason counted in [`MappingReport::skipped`] for insights from a segment whose speaker role
/// is unsure (besides trait names, missing codes and `chart policy: CLASS…`).
pub const SKIP_SPEAKER_UNKNOWN: &str = "speaker role unknown";

fn coding(system: &str, code: &str, display: Option<&str>) -> Value {
    let mut c = json!({"system": system, "code": code});
    if let Some(d) = display.filter(|d| !d.is_empty()) {
        c["display"] = d.into();
    }
    c
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl<'a> Builder<'a> {
    fn full_url(&self, kind: &str, key: &str) -> String {
        let name = format!("{}/{kind}/{key}", self.out.job_name);
        format!("urn:uuid:{}", uuid::Uuid::new_v5(&NS, name.as_bytes()))
    }

    fn entry(&self, url: &str, resource: Value, ty: &str, if_none_exist: &str) -> Value {
        json!({
            "fullUrl": url,
            "resource": resource,
            "request": {"method": "POST", "url": ty, "ifNoneExist": if_none_exist},
        })
    }

    /// `meta` of an AI-made resource; `tag` is the Provenance's business id.
    fn meta(&self, profile: &str, ai_made: bool, tag: Option<(String, String)>) -> Value {
        let mut meta = json!({"profile": [self.m.profile(profile)]});
        if ai_made {
            meta["security"] = json!([coding(
                AIAST_SYSTEM,
                "AIAST",
                Some("Artificial Intelligence asserted")
            )]);
        }
        if let Some((system, code)) = tag {
            meta["tag"] = json!([{"system": system, "code": code}]);
        }
        meta
    }

    /// Business identifier and the matching `ifNoneExist`.
    fn identifier(&self, kind: &str, key: &str) -> (Value, String) {
        let system = self.m.identifier_system(kind);
        let value = format!("{}/{key}", self.out.job_name);
        let ine = format!("identifier={system}|{value}");
        (json!([{"system": system, "value": value}]), ine)
    }

    fn device(&self, d: &ScribeDevice, id_value: &str) -> Value {
        let mut versions = vec![json!({"type": {"text": "software"}, "value": d.version})];
        for (role, model) in &d.models {
            versions.push(json!({"type": {"text": role}, "value": model}));
        }
        json!({
            "resourceType": "Device",
            "meta": self.meta("scribe-device", false, None),
            "identifier": [{"system": self.m.identifier_system("device"), "value": id_value}],
            "deviceName": [{"name": self.m.device.name, "type": "manufacturer-name"}],
            "type": {"text": self.m.device.type_text},
            "version": versions,
        })
    }

    fn document(
        &self,
        profile: &str,
        key: &str,
        ty: Value,
        device_url: &str,
        description: &str,
        attachments: Vec<Value>,
    ) -> (Value, String) {
        let (identifier, ine) = self.identifier("document", key);
        let doc = json!({
            "resourceType": "DocumentReference",
            "meta": self.meta(profile, true, None),
            "identifier": identifier,
            "status": "current",
            "docStatus": self.m.note.doc_status.as_str(),
            "type": ty,
            "subject": {"reference": self.ctx.patient},
            "date": self.out.recorded,
            "author": [{"reference": device_url}],
            "description": description,
            "content": attachments.into_iter().map(|a| json!({"attachment": a})).collect::<Vec<_>>(),
            "context": {"encounter": [{"reference": self.ctx.encounter}]},
        });
        (doc, ine)
    }

    fn attachment(content_type: &str, title: &str, bytes: &[u8]) -> Value {
        json!({"contentType": content_type, "data": b64(bytes), "title": title, "size": bytes.len()})
    }

    fn transcript_document(&self, device_url: &str) -> (Value, String) {
        let ty = json!({
            "coding": [coding(
                &format!("{}/CodeSystem/document-type", self.m.canonical_base),
                "encounter-transcript",
                Some("Encounter transcript"),
            )],
            "text": "Encounter transcript",
        });
        self.document(
            "scribe-transcript",
            "transcript",
            ty,
            device_url,
            "Transcript of the encounter audio (AWS HealthScribe transcript format)",
            vec![Self::attachment(
                "application/json",
                "transcript.json",
                self.out.transcript_json,
            )],
        )
    }

    fn note_document(&self, device_url: &str) -> (Value, String) {
        let t = self.m.note_type(self.out.template);
        let ty = json!({
            "coding": [coding(&t.system, &t.code, t.display.as_deref())],
            "text": t.display.clone().unwrap_or_else(|| t.code.clone()),
        });
        let c = &self.m.note.category;
        let note: &[u8] = if self.out.note_markdown.trim().is_empty() {
            b"_No clinical content was found in this encounter._\n"
        } else {
            self.out.note_markdown.as_bytes()
        };
        let (mut doc, ine) = self.document(
            "scribe-note",
            "note",
            ty,
            device_url,
            "Clinical note drafted by an AI scribe from the encounter audio; not yet reviewed",
            vec![
                Self::attachment(
                    "text/markdown",
                    t.display.as_deref().unwrap_or("Clinical note"),
                    note,
                ),
                Self::attachment(
                    "application/json",
                    "transcript.json",
                    self.out.transcript_json,
                ),
                Self::attachment(
                    "application/json",
                    "clinical-documentation.json",
                    self.out.documentation_json,
                ),
            ],
        );
        doc["category"] = json!([{"coding": [coding(&c.system, &c.code, c.display.as_deref())]}]);
        (doc, ine)
    }

    fn provenance(
        &self,
        key: &str,
        target: &str,
        device_url: &str,
        source: Option<&str>,
        segments: &[&str],
    ) -> Value {
        let system = self.m.identifier_system("provenance");
        let tag = format!("{}/{key}", self.out.job_name);
        let evidence: Vec<Value> = segments
            .iter()
            .filter_map(|id| {
                let (b, e) = self.times.get(id)?;
                Some(json!({
                    "url": self.m.profile("evidence-segment"),
                    "extension": [
                        {"url": "segmentId", "valueString": id},
                        {"url": "beginAudioTime", "valueDecimal": round3(*b)},
                        {"url": "endAudioTime", "valueDecimal": round3(*e)},
                    ],
                }))
            })
            .collect();
        let mut entity = match source {
            Some(src) => json!({"role": "source", "what": {"reference": src}}),
            None => json!({"role": "source", "what": {"display": "Encounter audio"}}),
        };
        if !evidence.is_empty() {
            entity["extension"] = Value::Array(evidence);
        }
        let prov = json!({
            "resourceType": "Provenance",
            "meta": self.meta("scribe-provenance", false, Some((system.clone(), tag.clone()))),
            "target": [{"reference": target}],
            "recorded": self.out.recorded,
            "activity": {"coding": [coding(
                "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                "CREATE",
                Some("create"),
            )]},
            "agent": [{
                "type": {"coding": [coding(
                    "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "author",
                    Some("Author"),
                )]},
                "who": {"reference": device_url},
            }],
            "entity": [entity],
        });
        let url = self.full_url("provenance", key);
        self.entry(&url, prov, "Provenance", &format!("_tag={system}|{tag}"))
    }

    /// Every segment of the insight has a speaker role at least as sure as the mapping asks.
    fn speaker_known(&self, ins: &ClinicalInsight) -> bool {
        ins.spans.iter().all(|sp| {
            self.segments
                .get(sp.segment_id.as_str())
                .is_some_and(|s| s.role_confidence() >= self.m.min_speaker_role_confidence)
        })
    }

    fn said_by_clinician(&self, segment_id: &str) -> bool {
        self.segments.get(segment_id).is_some_and(|s| {
            s.participant_details.participant_role.role == MedicalScribeParticipantRole::Clinician
        })
    }

    /// The insight's first span lies in a clinician's statement (not a question) that names the
    /// visit's reason ("today we're following up on your diabetes").
    fn visit_reason(&self, ins: &ClinicalInsight, cues: &[String]) -> bool {
        let Some(sp) = ins.spans.first() else {
            return false;
        };
        if !self.said_by_clinician(&sp.segment_id) {
            return false;
        }
        let Some(seg) = self.segments.get(sp.segment_id.as_str()) else {
            return false;
        };
        let range = sp.char_range();
        let text: Vec<char> = seg.content.chars().collect();
        let is_end = |c: char| matches!(c, '.' | '?' | '!');
        let start = text[..range.start.min(text.len())]
            .iter()
            .rposition(|c| is_end(*c))
            .map_or(0, |p| p + 1);
        let end = text[range.end.min(text.len())..]
            .iter()
            .position(|c| is_end(*c))
            .map_or(text.len(), |p| range.end + p + 1);
        let sentence: String = text[start..end.min(text.len())].iter().collect();
        let sentence = sentence.to_lowercase();
        !sentence.trim_end().ends_with('?') && cues.iter().any(|c| sentence.contains(c.as_str()))
    }

    /// Insights a rule takes, with their traits, one group per code (mentions in transcript
    /// order; the latest mention's rule decides); skipped ones counted by reason.
    fn groups<O>(
        &self,
        from: &[super::mapping::Source],
        rules: &'a [super::mapping::TraitRule<O>],
        code_system: &str,
        min_code_score: f64,
        no_code: &str,
        report: &mut MappingReport,
    ) -> Vec<Group<'a, O>> {
        let mut groups: Vec<Group<'a, O>> = Vec::new();
        for ins in &self.out.conversation.clinical_insights {
            if !from
                .iter()
                .any(|s| s.matches(ins.category, ins.entity_type))
            {
                continue;
            }
            let ext = ins.extensions.as_ref();
            let traits: Vec<(TraitName, f64)> = ext
                .map(|e| e.traits.iter().map(|t| (t.name, t.score)).collect())
                .unwrap_or_default();
            let overrides = match decide(rules, &traits) {
                Decision::Skip(t) => {
                    *report.skipped.entry(trait_name(t)).or_default() += 1;
                    continue;
                }
                Decision::Write(o) => o,
            };
            if !self.speaker_known(ins) {
                *report
                    .skipped
                    .entry(SKIP_SPEAKER_UNKNOWN.to_string())
                    .or_default() += 1;
                continue;
            }
            let code = ext.and_then(|e| {
                e.codes
                    .iter()
                    .filter(|c| c.system == code_system && c.score.unwrap_or(1.0) >= min_code_score)
                    .max_by(|a, b| a.score.unwrap_or(1.0).total_cmp(&b.score.unwrap_or(1.0)))
            });
            let Some(code) = code else {
                *report.skipped.entry(no_code.to_string()).or_default() += 1;
                continue;
            };
            let segs = ins.spans.iter().map(|s| s.segment_id.as_str());
            match groups.iter_mut().find(|g| g.code.code == code.code) {
                Some(g) => {
                    for s in segs {
                        if !g.segments.contains(&s) {
                            g.segments.push(s);
                        }
                    }
                    g.mentions.push(ins);
                    // Insights come in transcript order: the latest mention decides.
                    g.overrides = overrides;
                }
                None => groups.push(Group {
                    first: ins,
                    code,
                    overrides,
                    segments: unique(segs),
                    mentions: vec![ins],
                }),
            }
        }
        groups
    }

    /// Condition groups the chart policy lets through, each with its class.
    fn condition_groups(
        &self,
        report: &mut MappingReport,
    ) -> Vec<(Group<'a, ConditionOverride>, &'a ChartClass)> {
        let c = &self.m.conditions;
        let policy = &c.chart_policy;
        let groups = self.groups(
            &c.from,
            &c.trait_rules,
            &c.code_system,
            c.min_code_score,
            "no ICD-10-CM code",
            report,
        );
        let mut out = Vec::new();
        for g in groups {
            let by_clinician = |g: &Group<'a, ConditionOverride>, plan_only: bool| {
                g.mentions.iter().any(|m| {
                    m.spans.iter().any(|sp| {
                        self.said_by_clinician(&sp.segment_id)
                            && (!plan_only || self.plan_segments.contains(sp.segment_id.as_str()))
                    })
                })
            };
            let history = g.mentions.iter().all(|m| {
                m.extensions
                    .as_ref()
                    .is_some_and(|e| e.traits.iter().any(|t| t.name == TraitName::PastHistory))
            });
            let assessed = by_clinician(&g, true)
                || g.mentions
                    .iter()
                    .any(|m| self.visit_reason(m, &policy.visit_reason_cues));
            let (class, name) = if assessed {
                (&policy.assessment, "assessment")
            } else if history {
                (&policy.history, "history")
            } else {
                (&policy.reported, "reported")
            };
            let skip = if !class.write {
                Some(format!("chart policy: {name}"))
            } else if class.requires_clinician && !by_clinician(&g, false) {
                Some(format!("chart policy: {name}, no clinician said it"))
            } else {
                None
            };
            match skip {
                Some(reason) => *report.skipped.entry(reason).or_default() += g.mentions.len(),
                None => out.push((g, class)),
            }
        }
        out
    }

    fn medication_groups(&self, report: &mut MappingReport) -> Vec<Group<'a, MedicationOverride>> {
        let m = &self.m.medications;
        self.groups(
            &m.from,
            &m.trait_rules,
            &m.code_system,
            m.min_code_score,
            "no RxNorm code",
            report,
        )
    }

    fn condition(&self, g: &Group<'a, ConditionOverride>, class: &ChartClass) -> (Value, String) {
        let rule = &self.m.conditions;
        let o = g.overrides.cloned().unwrap_or_default();
        let clinical = o.clinical_status.unwrap_or(rule.clinical_status);
        let verification = o
            .verification_status
            .or(class.verification_status)
            .unwrap_or(rule.verification_status);
        let category = o
            .category
            .as_ref()
            .or(class.category.as_ref())
            .unwrap_or(&rule.category);
        let (identifier, ine) = self.identifier("insight", &g.first.insight_id);
        let res = json!({
            "resourceType": "Condition",
            "meta": self.meta("scribe-condition", true, None),
            "identifier": identifier,
            "clinicalStatus": {"coding": [coding(
                "http://terminology.hl7.org/CodeSystem/condition-clinical",
                clinical.as_str(),
                None,
            )]},
            "verificationStatus": {"coding": [coding(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                verification.as_str(),
                None,
            )]},
            "category": [{"coding": [coding(&category.system, &category.code, category.display.as_deref())]}],
            "code": {
                "coding": [coding(&rule.code_system, &g.code.code, g.code.display.as_deref())],
                "text": spoken(g.first),
            },
            "subject": {"reference": self.ctx.patient},
            "encounter": {"reference": self.ctx.encounter},
            "recordedDate": self.out.recorded,
        });
        (res, ine)
    }

    fn medication_statement(&self, g: &Group<'a, MedicationOverride>) -> (Value, String) {
        let rule = &self.m.medications;
        let plan_only = g.segments.iter().all(|s| self.plan_segments.contains(s));
        let status: MedicationStatus = g
            .overrides
            .and_then(|o| o.status)
            .or(rule.plan_only_status.filter(|_| plan_only))
            .unwrap_or(rule.status);
        let (identifier, ine) = self.identifier("insight", &g.first.insight_id);
        let mut res = json!({
            "resourceType": "MedicationStatement",
            "meta": self.meta("scribe-medication-statement", true, None),
            "identifier": identifier,
            "status": status.as_str(),
            "medicationCodeableConcept": {
                "coding": [coding(&rule.code_system, &g.code.code, g.code.display.as_deref())],
                "text": spoken(g.first),
            },
            "subject": {"reference": self.ctx.patient},
            "context": {"reference": self.ctx.encounter},
            "dateAsserted": self.out.recorded,
        });
        // The first mention that carries any dosage words describes the dosage.
        if let Some(d) = g
            .mentions
            .iter()
            .find_map(|ins| dosage(self.m, &rule.dosage_attributes, ins))
        {
            res["dosage"] = json!([d]);
        }
        (res, ine)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn trait_name(t: TraitName) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The words the insight was heard as.
fn spoken(ins: &ClinicalInsight) -> String {
    ins.spans
        .iter()
        .map(|s| s.content.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Dosage` from the insight's attributes: `text` always, structured parts where the words
/// parse (dose with a UCUM unit, route with a coding, frequency as `timing.repeat`).
fn dosage(m: &Mapping, order: &[EntitySubType], ins: &ClinicalInsight) -> Option<Value> {
    let text_of = |t: EntitySubType| {
        ins.attributes
            .iter()
            .filter(|a| a.attribute_type == t)
            .flat_map(|a| a.spans.iter().map(|s| s.content.trim().to_string()))
            .next()
    };
    let parts: Vec<String> = order.iter().filter_map(|t| text_of(*t)).collect();
    if parts.is_empty() {
        return None;
    }
    let mut d = json!({"text": parts.join(" ")});
    if let Some(q) = text_of(EntitySubType::Dosage)
        .or_else(|| text_of(EntitySubType::Strength))
        .and_then(|t| dose_quantity(m, &t))
    {
        d["doseAndRate"] = json!([{"doseQuantity": q}]);
    }
    if let Some(route) = text_of(EntitySubType::RouteOrMode) {
        let lower = route.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric() && c != '.')
            .collect();
        let hit = m.dosage.routes.iter().find(|r| {
            r.phrases.iter().any(|p| {
                if p.contains(' ') {
                    lower.contains(p.as_str())
                } else {
                    words.contains(&p.as_str())
                }
            })
        });
        let mut r = json!({"text": route});
        if let Some(hit) = hit {
            r["coding"] = json!([coding(
                &hit.coding.system,
                &hit.coding.code,
                hit.coding.display.as_deref()
            )]);
        }
        d["route"] = r;
    }
    if let Some(f) = text_of(EntitySubType::Frequency) {
        let (repeat, prn) = frequency(&f);
        if let Some(r) = repeat {
            d["timing"] = json!({"repeat": r});
        }
        if prn {
            d["asNeededBoolean"] = true.into();
        }
    }
    Some(d)
}

/// "ten milligrams", "2.5 mg", "two puffs" → a UCUM `Quantity`.
fn dose_quantity(m: &Mapping, text: &str) -> Option<Value> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    // The unit is the last word that is a known unit; the number is everything before it,
    // with digits glued to units ("10mg") split first.
    for (i, w) in words.iter().enumerate().rev() {
        let (num_part, unit) = match m.dosage.units.get_key_value(*w) {
            Some((u, _)) => (words[..i].join(" "), u.as_str()),
            None => {
                let split = w.find(|c: char| c.is_ascii_alphabetic())?;
                let (n, u) = w.split_at(split);
                if n.is_empty() || !m.dosage.units.contains_key(u) || i != words.len() - 1 {
                    continue;
                }
                let mut before = words[..i].join(" ");
                before.push(' ');
                before.push_str(n);
                (before, m.dosage.units.get_key_value(u)?.0.as_str())
            }
        };
        let value = crate::clinical::text::number_value(num_part.trim())?;
        if !(value.is_finite() && value > 0.0) {
            return None;
        }
        return Some(json!({
            "value": value,
            "unit": unit,
            "system": UCUM,
            "code": m.dosage.units[unit],
        }));
    }
    None
}

/// "twice a day" → `{frequency 2, period 1, periodUnit d}`; "as needed" sets `asNeeded`.
fn frequency(text: &str) -> (Option<Value>, bool) {
    let t = text.to_lowercase();
    let prn = t.contains("as needed") || t.split_whitespace().any(|w| w == "prn");
    let abbrev = |w: &str| match w.trim_matches('.') {
        "qd" | "daily" | "nightly" | "qhs" => Some((1.0, 1.0, "d")),
        "bid" | "b.i.d" => Some((2.0, 1.0, "d")),
        "tid" | "t.i.d" => Some((3.0, 1.0, "d")),
        "qid" | "q.i.d" => Some((4.0, 1.0, "d")),
        "weekly" => Some((1.0, 1.0, "wk")),
        "monthly" => Some((1.0, 1.0, "mo")),
        _ => None,
    };
    let unit_of = |w: &str| match w.trim_end_matches('s') {
        "day" | "night" | "morning" | "evening" => Some("d"),
        "hour" => Some("h"),
        "week" => Some("wk"),
        "month" => Some("mo"),
        _ => None,
    };
    let words: Vec<&str> = t.split_whitespace().collect();
    let mut found = None;
    // "every N hours" / "every other day".
    if let Some(i) = words.iter().position(|w| *w == "every") {
        let rest = &words[i + 1..];
        if let Some(j) = rest.iter().position(|w| unit_of(w).is_some()) {
            let n = rest[..j].join(" ");
            let period = if n == "other" {
                Some(2.0)
            } else if n.is_empty() {
                Some(1.0)
            } else {
                crate::clinical::text::number_value(&n)
            };
            if let Some(p) = period {
                found = Some((1.0, p, unit_of(rest[j]).unwrap_or("d")));
            }
        }
    }
    // "once / twice / three times a day|daily|per week".
    if found.is_none() {
        let count = if t.contains("once") {
            Some(1.0)
        } else if t.contains("twice") {
            Some(2.0)
        } else {
            words
                .iter()
                .position(|w| *w == "times")
                .and_then(|i| crate::clinical::text::number_value(&words[..i].join(" ")))
        };
        let unit = words.iter().rev().find_map(|w| {
            if w.trim_matches('.') == "daily" {
                Some("d")
            } else {
                unit_of(w)
            }
        });
        if let (Some(c), Some(u)) = (count, unit) {
            found = Some((c, 1.0, u));
        }
    }
    if found.is_none() {
        found = words.iter().find_map(|w| abbrev(w));
    }
    let repeat =
        found.map(|(f, p, u)| json!({"frequency": f as u32, "period": p, "periodUnit": u}));
    (repeat, prn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_references_are_checked() {
        let c = EncounterContext::new("123", "Encounter/e-9").unwrap();
        assert_eq!(c.patient, "Patient/123");
        assert_eq!(c.encounter, "Encounter/e-9");
        assert_eq!(
            EncounterContext::new("Patient/a b", "e").unwrap_err(),
            ContextError::BadReference {
                field: "patient",
                kind: "Patient"
            }
        );
        assert!(EncounterContext::new("p", "").is_err());
        assert!(check_job_name("job-1.a_b").is_ok());
        assert!(check_job_name("job 1").is_err());
        assert!(check_job_name("x|y").is_err());
    }

    #[test]
    fn spoken_doses_and_frequencies_parse() {
        let m = Mapping::bundled().unwrap();
        let q = dose_quantity(&m, "ten milligrams").unwrap();
        assert_eq!(
            (q["value"].as_f64(), q["code"].as_str()),
            (Some(10.0), Some("mg"))
        );
        let q = dose_quantity(&m, "2.5 mg").unwrap();
        assert_eq!(q["value"].as_f64(), Some(2.5));
        let q = dose_quantity(&m, "500mg").unwrap();
        assert_eq!(q["value"].as_f64(), Some(500.0));
        let q = dose_quantity(&m, "two puffs").unwrap();
        assert_eq!(q["code"], "{puff}");
        assert!(dose_quantity(&m, "a lot").is_none());
        assert!(dose_quantity(&m, "some milligrams").is_none());

        let f = |s: &str| {
            frequency(s).0.map(|v| {
                (
                    v["frequency"].as_u64().unwrap(),
                    v["period"].as_f64().unwrap(),
                    v["periodUnit"].as_str().unwrap().to_string(),
                )
            })
        };
        assert_eq!(f("twice a day"), Some((2, 1.0, "d".into())));
        assert_eq!(f("once daily"), Some((1, 1.0, "d".into())));
        assert_eq!(f("three times a day"), Some((3, 1.0, "d".into())));
        assert_eq!(f("every six hours"), Some((1, 6.0, "h".into())));
        assert_eq!(f("every other day"), Some((1, 2.0, "d".into())));
        assert_eq!(f("BID"), Some((2, 1.0, "d".into())));
        assert_eq!(f("once a week"), Some((1, 1.0, "wk".into())));
        assert_eq!(f("at night"), None);
        assert!(frequency("as needed").1);
        assert!(!frequency("twice a day").1);
    }
}
