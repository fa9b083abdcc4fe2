//! Who spoke when: audio channels → speaker streams with participant roles.
//!
//! Two-channel recordings with channel identification give each channel one role (AWS's
//! `ChannelDefinitions`: which channel is the clinician). Every other input is, for now, one
//! stream labelled `CLINICIAN_0`, because AWS's format has no "unknown speaker" role; one-channel
//! speaker diarization (embeddings + clustering) will replace that and must keep this module's
//! output shape.

use crate::audio::Pcm;
use crate::healthscribe::ParticipantRole;

/// How speakers are separated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeakerMode {
    /// One speaker per channel of a two-channel file; `clinician_channel` is 0 or 1.
    ChannelIdentification { clinician_channel: usize },
    /// All audio as one stream (mixed down).
    Single,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DiarizeError {
    #[error("channel identification needs exactly 2 audio channels, but the audio has {0}")]
    ChannelCount(usize),
    #[error("clinician channel must be 0 or 1, got {0}")]
    ClinicianChannel(usize),
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
            _ => Ok(()),
        }
    }
}

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
        SpeakerMode::Single => {
            let samples = if pcm.channels.len() == 1 {
                pcm.channels[0].clone()
            } else {
                pcm.mixdown()
            };
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
