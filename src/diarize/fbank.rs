//! Kaldi-compatible log mel filterbank features, as the WeSpeaker embedding model expects them.
//!
//! Kaldi's `compute-fbank-feats` defaults with the options pyannote's WeSpeaker wrapper uses
//! (`torchaudio.compliance.kaldi.fbank`): 16 kHz samples scaled by 32768, 25 ms frames every
//! 10 ms with `snip_edges` (only whole frames), no dither, DC offset removed per frame,
//! pre-emphasis 0.97, Hamming window, FFT of 512, power spectrum, 80 triangular mel bins from
//! 20 Hz to Nyquist on Kaldi's mel scale (1127 ln(1 + f/700)), natural log floored at f32
//! epsilon, no energy. No maintained Rust crate computes exactly this, so it lives here (about
//! 100 lines) with a test against kaldi-native-fbank's output on a fixed signal.

use realfft::RealFftPlanner;
use std::sync::Arc;

pub const NUM_BINS: usize = 80;
const FRAME_LEN: usize = 400;
pub const FRAME_SHIFT: usize = 160;
const FFT_LEN: usize = 512;
const PREEMPH: f32 = 0.97;
const LOW_FREQ: f32 = 20.0;
const SAMPLE_RATE: f32 = 16_000.0;

/// Reusable feature extractor (FFT plan, window and mel weights computed once).
pub struct Fbank {
    fft: Arc<dyn realfft::RealToComplex<f32>>,
    window: Vec<f32>,
    /// Per mel bin: first FFT bin and its weights.
    mel: Vec<(usize, Vec<f32>)>,
}

impl Default for Fbank {
    fn default() -> Self {
        Self::new()
    }
}

fn mel(f: f32) -> f32 {
    1127.0 * (1.0 + f / 700.0).ln()
}

impl Fbank {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_LEN);
        let window = (0..FRAME_LEN)
            .map(|i| {
                0.54 - 0.46
                    * (2.0 * std::f64::consts::PI * i as f64 / (FRAME_LEN - 1) as f64).cos() as f32
            })
            .collect();
        let (lo, hi) = (mel(LOW_FREQ), mel(SAMPLE_RATE / 2.0));
        let delta = (hi - lo) / (NUM_BINS + 1) as f32;
        let bin_hz = SAMPLE_RATE / FFT_LEN as f32;
        let mel_bins = (0..NUM_BINS)
            .map(|m| {
                let (l, c, r) = (
                    lo + m as f32 * delta,
                    lo + (m + 1) as f32 * delta,
                    lo + (m + 2) as f32 * delta,
                );
                let mut first = None;
                let mut w = Vec::new();
                for i in 0..FFT_LEN / 2 {
                    let f = mel(bin_hz * i as f32);
                    if f > l && f < r {
                        first.get_or_insert(i);
                        w.push(if f <= c {
                            (f - l) / (c - l)
                        } else {
                            (r - f) / (r - c)
                        });
                    } else if first.is_some() {
                        break;
                    }
                }
                (first.unwrap_or(0), w)
            })
            .collect();
        Self {
            fft,
            window,
            mel: mel_bins,
        }
    }

    /// Number of frames for `n` samples (`snip_edges`).
    pub fn num_frames(n: usize) -> usize {
        if n < FRAME_LEN {
            0
        } else {
            1 + (n - FRAME_LEN) / FRAME_SHIFT
        }
    }

    /// Log mel features of `samples` (16 kHz, in [-1, 1]), one row of [`NUM_BINS`] per frame,
    /// appended to `out` (row-major).
    pub fn compute_into(&self, samples: &[f32], out: &mut Vec<f32>) {
        let mut frame = vec![0f32; FFT_LEN];
        let mut spec = self.fft.make_output_vec();
        let mut power = vec![0f32; FFT_LEN / 2 + 1];
        for t in 0..Self::num_frames(samples.len()) {
            let s = &samples[t * FRAME_SHIFT..t * FRAME_SHIFT + FRAME_LEN];
            let mean = s.iter().map(|&x| x as f64 * 32768.0).sum::<f64>() / FRAME_LEN as f64;
            for (d, &x) in frame.iter_mut().zip(s) {
                *d = (x as f64 * 32768.0 - mean) as f32;
            }
            for i in (1..FRAME_LEN).rev() {
                frame[i] -= PREEMPH * frame[i - 1];
            }
            frame[0] -= PREEMPH * frame[0];
            for (d, w) in frame.iter_mut().zip(&self.window) {
                *d *= w;
            }
            frame[FRAME_LEN..].fill(0.0);
            // The plan only fails on wrong buffer lengths, which are fixed here.
            self.fft
                .process(&mut frame, &mut spec)
                .expect("fixed FFT sizes");
            for (p, c) in power.iter_mut().zip(&spec) {
                *p = c.norm_sqr();
            }
            for (first, w) in &self.mel {
                let e: f32 = w.iter().zip(&power[*first..]).map(|(a, b)| a * b).sum();
                out.push(e.max(f32::EPSILON).ln());
            }
        }
    }

    /// Features of `samples` with each bin's mean over the piece subtracted (what the
    /// embedding model was trained on).
    pub fn centered(&self, samples: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        self.compute_into(samples, &mut out);
        center(&mut out);
        out
    }
}

/// Subtracts each bin's mean over all rows.
pub fn center(feats: &mut [f32]) {
    let rows = feats.len() / NUM_BINS;
    if rows == 0 {
        return;
    }
    let mut mean = [0f64; NUM_BINS];
    for r in feats.chunks(NUM_BINS) {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64;
        }
    }
    for r in feats.chunks_mut(NUM_BINS) {
        for (v, m) in r.iter_mut().zip(&mean) {
            *v -= (*m / rows as f64) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture's signal (see its `generator` field).
    fn signal() -> Vec<f32> {
        let mut s: u64 = 12345;
        (0..4000)
            .map(|n| {
                s = (1_103_515_245 * s + 12345) % (1 << 31);
                let t = n as f64 / 16000.0;
                (0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    + 0.1 * (2.0 * std::f64::consts::PI * 1234.0 * t).sin()
                    + 0.05 * (s as f64 / (1u64 << 31) as f64 - 0.5)) as f32
            })
            .collect()
    }

    #[test]
    fn matches_kaldi_native_fbank() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("testdata/fbank_kaldi.json")).unwrap();
        let want: Vec<Vec<f64>> = serde_json::from_value(fixture["frames"].clone()).unwrap();
        let mut got = Vec::new();
        Fbank::new().compute_into(&signal(), &mut got);
        assert_eq!(got.len(), want.len() * NUM_BINS);
        let mut worst = 0f64;
        for (t, row) in want.iter().enumerate() {
            for (b, &w) in row.iter().enumerate() {
                worst = worst.max((got[t * NUM_BINS + b] as f64 - w).abs());
            }
        }
        assert!(worst < 2e-3, "largest difference {worst}");
    }

    #[test]
    fn frame_count_snips_edges_and_centering_zeroes_means() {
        assert_eq!(Fbank::num_frames(399), 0);
        assert_eq!(Fbank::num_frames(400), 1);
        assert_eq!(Fbank::num_frames(16000), 98);
        let f = Fbank::new().centered(&signal());
        let m: f32 = f.iter().step_by(NUM_BINS).sum();
        assert!(m.abs() < 1e-3);
    }
}
