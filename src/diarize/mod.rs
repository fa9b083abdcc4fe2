//! Who spoke when: audio channels → speaker streams with participant roles.
//!
//! Three modes (HealthScribe's `Settings`):
//! - **Channel identification** (`ChannelIdentification` + `ChannelDefinitions`): two channels,
//!   one speaker each, roles given by the request (confidence 1); [`speaker_streams`].
//! - **Speaker diarization** (`ShowSpeakerLabels` + `MaxSpeakerLabels`): the mono mix is
//!   diarized ([`acoustic`]: who spoke when), each speaker's turns become speech regions over the
//!   same mono samples, cut to the speech the VAD finds there ([`within_speech`]: the pieces a
//!   channel of that speaker would give), the ASR transcribes them (its window packing works
//!   across speakers as it does across channels), and [`roles`] decides from the words who is
//!   the clinician and who the patient, with a confidence.
//! - **Single**: everything one stream labelled `CLINICIAN_0` with confidence 0 (unknown
//!   speaker; AWS's format has no such role).
//!
//! Output shape: a stream is samples plus, for diarization, the speaker's regions
//! ([`crate::pipeline`] runs the VAD on each channel, or once on the mono mix to cut them);
//! roles of diarized speakers are known only after the ASR, so they are decided there
//! ([`roles::assign`]).

pub mod acoustic;
pub mod cluster;
pub mod fbank;
pub mod roles;

use crate::asr::Region;
use crate::audio::Pcm;
use crate::healthscribe::ParticipantRole;

/// How speakers are separated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeakerMode {
    /// One speaker per channel of a two-channel file; `clinician_channel` is 0 or 1.
    ChannelIdentification { clinician_channel: usize },
    /// All audio as one stream (mixed down).
    Single,
    /// Speaker diarization of the mono mix into at most `max_speakers` speakers (2–30, AWS's
    /// `MaxSpeakerLabels`), roles from what each says.
    Diarize { max_speakers: usize },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DiarizeError {
    #[error("channel identification needs exactly 2 audio channels, but the audio has {0}")]
    ChannelCount(usize),
    #[error("clinician channel must be 0 or 1, got {0}")]
    ClinicianChannel(usize),
    #[error("the maximum number of speakers must be 2 to 30, got {0}")]
    MaxSpeakers(usize),
    #[error("speaker diarization models are not loaded; run `fhirscribe models fetch --only segmentation,speaker-embedding`")]
    NotLoaded,
    #[error("speaker diarization: {0}")]
    Runtime(String),
}

/// One speaker's audio (16 kHz mono) and role.
#[derive(Clone, Debug)]
pub struct SpeakerStream {
    pub role: ParticipantRole,
    /// How sure `role` is (0..1): 1 for channel identification, 0 for one stream of unknown
    /// speakers. Written to each segment's `Extensions.ParticipantRoleConfidence` when below 1,
    /// so the FHIR mapping can refuse to chart what nobody knows who said.
    pub role_confidence: f64,
    pub samples: Vec<f32>,
}

impl SpeakerMode {
    /// Checks the mode against the audio's channel count (callers validate before loading models).
    pub fn validate(&self, channels: usize) -> Result<(), DiarizeError> {
        match *self {
            SpeakerMode::ChannelIdentification { .. } if channels != 2 => {
                Err(DiarizeError::ChannelCount(channels))
            }
            SpeakerMode::ChannelIdentification { clinician_channel } if clinician_channel > 1 => {
                Err(DiarizeError::ClinicianChannel(clinician_channel))
            }
            SpeakerMode::Diarize { max_speakers } if !(2..=30).contains(&max_speakers) => {
                Err(DiarizeError::MaxSpeakers(max_speakers))
            }
            _ => Ok(()),
        }
    }
}

/// The mono mix (one channel as is, more channels averaged).
pub fn mono(pcm: &Pcm) -> Vec<f32> {
    if pcm.channels.len() == 1 {
        pcm.channels[0].clone()
    } else {
        pcm.mixdown()
    }
}

/// Shortest piece of a speaker's region kept after [`within_speech`] (samples, 0.15 s): a
/// shorter one is a padding remnant at a VAD edge, not a word.
const MIN_PIECE: usize = 2_400;

/// Each speaker's regions cut to the speech the VAD found in the same mono audio: diarization
/// says who owns a moment, the VAD (tuned for the ASR, as on a channel) where speech starts,
/// ends and pauses. So a diarized speaker's pieces are what a channel of that speaker would
/// give the ASR, and a turn's pauses split it as they would there.
pub fn within_speech(speakers: &[Vec<Region>], speech: &[Region]) -> Vec<Vec<Region>> {
    speakers
        .iter()
        .map(|regions| {
            let mut out = Vec::new();
            let mut j = 0;
            for r in regions {
                while j < speech.len() && speech[j].end <= r.start {
                    j += 1;
                }
                let mut k = j;
                while k < speech.len() && speech[k].start < r.end {
                    let (a, b) = (r.start.max(speech[k].start), r.end.min(speech[k].end));
                    if b >= a + MIN_PIECE {
                        out.push(Region { start: a, end: b });
                    }
                    k += 1;
                }
            }
            out
        })
        .collect()
}

/// Streams for channel identification and single mode (diarization is [`acoustic::Diarizer`]).
pub fn speaker_streams(pcm: &Pcm, mode: SpeakerMode) -> Result<Vec<SpeakerStream>, DiarizeError> {
    mode.validate(pcm.channels.len())?;
    match mode {
        SpeakerMode::ChannelIdentification { clinician_channel } => {
            let c = clinician_channel;
            Ok(vec![
                SpeakerStream {
                    role: ParticipantRole::clinician(0),
                    role_confidence: 1.0,
                    samples: pcm.channels[c].clone(),
                },
                SpeakerStream {
                    role: ParticipantRole::patient(0),
                    role_confidence: 1.0,
                    samples: pcm.channels[1 - c].clone(),
                },
            ])
        }
        SpeakerMode::Single | SpeakerMode::Diarize { .. } => {
            let samples = mono(pcm);
            // AWS's format has no "unknown speaker" role: the label is a placeholder.
            Ok(vec![SpeakerStream {
                role: ParticipantRole::clinician(0),
                role_confidence: 0.0,
                samples,
            }])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: f64, b: f64) -> Region {
        Region {
            start: (a * 16_000.0) as usize,
            end: (b * 16_000.0) as usize,
        }
    }

    #[test]
    fn speaker_regions_are_cut_to_the_speech_the_vad_found() {
        // Speaker 0 owns 0–5.1 s (padded into silence), speaker 1 5.1–8 s. The VAD found speech
        // 0.3–2 s and 2.5–6.5 s (one region across the change of speaker) and 7–7.05 s.
        let speakers = vec![vec![r(0.0, 5.1)], vec![r(5.1, 8.0)]];
        let speech = vec![r(0.3, 2.0), r(2.5, 6.5), r(7.0, 7.05)];
        let cut = within_speech(&speakers, &speech);
        // Speaker 0: the VAD's edges and pause; speaker 1: from the change of speaker to the
        // VAD's end, and no 50 ms sliver.
        assert_eq!(cut[0], vec![r(0.3, 2.0), r(2.5, 5.1)]);
        assert_eq!(cut[1], vec![r(5.1, 6.5)]);
        // Speech nobody owns is not given to anyone; a speaker without speech keeps nothing.
        let cut = within_speech(&[vec![r(3.0, 4.0)], vec![]], &[r(0.0, 1.0), r(3.5, 9.0)]);
        assert_eq!(cut, vec![vec![r(3.5, 4.0)], vec![]]);
    }

    #[test]
    fn channel_identification_assigns_roles_by_definition() {
        let pcm = Pcm {
            channels: vec![vec![0.1; 4], vec![0.2; 4]],
        };
        let s = speaker_streams(
            &pcm,
            SpeakerMode::ChannelIdentification {
                clinician_channel: 1,
            },
        )
        .unwrap();
        assert_eq!(s[0].role, ParticipantRole::clinician(0));
        assert_eq!(s[0].samples[0], 0.2);
        assert_eq!(s[1].role, ParticipantRole::patient(0));
    }

    #[test]
    fn channel_identification_rejects_mono_and_bad_channel() {
        let mono = Pcm {
            channels: vec![vec![0.1; 4]],
        };
        let e = speaker_streams(
            &mono,
            SpeakerMode::ChannelIdentification {
                clinician_channel: 0,
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "channel identification needs exactly 2 audio channels, but the audio has 1"
        );
        let st = Pcm {
            channels: vec![vec![0.1; 4], vec![0.1; 4]],
        };
        assert!(speaker_streams(
            &st,
            SpeakerMode::ChannelIdentification {
                clinician_channel: 2
            }
        )
        .is_err());
    }

    #[test]
    fn single_mode_mixes_down() {
        let pcm = Pcm {
            channels: vec![vec![0.2; 4], vec![0.4; 4]],
        };
        let s = speaker_streams(&pcm, SpeakerMode::Single).unwrap();
        assert_eq!(s.len(), 1);
        assert!((s[0].samples[0] - 0.3).abs() < 1e-6);
    }
}
