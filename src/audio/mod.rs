//! Audio stage: encoded bytes → [`Pcm`] (per-channel f32 at 16 kHz).
//!
//! Decodes with symphonia (WAV, FLAC, MP3, OGG/Vorbis, AAC/M4A, ALAC, CAF, MKV/WebM), resamples
//! with rubato's FFT resampler, and turns every way an upload can be wrong into a typed
//! [`AudioError`] whose message names the problem (never the content: no PHI). Nothing here
//! panics on any input; limits are explicit in [`AudioLimits`].

use rubato::{FftFixedIn, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The sample rate every later stage works at (whisper and silero both expect it).
pub const SAMPLE_RATE: u32 = 16_000;

/// Decoded audio: one `Vec<f32>` per channel, all the same length, at [`SAMPLE_RATE`].
#[derive(Clone, Debug, PartialEq)]
pub struct Pcm {
    pub channels: Vec<Vec<f32>>,
}

impl Pcm {
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }
    pub fn duration_secs(&self) -> f64 {
        self.frames() as f64 / SAMPLE_RATE as f64
    }
    /// Average of all channels (for one-speaker-stream processing of multi-channel files).
    pub fn mixdown(&self) -> Vec<f32> {
        let n = self.channels.len().max(1) as f32;
        (0..self.frames())
            .map(|i| self.channels.iter().map(|c| c[i]).sum::<f32>() / n)
            .collect()
    }
}

/// Input limits. Defaults suit a clinic visit; the service makes them configurable.
#[derive(Clone, Debug)]
pub struct AudioLimits {
    /// Longest accepted audio, in seconds (AWS HealthScribe accepts up to 4 hours).
    pub max_duration_secs: f64,
    /// Largest accepted encoded file, in bytes.
    pub max_bytes: usize,
    /// Most channels accepted.
    pub max_channels: usize,
    /// Peak level (dBFS) below which a recording counts as silent.
    pub silence_peak_dbfs: f32,
}

impl Default for AudioLimits {
    fn default() -> Self {
        Self {
            max_duration_secs: 4.0 * 3600.0,
            max_bytes: 2 << 30,
            max_channels: 8,
            silence_peak_dbfs: -60.0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AudioError {
    #[error("audio is empty (0 bytes)")]
    Empty,
    #[error("audio file is {bytes} bytes, over the limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    #[error("unsupported or unrecognised audio format{}: supported are WAV, FLAC, MP3, OGG/Vorbis, AAC/M4A, ALAC, CAF, MKV/WebM", hint_suffix(.hint))]
    Unsupported { hint: Option<String> },
    #[error("audio container holds no decodable audio track")]
    NoAudioTrack,
    #[error("unsupported codec in audio track: {0}")]
    UnsupportedCodec(String),
    #[error("audio stream is corrupt: {0}")]
    Corrupt(String),
    #[error("audio stream is truncated: header declares {declared_secs:.2} s but only {decoded_secs:.2} s could be decoded")]
    Truncated {
        declared_secs: f64,
        decoded_secs: f64,
    },
    #[error("audio contains no samples")]
    NoSamples,
    #[error("audio has {channels} channels; at most {limit} are accepted")]
    TooManyChannels { channels: usize, limit: usize },
    #[error("audio is {secs:.1} s long, over the limit of {limit:.1} s")]
    TooLong { secs: f64, limit: f64 },
    #[error(
        "audio is silent (peak level {peak_dbfs:.1} dBFS, threshold {threshold_dbfs:.1} dBFS)"
    )]
    Silent { peak_dbfs: f32, threshold_dbfs: f32 },
    #[error("invalid sample rate {0} Hz")]
    BadSampleRate(u32),
    #[error("resampling failed: {0}")]
    Resample(String),
}

fn hint_suffix(h: &Option<String>) -> String {
    h.as_ref()
        .map(|e| format!(" (file extension .{e})"))
        .unwrap_or_default()
}

/// Decodes `bytes` (any supported container/codec), checks limits, resamples to 16 kHz.
/// `ext` is an optional file-extension hint; content sniffing is authoritative.
pub fn decode(bytes: &[u8], ext: Option<&str>, limits: &AudioLimits) -> Result<Pcm, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(AudioError::TooLarge {
            bytes: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let (rate, channels) = decode_native(bytes, ext, limits)?;
    let pcm = Pcm {
        channels: resample(channels, rate)?,
    };
    if pcm.frames() == 0 {
        return Err(AudioError::NoSamples);
    }
    let peak = pcm
        .channels
        .iter()
        .flatten()
        .fold(0f32, |m, s| m.max(s.abs()));
    let peak_dbfs = if peak > 0.0 {
        20.0 * peak.log10()
    } else {
        f32::NEG_INFINITY
    };
    if peak_dbfs < limits.silence_peak_dbfs {
        return Err(AudioError::Silent {
            peak_dbfs: peak_dbfs.max(-200.0),
            threshold_dbfs: limits.silence_peak_dbfs,
        });
    }
    Ok(pcm)
}

/// Decodes to planar f32 at the file's own rate.
fn decode_native(
    bytes: &[u8],
    ext: Option<&str>,
    limits: &AudioLimits,
) -> Result<(u32, Vec<Vec<f32>>), AudioError> {
    let src = std::io::Cursor::new(bytes.to_vec());
    let mss = MediaSourceStream::new(Box::new(src), MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    if let Some(e) = ext {
        hint.with_extension(e);
    }
    let fmt_opts = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &fmt_opts, &MetadataOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(_) => AudioError::Unsupported {
                hint: ext.map(str::to_string),
            },
            SymError::IoError(_) => AudioError::Corrupt("container header is incomplete".into()),
            other => AudioError::Corrupt(format!("container header: {other}")),
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or(AudioError::NoAudioTrack)?
        .clone();
    let params = &track.codec_params;
    let rate = params.sample_rate.ok_or(AudioError::BadSampleRate(0))?;
    if !(1000..=768_000).contains(&rate) {
        return Err(AudioError::BadSampleRate(rate));
    }
    if let Some(ch) = params.channels {
        if ch.count() > limits.max_channels {
            return Err(AudioError::TooManyChannels {
                channels: ch.count(),
                limit: limits.max_channels,
            });
        }
    }
    let declared_secs = params.n_frames.map(|n| n as f64 / rate as f64);
    if let Some(secs) = declared_secs {
        if secs > limits.max_duration_secs {
            return Err(AudioError::TooLong {
                secs,
                limit: limits.max_duration_secs,
            });
        }
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(params, &DecoderOptions::default())
        .map_err(|e| AudioError::UnsupportedCodec(e.to_string()))?;

    let max_frames = (limits.max_duration_secs * rate as f64) as usize;
    let mut planar: Vec<Vec<f32>> = Vec::new();
    let (mut good, mut bad) = (0usize, 0usize);
    let mut truncated_read = false;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(SymError::IoError(_)) => {
                truncated_read = true;
                break;
            }
            Err(e) => {
                bad += 1;
                if bad > 8 {
                    return Err(AudioError::Corrupt(format!("unreadable packets ({e})")));
                }
                continue;
            }
        };
        if packet.track_id() != track.id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                good += 1;
                let spec = *buf.spec();
                let nch = spec.channels.count();
                if nch > limits.max_channels {
                    return Err(AudioError::TooManyChannels {
                        channels: nch,
                        limit: limits.max_channels,
                    });
                }
                if planar.is_empty() {
                    planar = vec![Vec::new(); nch];
                }
                if nch != planar.len() {
                    return Err(AudioError::Corrupt(
                        "channel count changes mid-stream".into(),
                    ));
                }
                let mut sb = SampleBuffer::<f32>::new(buf.capacity() as u64, spec);
                sb.copy_interleaved_ref(buf);
                for frame in sb.samples().chunks_exact(nch) {
                    for (c, s) in frame.iter().enumerate() {
                        planar[c].push(if s.is_finite() {
                            s.clamp(-1.0, 1.0)
                        } else {
                            0.0
                        });
                    }
                }
                if planar[0].len() > max_frames {
                    return Err(AudioError::TooLong {
                        secs: planar[0].len() as f64 / rate as f64,
                        limit: limits.max_duration_secs,
                    });
                }
            }
            Err(SymError::DecodeError(e)) => {
                bad += 1;
                // A few bad frames happen in real MP3s; mostly-bad input is corrupt.
                if bad > 8 && bad * 4 > good {
                    return Err(AudioError::Corrupt(format!(
                        "{bad} undecodable packets ({e})"
                    )));
                }
            }
            Err(SymError::IoError(_)) => {
                truncated_read = true;
                break;
            }
            Err(e) => return Err(AudioError::Corrupt(e.to_string())),
        }
    }
    let decoded = planar.first().map_or(0, Vec::len);
    let decoded_secs = decoded as f64 / rate as f64;
    match declared_secs {
        Some(declared) if declared > 0.0 && decoded == 0 => {
            return Err(AudioError::Corrupt(format!(
                "no decodable audio frames, although the header declares {declared:.2} s"
            )))
        }
        // Tolerate codec priming/padding differences; a real cut loses far more than 50 ms.
        Some(declared) if decoded_secs + 0.05 < declared => {
            return Err(AudioError::Truncated {
                declared_secs: declared,
                decoded_secs,
            })
        }
        None if truncated_read && decoded == 0 => {
            return Err(AudioError::Corrupt(
                "stream ends before the first audio frame".into(),
            ))
        }
        _ => {}
    }
    if decoded == 0 {
        return Err(AudioError::NoSamples);
    }
    Ok((rate, planar))
}

/// Resamples planar audio to [`SAMPLE_RATE`]; output length is `round(n * 16000 / rate)`.
pub fn resample(channels: Vec<Vec<f32>>, rate: u32) -> Result<Vec<Vec<f32>>, AudioError> {
    if rate == SAMPLE_RATE || channels.is_empty() {
        return Ok(channels);
    }
    let n_in = channels[0].len();
    let n_out = ((n_in as u64 * SAMPLE_RATE as u64 + rate as u64 / 2) / rate as u64) as usize;
    let chunk = 1024;
    let err = |e: &dyn std::fmt::Display| AudioError::Resample(e.to_string());
    let mut rs = FftFixedIn::<f32>::new(
        rate as usize,
        SAMPLE_RATE as usize,
        chunk,
        2,
        channels.len(),
    )
    .map_err(|e| err(&e))?;
    let delay = rs.output_delay();
    let mut out: Vec<Vec<f32>> = vec![Vec::with_capacity(n_out + delay + chunk); channels.len()];
    let mut pos = 0;
    while pos < n_in {
        let need = rs.input_frames_next();
        let end = (pos + need).min(n_in);
        let block: Vec<&[f32]> = channels.iter().map(|c| &c[pos..end]).collect();
        let res = if end - pos == need {
            rs.process(&block, None)
        } else {
            rs.process_partial(Some(&block), None)
        }
        .map_err(|e| err(&e))?;
        for (o, r) in out.iter_mut().zip(res) {
            o.extend(r);
        }
        pos = end;
    }
    while out[0].len() < n_out + delay {
        let res = rs
            .process_partial(None::<&[Vec<f32>]>, None)
            .map_err(|e| err(&e))?;
        if res[0].is_empty() {
            break;
        }
        for (o, r) in out.iter_mut().zip(res) {
            o.extend(r);
        }
    }
    Ok(out
        .into_iter()
        .map(|c| {
            let mut c: Vec<f32> = c.into_iter().skip(delay).take(n_out).collect();
            c.resize(n_out, 0.0);
            c
        })
        .collect())
}

/// Encodes mono or multi-channel 16-bit PCM WAV (used by tests and the evaluation tools).
pub fn encode_wav(channels: &[Vec<f32>], rate: u32) -> Vec<u8> {
    let nch = channels.len() as u16;
    let frames = channels.first().map_or(0, Vec::len);
    let data_len = frames * nch as usize * 2;
    let mut b = Vec::with_capacity(44 + data_len);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&((36 + data_len) as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&nch.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * nch as u32 * 2).to_le_bytes());
    b.extend_from_slice(&(nch * 2).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data_len as u32).to_le_bytes());
    for i in 0..frames {
        for c in channels {
            b.extend_from_slice(&((c[i].clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes());
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, secs: f32, freq: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn resamples_44k1_to_16k_preserving_length_and_pitch() {
        let x = tone(44_100, 1.0, 440.0);
        let y = resample(vec![x], 44_100).unwrap();
        assert_eq!(y[0].len(), 16_000);
        // Zero crossings of a 440 Hz tone over 1 s: ~880.
        let zc = y[0]
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        assert!((870..=890).contains(&zc), "zero crossings {zc}");
    }

    #[test]
    fn wav_round_trip_keeps_channels() {
        let l = tone(16_000, 0.5, 300.0);
        let r = tone(16_000, 0.5, 500.0);
        let pcm = decode(
            &encode_wav(&[l.clone(), r], 16_000),
            Some("wav"),
            &AudioLimits::default(),
        )
        .unwrap();
        assert_eq!(pcm.channels.len(), 2);
        assert_eq!(pcm.frames(), 8000);
        assert!((pcm.channels[0][100] - l[100]).abs() < 1e-3);
    }
}
