//! The ACI-BENCH reader: [`read_aci_bench`] reads `<dir>/<split>.json` (dialogue `src`, note
//! `tgt`), the four `<split>_<division>.json` files and `<split>_metadata.csv` (gender →
//! pronouns). A dialogue becomes a [`Conversation`] ([`dialogue_to_conversation`]): one segment
//! per `[doctor]`/`[patient]` turn (`[patient_guest]` is `PATIENT_1`), no times, no insights; an
//! analyzer adds sections and insights.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::data::parse_csv;
use crate::healthscribe::{
    Conversation, MedicalScribeLanguageCode, ParticipantDetails, ParticipantRole, Pronouns,
    SectionDetails, TranscriptSectionName, TranscriptSegment,
};

/// The four note divisions ACI-BENCH scores separately.
pub const DIVISIONS: [&str; 4] = [
    "subjective",
    "objective_exam",
    "objective_results",
    "assessment_and_plan",
];

/// One encounter: dialogue, gold note and gold divisions.
#[derive(Debug, Clone)]
pub struct AciEncounter {
    pub id: String,
    pub dialogue: String,
    pub note: String,
    /// Gold text per [`DIVISIONS`] entry (`#####EMPTY#####` where the note has none).
    pub divisions: [String; 4],
    pub pronouns: Option<Pronouns>,
}

#[derive(Deserialize)]
struct AciFile {
    data: Vec<AciRow>,
}

#[derive(Deserialize)]
struct AciRow {
    src: String,
    tgt: String,
    file: String,
}

/// Reads one split (`train`, `valid`, `clinicalnlp_taskB_test1`, …) of the ACI-BENCH folder.
pub fn read_aci_bench(dir: &Path, split: &str) -> Result<Vec<AciEncounter>> {
    let read = |name: String| -> Result<AciFile> {
        let p = dir.join(&name);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    };
    let full = read(format!("{split}.json"))?;
    let mut divisions: Vec<HashMap<String, String>> = Vec::new();
    for d in DIVISIONS {
        let f = read(format!("{split}_{d}.json"))?;
        divisions.push(
            f.data
                .into_iter()
                .map(|r| {
                    let id = r.file.split('-').next().unwrap_or_default().to_owned();
                    (id, r.tgt)
                })
                .collect(),
        );
    }
    let mut gender: HashMap<String, String> = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(dir.join(format!("{split}_metadata.csv"))) {
        let rows = parse_csv(&text);
        if let Some(header) = rows.first() {
            let col = |name: &str| header.iter().position(|h| h == name);
            if let (Some(ie), Some(ig)) = (col("encounter_id"), col("patient_gender")) {
                for r in &rows[1..] {
                    if let (Some(e), Some(g)) = (r.get(ie), r.get(ig)) {
                        gender.insert(e.clone(), g.trim().to_lowercase());
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for r in full.data {
        let id = r.file.split('-').next().unwrap_or_default().to_owned();
        let div = |k: usize| {
            divisions[k]
                .get(&id)
                .cloned()
                .unwrap_or_else(|| "#####EMPTY#####".into())
        };
        let pronouns = match gender.get(&id).map(String::as_str) {
            Some("male") => Some(Pronouns::HeHim),
            Some("female") => Some(Pronouns::SheHer),
            _ => None,
        };
        out.push(AciEncounter {
            divisions: [div(0), div(1), div(2), div(3)],
            id,
            dialogue: r.src,
            note: r.tgt,
            pronouns,
        });
    }
    if out.is_empty() {
        bail!("{split}.json in {} has no encounters", dir.display());
    }
    Ok(out)
}

/// A `[doctor]`/`[patient]` dialogue as a transcript: one segment per turn, ids `seg-<n>`, no
/// times, sections `OTHER` and no insights until an analyzer adds them. Untagged lines continue
/// the previous turn.
pub fn dialogue_to_conversation(id: &str, dialogue: &str) -> Conversation {
    let mut turns: Vec<(ParticipantRole, String)> = Vec::new();
    for line in dialogue.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (role, rest) = if let Some(r) = line.strip_prefix("[doctor]") {
            (Some(ParticipantRole::clinician(0)), r)
        } else if let Some(r) = line.strip_prefix("[patient_guest]") {
            (Some(ParticipantRole::patient(1)), r)
        } else if let Some(r) = line.strip_prefix("[patient]") {
            (Some(ParticipantRole::patient(0)), r)
        } else {
            (None, line)
        };
        match (role, turns.last_mut()) {
            (Some(role), _) => turns.push((role, rest.trim().to_owned())),
            (None, Some(last)) => {
                last.1.push(' ');
                last.1.push_str(rest.trim());
            }
            (None, None) => turns.push((ParticipantRole::clinician(0), rest.trim().to_owned())),
        }
    }
    Conversation {
        conversation_id: id.to_owned(),
        job_name: None,
        job_type: None,
        language_code: MedicalScribeLanguageCode::EnUs,
        session_id: None,
        clinical_insights: vec![],
        transcript_items: vec![],
        transcript_segments: turns
            .into_iter()
            .enumerate()
            .map(|(i, (role, content))| TranscriptSegment {
                begin_audio_time: 0.0,
                content,
                end_audio_time: 0.0,
                participant_details: ParticipantDetails {
                    participant_role: role,
                },
                section_details: SectionDetails {
                    section_name: TranscriptSectionName::Other,
                },
                segment_id: format!("seg-{i}"),
                extensions: None,
            })
            .collect(),
        extensions: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialogue_becomes_segments() {
        let c = dialogue_to_conversation(
            "D1",
            "[doctor] hi , how are you ?\n[patient] my knee hurts .\ncontinued line\n[patient_guest] she fell .",
        );
        assert_eq!(c.transcript_segments.len(), 3);
        assert_eq!(
            c.transcript_segments[1].content,
            "my knee hurts . continued line"
        );
        assert_eq!(
            c.transcript_segments[2]
                .participant_details
                .participant_role,
            ParticipantRole::patient(1)
        );
    }
}
