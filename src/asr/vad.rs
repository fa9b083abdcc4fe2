//! Voice activity detection with Silero VAD (v6 ONNX, run through ONNX Runtime).
//!
//! Whisper transcribes VAD regions, not whole channels: whole-channel decoding lets segment times
//! span the other speaker's turns and can drop the last utterance (MODELS.md). The region logic
//! follows Silero's own `get_speech_timestamps` (hysteresis thresholds, minimum speech/silence,
//! padding, and a maximum region length so every region fits one 30 s whisper window).

use super::AsrError;
use crate::audio::SAMPLE_RATE;
use ort::session::Session;
use ort::value::Tensor;
use std::path::Path;
use std::sync::OnceLock;

const WINDOW: usize = 512;
const CONTEXT: usize = 64;

/// A speech region, in samples at 16 kHz (half-open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: usize,
    pub end: usize,
}

impl Region {
    pub fn start_secs(&self) -> f64 {
        self.start as f64 / SAMPLE_RATE as f64
    }
    pub fn end_secs(&self) -> f64 {
        self.end as f64 / SAMPLE_RATE as f64
    }
}

#[derive(Clone, Debug)]
pub struct VadParams {
    pub threshold: f32,
    pub min_speech_ms: u32,
    pub min_silence_ms: u32,
    pub speech_pad_ms: u32,
    pub max_speech_secs: f32,
}

impl Default for VadParams {
    fn default() -> Self {
        // 300 ms minimum silence keeps a sentence's comma pauses inside one region.
        Self {
            threshold: 0.5,
            min_speech_ms: 250,
            min_silence_ms: 300,
            speech_pad_ms: 60,
            max_speech_secs: 28.0,
        }
    }
}

static ORT_ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loaded once from `lib`.
pub fn ort_environment(lib: &Path) -> Result<&'static ort::environment::Environment, AsrError> {
    ORT_ENV
        .get_or_init(|| {
            ort::init_from(lib)
                .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", lib.display()))?
                .with_name("fhirscribe")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| AsrError::Runtime(e.clone()))
}

pub struct SileroVad {
    session: Session,
    pub params: VadParams,
}

impl SileroVad {
    pub fn load(model: &Path, ort_lib: &Path, params: VadParams) -> Result<Self, AsrError> {
        let env = ort_environment(ort_lib)?;
        let rt = |e: &dyn std::fmt::Display| {
            AsrError::Runtime(format!("silero VAD ({}): {e}", model.display()))
        };
        let session = Session::builder(env)
            .map_err(|e| rt(&e))?
            .with_intra_threads(1)
            .map_err(|e| rt(&e))?
            .commit_from_file(model)
            .map_err(|e| rt(&e))?;
        Ok(Self { session, params })
    }

    /// Speech probability for each 32 ms window of `pcm` (16 kHz mono).
    pub fn probabilities(&mut self, pcm: &[f32]) -> Result<Vec<f32>, AsrError> {
        Ok(self.probabilities_batch(&[pcm])?.remove(0))
    }

    /// Speech probabilities of several streams at once (the channels of one recording): one
    /// ONNX Runtime call per 32 ms step for all of them, with Silero's batch dimension. The
    /// model is tiny, so the per-call overhead dominates; batching the two channels of a
    /// two-channel file halves the VAD's share of the pipeline's time. A stream shorter than
    /// the longest is fed silence past its end; its probabilities stop at its own length.
    pub fn probabilities_batch(&mut self, pcms: &[&[f32]]) -> Result<Vec<Vec<f32>>, AsrError> {
        let rt = |e: ort::Error| AsrError::Runtime(format!("silero VAD: {e}"));
        let b = pcms.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let longest = pcms.iter().map(|p| p.len()).max().unwrap_or(0);
        let steps = longest.div_ceil(WINDOW);
        let row = CONTEXT + WINDOW;
        let mut state = vec![0f32; 2 * b * 128];
        let mut input = vec![0f32; b * row];
        let mut probs: Vec<Vec<f32>> = pcms
            .iter()
            .map(|p| Vec::with_capacity(p.len().div_ceil(WINDOW)))
            .collect();
        for step in 0..steps {
            let at = step * WINDOW;
            for (k, pcm) in pcms.iter().enumerate() {
                let r = &mut input[k * row..(k + 1) * row];
                r.copy_within(WINDOW.., 0); // last CONTEXT samples of the previous input
                let chunk = &pcm[at.min(pcm.len())..(at + WINDOW).min(pcm.len())];
                r[CONTEXT..CONTEXT + chunk.len()].copy_from_slice(chunk);
                r[CONTEXT + chunk.len()..].fill(0.0);
            }
            let x = Tensor::from_array(([b, row], input.clone())).map_err(rt)?;
            let s = Tensor::from_array(([2usize, b, 128], state.clone())).map_err(rt)?;
            let sr = Tensor::from_array(((), vec![SAMPLE_RATE as i64])).map_err(rt)?;
            let out = self
                .session
                .run(ort::inputs!["input" => x, "state" => s, "sr" => sr])
                .map_err(rt)?;
            let (_, p) = out["output"].try_extract_tensor::<f32>().map_err(rt)?;
            for (k, pcm) in pcms.iter().enumerate() {
                if at < pcm.len() {
                    probs[k].push(p.get(k).copied().unwrap_or(0.0));
                }
            }
            let (_, st) = out["stateN"].try_extract_tensor::<f32>().map_err(rt)?;
            state.copy_from_slice(&st[..2 * b * 128]);
        }
        Ok(probs)
    }

    pub fn regions(&mut self, pcm: &[f32]) -> Result<Vec<Region>, AsrError> {
        Ok(self.regions_batch(&[pcm])?.remove(0))
    }

    /// Speech regions of several streams, computed in one batched pass
    /// ([`Self::probabilities_batch`]).
    pub fn regions_batch(&mut self, pcms: &[&[f32]]) -> Result<Vec<Vec<Region>>, AsrError> {
        let probs = self.probabilities_batch(pcms)?;
        Ok(probs
            .iter()
            .zip(pcms)
            .map(|(p, pcm)| regions_from_probs(p, pcm.len(), &self.params))
            .collect())
    }
}

/// Silero's `get_speech_timestamps` state machine over per-window probabilities.
pub fn regions_from_probs(probs: &[f32], len: usize, p: &VadParams) -> Vec<Region> {
    let sr = SAMPLE_RATE as usize;
    let ms = |m: u32| sr * m as usize / 1000;
    let neg = (p.threshold - 0.15).max(0.01);
    let min_speech = ms(p.min_speech_ms);
    let pad = ms(p.speech_pad_ms);
    let max_speech = ((sr as f32 * p.max_speech_secs) as usize).saturating_sub(WINDOW + 2 * pad);
    let min_silence = ms(p.min_silence_ms);
    let min_silence_at_max = ms(98);

    let mut out: Vec<Region> = Vec::new();
    let mut triggered = false;
    let mut start = 0usize;
    let (mut temp_end, mut prev_end, mut next_start) = (0usize, 0usize, 0usize);
    for (i, &prob) in probs.iter().enumerate() {
        let cur = WINDOW * i;
        if prob >= p.threshold && temp_end != 0 {
            temp_end = 0;
            if next_start < prev_end {
                next_start = cur;
            }
        }
        if prob >= p.threshold && !triggered {
            triggered = true;
            start = cur;
            continue;
        }
        if triggered && cur - start > max_speech {
            if prev_end != 0 {
                out.push(Region {
                    start,
                    end: prev_end,
                });
                if next_start < prev_end {
                    triggered = false;
                } else {
                    start = next_start;
                }
            } else {
                out.push(Region { start, end: cur });
                triggered = false;
            }
            prev_end = 0;
            next_start = 0;
            temp_end = 0;
            continue;
        }
        if prob < neg && triggered {
            if temp_end == 0 {
                temp_end = cur;
            }
            if cur - temp_end > min_silence_at_max {
                prev_end = temp_end;
            }
            if cur - temp_end < min_silence {
                continue;
            }
            if temp_end - start > min_speech {
                out.push(Region {
                    start,
                    end: temp_end,
                });
            }
            prev_end = 0;
            next_start = 0;
            temp_end = 0;
            triggered = false;
        }
    }
    if triggered && len.saturating_sub(start) > min_speech {
        out.push(Region { start, end: len });
    }
    // Padding, split evenly where two regions are closer than twice the pad.
    let n = out.len();
    for i in 0..n {
        if i == 0 {
            out[i].start = out[i].start.saturating_sub(pad);
        }
        if i + 1 < n {
            let silence = out[i + 1].start.saturating_sub(out[i].end);
            if silence < 2 * pad {
                out[i].end += silence / 2;
                out[i + 1].start = out[i + 1].start.saturating_sub(silence / 2);
            } else {
                out[i].end = (out[i].end + pad).min(len);
                out[i + 1].start = out[i + 1].start.saturating_sub(pad);
            }
        } else {
            out[i].end = (out[i].end + pad).min(len);
        }
    }
    out.retain(|r| r.end > r.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_one_region_per_burst_and_pads() {
        // 1 s silence, 1 s speech, 1 s silence, 1 s speech (31.25 windows/s).
        let mut probs = vec![0.0; 31];
        probs.extend(vec![0.9; 31]);
        probs.extend(vec![0.0; 31]);
        probs.extend(vec![0.9; 31]);
        let r = regions_from_probs(&probs, probs.len() * WINDOW, &VadParams::default());
        assert_eq!(r.len(), 2);
        assert!(r[0].start < 31 * WINDOW && r[0].start + 2000 > 31 * WINDOW);
        assert!(r[1].end <= probs.len() * WINDOW);
    }

    #[test]
    fn short_blips_and_short_gaps_are_ignored() {
        let mut probs = vec![0.0; 10];
        probs.extend(vec![0.9; 3]); // ~100 ms blip: below min speech
        probs.extend(vec![0.0; 40]);
        probs.extend(vec![0.9; 40]);
        probs.extend(vec![0.1; 4]); // ~130 ms pause: below min silence
        probs.extend(vec![0.9; 40]);
        probs.extend(vec![0.0; 40]);
        let r = regions_from_probs(&probs, probs.len() * WINDOW, &VadParams::default());
        assert_eq!(r.len(), 1, "{r:?}");
    }

    #[test]
    fn long_speech_is_split_below_the_maximum() {
        let probs = vec![0.9; 31 * 70]; // 70 s of continuous speech
        let p = VadParams::default();
        let r = regions_from_probs(&probs, probs.len() * WINDOW, &p);
        assert!(r.len() >= 3);
        for reg in &r {
            assert!(
                reg.end_secs() - reg.start_secs() <= p.max_speech_secs as f64 + 0.01,
                "{reg:?}"
            );
        }
    }
}
