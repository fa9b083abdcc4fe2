//! Transcript assembly: per-speaker timed words → HealthScribe `Conversation`.
//!
//! Each speaker's words are cut into sentence-sized segments (at sentence-final punctuation, at
//! a pause longer than [`MAX_PAUSE_SECS`], or at [`MAX_SEGMENT_WORDS`]); segments of all speakers
//! are then ordered by start time, and `TranscriptItems` follow segment order, so the items of a
//! segment are contiguous. A segment's begin/end are its first and last word's times, which the
//! ASR stage keeps inside one VAD region of that speaker's audio.
//!
//! `SegmentId`s are UUIDv5 of (conversation id, speaker, begin time): the same job on the same
//! audio gets the same ids, so evidence links and FHIR identifiers are stable across reruns.

use crate::asr::{ItemKind, Word};
use crate::healthscribe::{
    Alternative, ClinicalInsight, Conversation, ItemExtensions, ItemType, JobType,
    MedicalScribeLanguageCode, ParticipantDetails, ParticipantRole, SectionDetails, TranscriptItem,
    TranscriptSectionName, TranscriptSegment,
};

/// Longest pause inside one segment.
pub const MAX_PAUSE_SECS: f64 = 1.5;
/// Longest segment, in words, when the recogniser emits no punctuation.
pub const MAX_SEGMENT_WORDS: usize = 60;

const NS: uuid::Uuid = uuid::Uuid::from_bytes([
    0x6f, 0x1d, 0x2a, 0x57, 0x3c, 0x4e, 0x4b, 0x8a, 0x9d, 0x21, 0x5e, 0x0b, 0x7c, 0x33, 0x10, 0x42,
]);

/// One speaker's recognised words.
#[derive(Clone, Debug)]
pub struct SpeakerWords {
    pub role: ParticipantRole,
    pub words: Vec<Word>,
}

struct Draft {
    role: ParticipantRole,
    words: Vec<Word>,
}

fn round3(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

fn split_segments(s: &SpeakerWords) -> Vec<Draft> {
    let mut out: Vec<Draft> = Vec::new();
    let mut cur: Vec<Word> = Vec::new();
    let mut last_end: Option<f64> = None;
    for w in &s.words {
        let spoken = w.kind == ItemKind::Pronunciation;
        if spoken {
            let long_pause = last_end.is_some_and(|e| w.start - e > MAX_PAUSE_SECS);
            let region_change = cur
                .last()
                .is_some_and(|p: &Word| p.region != w.region && w.start - p.end > 0.6);
            let too_long = cur
                .iter()
                .filter(|w| w.kind == ItemKind::Pronunciation)
                .count()
                >= MAX_SEGMENT_WORDS;
            if (long_pause || region_change || too_long) && !cur.is_empty() {
                out.push(Draft {
                    role: s.role,
                    words: std::mem::take(&mut cur),
                });
            }
            last_end = Some(w.end);
        } else if cur.is_empty() {
            // Punctuation with no word before it in this segment carries nothing.
            continue;
        }
        cur.push(w.clone());
        if !spoken && matches!(w.text.as_str(), "." | "?" | "!") {
            out.push(Draft {
                role: s.role,
                words: std::mem::take(&mut cur),
            });
        }
    }
    if cur.iter().any(|w| w.kind == ItemKind::Pronunciation) {
        out.push(Draft {
            role: s.role,
            words: cur,
        });
    }
    out
}

/// Segment text: words separated by spaces, punctuation attached to the word before it.
pub fn content_of(words: &[Word]) -> String {
    let mut s = String::new();
    for w in words {
        if w.kind == ItemKind::Pronunciation && !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&w.text);
    }
    s
}

/// Builds the transcript `Conversation` (without insights) from each speaker's words.
pub fn build_conversation(
    conversation_id: &str,
    job_name: Option<&str>,
    speakers: &[SpeakerWords],
) -> Conversation {
    let mut drafts: Vec<Draft> = speakers.iter().flat_map(split_segments).collect();
    let begin = |d: &Draft| {
        d.words
            .iter()
            .find(|w| w.kind == ItemKind::Pronunciation)
            .map_or(0.0, |w| w.start)
    };
    drafts.sort_by(|a, b| begin(a).total_cmp(&begin(b)).then(a.role.cmp(&b.role)));

    let mut segments = Vec::with_capacity(drafts.len());
    let mut items = Vec::new();
    for d in &drafts {
        let spoken: Vec<&Word> = d
            .words
            .iter()
            .filter(|w| w.kind == ItemKind::Pronunciation)
            .collect();
        let (b, e) = (
            spoken.first().map_or(0.0, |w| w.start),
            spoken.last().map_or(0.0, |w| w.end),
        );
        let key = format!(
            "{conversation_id}/{}/{}",
            String::from(d.role),
            (b * 1000.0).round() as i64
        );
        segments.push(TranscriptSegment {
            begin_audio_time: round3(b),
            content: content_of(&d.words),
            end_audio_time: round3(e),
            participant_details: ParticipantDetails {
                participant_role: d.role,
            },
            // Until the clinical stage classifies it, a segment is OTHER (AWS's catch-all).
            section_details: SectionDetails {
                section_name: TranscriptSectionName::Other,
            },
            segment_id: uuid::Uuid::new_v5(&NS, key.as_bytes()).to_string(),
            // The pipeline adds the role's confidence where it is not certain.
            extensions: None,
        });
        for w in &d.words {
            items.push(TranscriptItem {
                alternatives: vec![Alternative {
                    confidence: (w.confidence as f64 * 10_000.0).round() / 10_000.0,
                    content: w.text.clone(),
                }],
                begin_audio_time: round3(w.start),
                end_audio_time: round3(w.end),
                item_type: match w.kind {
                    ItemKind::Pronunciation => ItemType::Pronunciation,
                    ItemKind::Punctuation => ItemType::Punctuation,
                },
                extensions: w.heard_as.as_deref().map(ItemExtensions::vocabulary),
            });
        }
    }
    Conversation {
        conversation_id: conversation_id.to_string(),
        job_name: job_name.map(str::to_string),
        job_type: Some(JobType::Async),
        language_code: MedicalScribeLanguageCode::EnUs,
        session_id: None,
        clinical_insights: Vec::<ClinicalInsight>::new(),
        transcript_items: items,
        transcript_segments: segments,
        extensions: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str, start: f64, end: f64) -> Word {
        let kind = if text.chars().all(|c| c.is_ascii_punctuation()) {
            ItemKind::Punctuation
        } else {
            ItemKind::Pronunciation
        };
        Word {
            kind,
            text: text.into(),
            start,
            end,
            confidence: 0.9,
            region: 0,
            utterance: (start, end),
            heard_as: None,
        }
    }

    #[test]
    fn splits_sentences_and_interleaves_speakers_by_time() {
        let clinician = SpeakerWords {
            role: ParticipantRole::clinician(0),
            words: vec![
                w("Any", 0.0, 0.2),
                w("pain", 0.2, 0.5),
                w("?", 0.5, 0.5),
                w("Okay", 3.0, 3.3),
                w(".", 3.3, 3.3),
            ],
        };
        let patient = SpeakerWords {
            role: ParticipantRole::patient(0),
            words: vec![w("No", 1.0, 1.3), w(".", 1.3, 1.3)],
        };
        let c = build_conversation("c1", Some("job"), &[clinician, patient]);
        let segs: Vec<_> = c
            .transcript_segments
            .iter()
            .map(|s| {
                (
                    s.content.as_str(),
                    String::from(s.participant_details.participant_role),
                )
            })
            .collect();
        assert_eq!(
            segs,
            vec![
                ("Any pain?", "CLINICIAN_0".to_string()),
                ("No.", "PATIENT_0".to_string()),
                ("Okay.", "CLINICIAN_0".to_string())
            ]
        );
        assert_eq!(c.transcript_items.len(), 7);
        assert_eq!(c.transcript_items[2].item_type, ItemType::Punctuation);
        assert_eq!(
            (
                c.transcript_segments[0].begin_audio_time,
                c.transcript_segments[0].end_audio_time
            ),
            (0.0, 0.5)
        );
    }

    #[test]
    fn segment_ids_are_stable_and_distinct() {
        let s = SpeakerWords {
            role: ParticipantRole::clinician(0),
            words: vec![w("a", 0.0, 0.1), w(".", 0.1, 0.1), w("b", 5.0, 5.1)],
        };
        let a = build_conversation("c1", None, std::slice::from_ref(&s));
        let b = build_conversation("c1", None, &[s]);
        assert_eq!(
            a.transcript_segments[0].segment_id,
            b.transcript_segments[0].segment_id
        );
        assert_ne!(
            a.transcript_segments[0].segment_id,
            a.transcript_segments[1].segment_id
        );
    }

    #[test]
    fn long_pause_splits_and_leading_punctuation_is_dropped() {
        let s = SpeakerWords {
            role: ParticipantRole::patient(0),
            words: vec![w(",", 0.0, 0.0), w("well", 0.1, 0.3), w("then", 3.0, 3.2)],
        };
        let c = build_conversation("c", None, &[s]);
        assert_eq!(c.transcript_segments.len(), 2);
        assert_eq!(c.transcript_segments[0].content, "well");
    }
}
