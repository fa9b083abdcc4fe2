//! The transcript file (`transcript.json`): turn-by-turn segments, word items and insights.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::insights::ClinicalInsight;
use super::job::{MedicalScribeLanguageCode, MedicalScribeParticipantRole};

/// Top level of `transcript.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TranscriptFile {
    pub conversation: Conversation,
}

/// Field order follows AWS's async sample so our files diff cleanly against theirs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Conversation {
    pub conversation_id: String,
    /// Async jobs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Async jobs only; streaming files omit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_type: Option<JobType>,
    pub language_code: MedicalScribeLanguageCode,
    /// Streaming sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default)]
    pub clinical_insights: Vec<ClinicalInsight>,
    #[serde(default)]
    pub transcript_items: Vec<TranscriptItem>,
    #[serde(default)]
    pub transcript_segments: Vec<TranscriptSegment>,
    /// Ours, not AWS's (see the module docs); omitted when empty.
    #[serde(
        rename = "Extensions",
        default,
        skip_serializing_if = "ConversationExtensions::is_absent"
    )]
    pub extensions: Option<ConversationExtensions>,
}

/// Our `"Extensions"` object on the conversation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConversationExtensions {
    /// The speech model that made the transcript (e.g. `whisper ggml-base.bin`): the FHIR
    /// `Device` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asr_model: Option<String>,
    /// Speaker diarization only: each diarized speaker's role, how sure it is, and whether the
    /// decision is unsure (confidence below 0.8); see `diarize::roles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_roles: Option<Vec<SpeakerRoleInfo>>,
}

/// One diarized speaker in `Extensions.SpeakerRoles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpeakerRoleInfo {
    pub participant_role: ParticipantRole,
    /// 0..1, as each of the speaker's segments' `ParticipantRoleConfidence`.
    pub confidence: f64,
    /// The role decision is not sure enough to chart from (confidence below 0.8).
    pub unsure: bool,
    /// Seconds of speech diarization gave the speaker.
    pub speech_seconds: f64,
    /// Words the ASR heard from the speaker.
    pub words: usize,
}

impl ConversationExtensions {
    fn is_absent(e: &Option<Self>) -> bool {
        e.as_ref()
            .is_none_or(|e| e.asr_model.is_none() && e.speaker_roles.is_none())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobType {
    Async,
    Streaming,
}

/// One word or punctuation mark with its timing.
///
/// Reads both the samples' `Alternatives` list and the streaming model's flat
/// `Confidence`/`Content`; always writes `Alternatives`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", try_from = "TranscriptItemWire")]
pub struct TranscriptItem {
    pub alternatives: Vec<Alternative>,
    pub begin_audio_time: f64,
    pub end_audio_time: f64,
    #[serde(rename = "Type")]
    pub item_type: ItemType,
    /// Ours, not AWS's; omitted when absent so the item stays AWS-identical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<ItemExtensions>,
}

/// Our `"Extensions"` on a transcript item (see the module docs of [`crate::healthscribe`]):
/// `{"VocabularyCorrected": true, "HeardAs": "listen up, roll"}` on each word of a custom
/// vocabulary term that replaced what the plain decode heard, so a reviewer can see which words
/// were not heard as written and check them against the audio.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ItemExtensions {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vocabulary_corrected: bool,
    /// The plain decode's words in the term's place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard_as: Option<String>,
}

impl ItemExtensions {
    /// The mark of a word a custom vocabulary put in place of `heard_as`.
    pub fn vocabulary(heard_as: &str) -> Self {
        Self {
            vocabulary_corrected: true,
            heard_as: Some(heard_as.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Alternative {
    /// `null` reads as 0, which is what AWS's samples give punctuation.
    #[serde(deserialize_with = "null_as_zero")]
    pub confidence: f64,
    pub content: String,
}

/// Every spelling an AWS transcript item may arrive in.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TranscriptItemWire {
    #[serde(default)]
    alternatives: Option<Vec<Alternative>>,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    content: Option<String>,
    begin_audio_time: f64,
    end_audio_time: f64,
    #[serde(rename = "Type")]
    item_type: ItemType,
    #[serde(default)]
    extensions: Option<ItemExtensions>,
}

impl TryFrom<TranscriptItemWire> for TranscriptItem {
    type Error = String;

    fn try_from(w: TranscriptItemWire) -> Result<Self, Self::Error> {
        let alternatives = match (w.alternatives, w.content) {
            (Some(_), Some(_)) => {
                return Err(
                    "transcript item has both `Alternatives` and a flat `Content`; \
                            expected one of the two forms"
                        .into(),
                )
            }
            (Some(alternatives), None) => alternatives,
            (None, Some(content)) => vec![Alternative {
                confidence: w.confidence.unwrap_or(0.0),
                content,
            }],
            (None, None) => {
                return Err(
                    "transcript item needs `Alternatives` (or the streaming `Content`)".into(),
                )
            }
        };
        Ok(TranscriptItem {
            alternatives,
            begin_audio_time: w.begin_audio_time,
            end_audio_time: w.end_audio_time,
            item_type: w.item_type,
            // `{}` reads as absent, so what we read equals what we would write.
            extensions: w.extensions.filter(|e| *e != ItemExtensions::default()),
        })
    }
}

fn null_as_zero<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(0.0))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ItemType {
    #[serde(rename = "PRONUNCIATION", alias = "pronunciation")]
    Pronunciation,
    #[serde(rename = "PUNCTUATION", alias = "punctuation")]
    Punctuation,
}

/// One dialogue turn; spans in insights index into its `Content`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TranscriptSegment {
    pub begin_audio_time: f64,
    pub content: String,
    pub end_audio_time: f64,
    pub participant_details: ParticipantDetails,
    pub section_details: SectionDetails,
    pub segment_id: String,
    /// Ours, not AWS's (see the module docs): how sure the speaker role is. Omitted when the
    /// role is known, so such a segment is byte-for-byte AWS's shape.
    #[serde(
        rename = "Extensions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub extensions: Option<SegmentExtensions>,
}

/// Our `"Extensions"` object on a transcript segment.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SegmentExtensions {
    /// 0..1: how sure `ParticipantDetails.ParticipantRole` is. 0 means unknown: one-channel
    /// audio before diarization labels everything `CLINICIAN_0`, because AWS's format has no
    /// "unknown speaker" role. Absent means known (channel identification, or AWS's own files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_role_confidence: Option<f64>,
}

impl TranscriptSegment {
    /// How sure the speaker role is: the extension's value, else 1 (known).
    pub fn role_confidence(&self) -> f64 {
        self.extensions
            .and_then(|e| e.participant_role_confidence)
            .unwrap_or(1.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParticipantDetails {
    pub participant_role: ParticipantRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SectionDetails {
    pub section_name: TranscriptSectionName,
}

/// The transcript's four documented sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TranscriptSectionName {
    Subjective,
    Objective,
    AssessmentAndPlan,
    /// Small talk and transitions; AWS's prose calls it "Visit Flow Management".
    #[serde(alias = "VISIT_FLOW_MANAGEMENT")]
    Other,
}

/// A speaker label such as `CLINICIAN_0` or `PATIENT_1`: role plus a zero-based index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ParticipantRole {
    pub role: MedicalScribeParticipantRole,
    pub index: u32,
}

impl ParticipantRole {
    pub const fn clinician(index: u32) -> Self {
        Self {
            role: MedicalScribeParticipantRole::Clinician,
            index,
        }
    }

    pub const fn patient(index: u32) -> Self {
        Self {
            role: MedicalScribeParticipantRole::Patient,
            index,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid participant role `{0}`: expected CLINICIAN_<n> or PATIENT_<n> with n a decimal \
     index without leading zeros"
)]
pub struct ParticipantRoleError(pub String);

impl FromStr for ParticipantRole {
    type Err = ParticipantRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParticipantRoleError(s.to_owned());
        let (role, digits) = if let Some(d) = s.strip_prefix("CLINICIAN_") {
            (MedicalScribeParticipantRole::Clinician, d)
        } else if let Some(d) = s.strip_prefix("PATIENT_") {
            (MedicalScribeParticipantRole::Patient, d)
        } else {
            return Err(err());
        };
        // Canonical digits only, so every accepted label writes back identically.
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !canonical {
            return Err(err());
        }
        let index = digits.parse().map_err(|_| err())?;
        Ok(Self { role, index })
    }
}

impl fmt::Display for ParticipantRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            MedicalScribeParticipantRole::Clinician => "CLINICIAN",
            MedicalScribeParticipantRole::Patient => "PATIENT",
        };
        write!(f, "{role}_{}", self.index)
    }
}

impl TryFrom<String> for ParticipantRole {
    type Error = ParticipantRoleError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ParticipantRole> for String {
    fn from(r: ParticipantRole) -> Self {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn participant_role_parses_and_writes() {
        for (text, role) in [
            ("CLINICIAN_0", ParticipantRole::clinician(0)),
            ("PATIENT_1", ParticipantRole::patient(1)),
            ("PATIENT_12", ParticipantRole::patient(12)),
        ] {
            assert_eq!(text.parse::<ParticipantRole>().unwrap(), role);
            assert_eq!(role.to_string(), text);
            assert_eq!(serde_json::to_value(role).unwrap(), json!(text));
            assert_eq!(
                serde_json::from_value::<ParticipantRole>(json!(text)).unwrap(),
                role
            );
        }
    }

    #[test]
    fn participant_role_rejects_other_labels() {
        for bad in [
            "CLINICIAN",
            "PATIENT",
            "clinician_0",
            "Patient_0",
            "DOCTOR_0",
            "PATIENT_",
            "PATIENT_-1",
            "PATIENT_+1",
            "PATIENT_01",
            "PATIENT_0x",
            "PATIENT_ 1",
            "CLINICIAN_99999999999",
            "",
        ] {
            let err = bad.parse::<ParticipantRole>().unwrap_err();
            assert!(err
                .to_string()
                .contains("expected CLINICIAN_<n> or PATIENT_<n>"));
            let serde_err = serde_json::from_value::<ParticipantRole>(json!(bad)).unwrap_err();
            assert!(
                serde_err.to_string().contains(&format!("`{bad}`")),
                "{serde_err}"
            );
        }
    }

    #[test]
    fn item_type_reads_both_spellings_and_writes_upper_case() {
        for (text, t) in [
            ("PRONUNCIATION", ItemType::Pronunciation),
            ("pronunciation", ItemType::Pronunciation),
            ("PUNCTUATION", ItemType::Punctuation),
            ("punctuation", ItemType::Punctuation),
        ] {
            assert_eq!(serde_json::from_value::<ItemType>(json!(text)).unwrap(), t);
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                json!(text.to_ascii_uppercase())
            );
        }
        let err = serde_json::from_value::<ItemType>(json!("Pronunciation")).unwrap_err();
        assert!(err.to_string().contains("unknown variant `Pronunciation`"));
    }

    #[test]
    fn item_extensions_are_written_only_when_present() {
        let marked = json!({
            "Alternatives": [{"Confidence": 0.8, "Content": "lisinopril"}],
            "BeginAudioTime": 1.0, "EndAudioTime": 1.6, "Type": "PRONUNCIATION",
            "Extensions": {"VocabularyCorrected": true, "HeardAs": "listen up, roll"}
        });
        let item: TranscriptItem = serde_json::from_value(marked.clone()).unwrap();
        assert_eq!(
            item.extensions,
            Some(ItemExtensions::vocabulary("listen up, roll"))
        );
        assert_eq!(serde_json::to_value(&item).unwrap(), marked);
        // `{}` reads as absent and nothing is written back.
        let mut plain = marked;
        plain["Extensions"] = json!({});
        let item: TranscriptItem = serde_json::from_value(plain).unwrap();
        assert_eq!(item.extensions, None);
        assert!(serde_json::to_value(&item)
            .unwrap()
            .get("Extensions")
            .is_none());
    }

    #[test]
    fn streaming_flat_item_becomes_alternatives() {
        let item: TranscriptItem = serde_json::from_value(json!({
            "BeginAudioTime": 1.5, "EndAudioTime": 1.9, "Type": "pronunciation",
            "Confidence": 0.93, "Content": "wheeze"
        }))
        .unwrap();
        assert_eq!(
            item.alternatives,
            vec![Alternative {
                confidence: 0.93,
                content: "wheeze".into()
            }]
        );
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            json!({
                "Alternatives": [{"Confidence": 0.93, "Content": "wheeze"}],
                "BeginAudioTime": 1.5, "EndAudioTime": 1.9, "Type": "PRONUNCIATION"
            })
        );

        // Streaming punctuation may carry no confidence at all.
        let punct: TranscriptItem = serde_json::from_value(json!({
            "BeginAudioTime": 0, "EndAudioTime": 0, "Type": "punctuation", "Content": ","
        }))
        .unwrap();
        assert_eq!(punct.alternatives[0].confidence, 0.0);
    }

    #[test]
    fn null_confidence_reads_as_zero() {
        let item: TranscriptItem = serde_json::from_value(json!({
            "Alternatives": [{"Confidence": null, "Content": "."}],
            "BeginAudioTime": 0, "EndAudioTime": 0, "Type": "PUNCTUATION"
        }))
        .unwrap();
        assert_eq!(item.alternatives[0].confidence, 0.0);
    }

    #[test]
    fn item_with_both_or_neither_forms_is_rejected() {
        let both = serde_json::from_value::<TranscriptItem>(json!({
            "Alternatives": [{"Confidence": 1, "Content": "a"}], "Content": "a",
            "BeginAudioTime": 0, "EndAudioTime": 0, "Type": "PRONUNCIATION"
        }))
        .unwrap_err();
        assert!(both.to_string().contains("both `Alternatives`"), "{both}");
        let neither = serde_json::from_value::<TranscriptItem>(json!({
            "BeginAudioTime": 0, "EndAudioTime": 0, "Type": "PRONUNCIATION"
        }))
        .unwrap_err();
        assert!(
            neither.to_string().contains("needs `Alternatives`"),
            "{neither}"
        );
    }

    #[test]
    fn transcript_section_names() {
        for (text, s) in [
            ("SUBJECTIVE", TranscriptSectionName::Subjective),
            ("OBJECTIVE", TranscriptSectionName::Objective),
            (
                "ASSESSMENT_AND_PLAN",
                TranscriptSectionName::AssessmentAndPlan,
            ),
            ("OTHER", TranscriptSectionName::Other),
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(text));
            assert_eq!(
                serde_json::from_value::<TranscriptSectionName>(json!(text)).unwrap(),
                s
            );
        }
        let vfm: TranscriptSectionName =
            serde_json::from_value(json!("VISIT_FLOW_MANAGEMENT")).unwrap();
        assert_eq!(serde_json::to_value(vfm).unwrap(), json!("OTHER"));
        let err = serde_json::from_value::<TranscriptSectionName>(json!("PLAN")).unwrap_err();
        assert!(err.to_string().contains("unknown variant `PLAN`"), "{err}");
    }

    #[test]
    fn job_type_is_closed() {
        assert_eq!(
            serde_json::from_value::<JobType>(json!("STREAMING")).unwrap(),
            JobType::Streaming
        );
        let err = serde_json::from_value::<JobType>(json!("BATCH")).unwrap_err();
        assert!(err.to_string().contains("unknown variant `BATCH`"), "{err}");
    }
}
