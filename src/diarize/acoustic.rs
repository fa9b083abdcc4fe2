//! Who spoke when, from sound alone: segmentation over sliding windows, one embedding per
//! turn-sized piece, clustering, then one owner per moment.
//!
//! 1. **Segmentation** (pyannote segmentation-3.0, ONNX): 10 s windows every 8 s; each frame
//!    (16.9 ms) gets one of 7 powerset classes: nobody, one of three local speakers, or a pair
//!    (overlapped speech). Each window decides the frames of its central part (not the 1 s
//!    margins it shares with its neighbours, where it has less context).
//! 2. **Pieces**: a local speaker's run of speech inside one window, ended by a pause of
//!    0.25 s: about one turn. Local speaker identities are not trusted beyond a turn: two
//!    similar voices are sometimes one local speaker of the model (seen on the dev set).
//! 3. **Embedding** (WeSpeaker ResNet34 of pyannote community-1, ORT): one per piece, from the
//!    middle of its clean (non-overlapped) speech, at most [`DiarizeParams::embed_secs`]. The
//!    model costs about 70 ms of CPU per audio second, so a piece is embedded once, briefly.
//!    Pieces under 0.2 s take the speaker of their local speaker's longest piece in the window.
//! 4. **Clustering** ([`super::cluster`]): agglomerative over pieces of 0.8 s or more,
//!    threshold tuned on the dev set, capped at `max_speakers`; shorter pieces (a "Nope.") join
//!    the nearest speaker's centroid by their own embedding.
//! 5. **Owners**: every speech frame gets one owner, the speaker whose turn it is part of: in
//!    overlap, the speaker who was already talking keeps the floor until they stop. Owner flips
//!    shorter than [`DiarizeParams::min_flip_secs`] inside another speaker's speech are smoothed
//!    away. Each speaker's owned frames become speech regions (≤ 28 s, whisper's window) that
//!    the ASR transcribes; regions of different speakers never overlap, so no word is heard
//!    twice and a word's time always lies in its speaker's turn. The pipeline then cuts them to
//!    the VAD's speech ([`super::within_speech`]), so the ASR gets the pieces a channel would.

use super::cluster::{self, ClusterParams};
use super::fbank::{self, Fbank};
use super::DiarizeError;
use crate::asr::vad::Region;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use std::path::Path;

const SR: usize = 16_000;
const WINDOW: usize = 10 * SR;
/// Segmentation frame step in samples (0.016875 s) and the frame's centre offset.
const FRAME: usize = 270;
const FRAME_CENTRE: usize = 495;
/// Powerset class → local speakers.
const POWERSET: [&[usize]; 7] = [&[], &[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2]];
const LOCAL: usize = 3;

#[derive(Clone, Copy, Debug)]
pub struct DiarizeParams {
    /// Step between 10 s segmentation windows (samples).
    pub step: usize,
    /// Average-linkage cosine distance under which two pieces are one speaker (dev-tuned).
    pub threshold: f32,
    /// Speech of a piece that is embedded, at most (seconds).
    pub embed_secs: f64,
    /// A local speaker's pause longer than this ends their piece (seconds).
    pub piece_gap_secs: f64,
    /// Pieces with less speech than this are not embedded: they take the speaker of the same
    /// local speaker's longest piece in their window.
    pub min_piece_secs: f64,
    /// Pieces shorter than this are not clustered but join the nearest speaker found.
    pub cluster_piece_secs: f64,
    /// A speaker with less speech in all joins the nearest bigger speaker.
    pub min_speaker_secs: f64,
    /// Owner runs shorter than this inside one other speaker's speech are smoothed away.
    pub min_flip_secs: f64,
    /// Same-speaker regions closer than this are one region (seconds).
    pub merge_gap_secs: f64,
    /// Region padding into silence (seconds).
    pub pad_secs: f64,
}

impl Default for DiarizeParams {
    fn default() -> Self {
        Self {
            step: 8 * SR,
            threshold: 0.6,
            embed_secs: 1.5,
            piece_gap_secs: 0.25,
            min_piece_secs: 0.2,
            cluster_piece_secs: 0.8,
            min_speaker_secs: 4.0,
            min_flip_secs: 0.25,
            merge_gap_secs: 0.5,
            pad_secs: 0.1,
        }
    }
}

/// What diarization found: each speaker's speech regions (over the mono samples) and the
/// frame-level activity, speakers numbered in order of first speech.
#[derive(Clone, Debug, Default)]
pub struct Diarization {
    /// Per speaker: non-overlapping speech regions for the ASR, time-ordered.
    pub regions: Vec<Vec<Region>>,
    /// Per speaker: seconds of speech (overlap included).
    pub speech_secs: Vec<f64>,
}

/// The two ONNX Runtime sessions (one each, reused for every window and piece).
pub struct Diarizer {
    seg: Session,
    emb: Session,
    fbank: Fbank,
    pub params: DiarizeParams,
}

fn rt(what: &'static str) -> impl Fn(ort::Error) -> DiarizeError {
    move |e| DiarizeError::Runtime(format!("{what}: {e}"))
}

impl Diarizer {
    pub fn load(
        segmentation: &Path,
        embedding: &Path,
        ort_lib: &Path,
        params: DiarizeParams,
        threads: usize,
    ) -> Result<Self, DiarizeError> {
        let env = crate::asr::vad::ort_environment(ort_lib)
            .map_err(|e| DiarizeError::Runtime(e.to_string()))?;
        let open = |p: &Path, threads: usize| -> Result<Session, DiarizeError> {
            let e =
                |e: &dyn std::fmt::Display| DiarizeError::Runtime(format!("{}: {e}", p.display()));
            Session::builder(env)
                .map_err(|x| e(&x))?
                // All of ONNX Runtime's optimizations, layout ones included (NCHWc convolutions:
                // the embedding model's cost is almost all convolution).
                .with_optimization_level(GraphOptimizationLevel::Level3)
                .map_err(|x| e(&x))?
                .with_intra_threads(threads)
                .map_err(|x| e(&x))?
                .commit_from_file(p)
                .map_err(|x| e(&x))
        };
        Ok(Self {
            seg: open(segmentation, threads.max(1))?,
            emb: open(embedding, threads.max(1))?,
            fbank: Fbank::new(),
            params,
        })
    }

    /// Local speaker activity per window: `[window][frame]` bitmask of local speakers.
    fn segment(&mut self, x: &[f32], starts: &[usize]) -> Result<Vec<Vec<u8>>, DiarizeError> {
        let mut out = Vec::with_capacity(starts.len());
        for batch in starts.chunks(4) {
            let mut input = vec![0f32; batch.len() * WINDOW];
            for (b, &s) in batch.iter().enumerate() {
                let end = (s + WINDOW).min(x.len());
                input[b * WINDOW..b * WINDOW + end - s].copy_from_slice(&x[s..end]);
            }
            let t = Tensor::from_array(([batch.len(), 1, WINDOW], input))
                .map_err(rt("segmentation"))?;
            let res = self
                .seg
                .run(ort::inputs!["input" => t])
                .map_err(rt("segmentation"))?;
            let (shape, y) = res["output"]
                .try_extract_tensor::<f32>()
                .map_err(rt("segmentation"))?;
            let frames = shape[1] as usize;
            for b in 0..batch.len() {
                out.push(
                    (0..frames)
                        .map(|f| {
                            let row = &y[(b * frames + f) * 7..(b * frames + f + 1) * 7];
                            let class = (0..7)
                                .max_by(|&i, &j| row[i].total_cmp(&row[j]))
                                .unwrap_or(0);
                            POWERSET[class].iter().fold(0u8, |m, &k| m | 1 << k)
                        })
                        .collect(),
                );
            }
        }
        Ok(out)
    }

    /// One L2-normalised embedding of the given sample runs (their features concatenated).
    fn embed(&mut self, x: &[f32], runs: &[(usize, usize)]) -> Result<Vec<f32>, DiarizeError> {
        let mut feats = Vec::new();
        for &(a, b) in runs {
            self.fbank.compute_into(&x[a..b.min(x.len())], &mut feats);
        }
        fbank::center(&mut feats);
        let t = feats.len() / fbank::NUM_BINS;
        let f = Tensor::from_array(([1, t, fbank::NUM_BINS], feats)).map_err(rt("embedding"))?;
        let w = Tensor::from_array(([1, t], vec![1f32; t])).map_err(rt("embedding"))?;
        let res = self
            .emb
            .run(ort::inputs!["fbank" => f, "weights" => w])
            .map_err(rt("embedding"))?;
        let (_, e) = res["embedding"]
            .try_extract_tensor::<f32>()
            .map_err(rt("embedding"))?;
        let mut v = e.to_vec();
        cluster::normalize(&mut v);
        Ok(v)
    }

    /// Diarizes 16 kHz mono `x` into at most `max_speakers` speakers.
    pub fn diarize(&mut self, x: &[f32], max_speakers: usize) -> Result<Diarization, DiarizeError> {
        let p = self.params;
        let n = x.len();
        if n < SR / 2 {
            return Ok(Diarization::default());
        }
        let mut starts: Vec<usize> = (0..)
            .map(|i| i * p.step)
            .take_while(|&s| s + WINDOW < n)
            .collect();
        starts.push(n.saturating_sub(WINDOW));
        starts.dedup();
        let t0 = std::time::Instant::now();
        let act = self.segment(x, &starts)?;
        let segmentation_ms = t0.elapsed().as_millis() as u64;
        let nf = act.first().map_or(0, Vec::len);
        let total_frames = n / FRAME + 1;
        let gframe = |w: usize, f: usize| (starts[w] + f * FRAME) / FRAME;

        // Which window decides each global frame: the central part of each window.
        let mut owner_win = vec![usize::MAX; total_frames];
        for w in 0..starts.len() {
            let lo = if w == 0 {
                0
            } else {
                (starts[w] + starts[w - 1] + WINDOW) / 2
            };
            let hi = if w + 1 == starts.len() {
                n
            } else {
                (starts[w + 1] + starts[w] + WINDOW) / 2
            };
            for f in 0..nf {
                let c = starts[w] + f * FRAME + FRAME_CENTRE;
                if c >= lo && c < hi {
                    let g = gframe(w, f);
                    if g < total_frames {
                        owner_win[g] = w * nf + f;
                    }
                }
            }
        }

        // Pieces: runs of one local speaker inside the frames its window decides, cut at a
        // pause of `piece_gap_secs`. The segmentation model's local identities are reliable
        // within a turn, not across turns of two similar voices, so every turn-sized piece
        // gets its own embedding.
        let frame_secs = FRAME as f64 / SR as f64;
        let gap = (p.piece_gap_secs / frame_secs).round() as usize;
        // piece_at[g][k]: piece of local speaker k at global frame g (or MAX).
        let mut frames_active: Vec<Vec<usize>> = vec![Vec::new(); total_frames];
        let mut piece_local: Vec<(usize, usize)> = Vec::new(); // (window, local speaker)
        let mut open: [Option<(usize, usize)>; LOCAL] = [None; LOCAL]; // (piece, last frame)
        let mut last_win = usize::MAX;
        for (g, &o) in owner_win.iter().enumerate() {
            if o == usize::MAX {
                continue;
            }
            let (w, f) = (o / nf, o % nf);
            if w != last_win {
                open = [None; LOCAL];
                last_win = w;
            }
            for (k, slot) in open.iter_mut().enumerate() {
                if act[w][f] >> k & 1 == 0 {
                    continue;
                }
                let pc = match *slot {
                    Some((pc, last)) if g - last <= gap => pc,
                    _ => {
                        piece_local.push((w, k));
                        piece_local.len() - 1
                    }
                };
                *slot = Some((pc, g));
                frames_active[g].push(pc);
            }
        }
        let pieces = piece_local.len();

        // Embed each piece from its clean runs, longest first.
        let mut runs: Vec<Vec<(usize, usize)>> = vec![Vec::new(); pieces];
        let mut all_runs: Vec<Vec<(usize, usize)>> = vec![Vec::new(); pieces];
        let mut piece_secs = vec![0f64; pieces];
        for (g, a) in frames_active.iter().enumerate() {
            let (s0, s1) = (g * FRAME, ((g + 1) * FRAME).min(n));
            for &pc in a {
                piece_secs[pc] += frame_secs;
                push_run(&mut all_runs[pc], s0, s1);
                if a.len() == 1 {
                    push_run(&mut runs[pc], s0, s1);
                }
            }
        }
        let min_samples = (p.min_piece_secs * SR as f64) as usize;
        let mut items = Vec::new();
        let mut item_piece = Vec::new();
        let mut weights = Vec::new();
        for pc in 0..pieces {
            let clean: usize = runs[pc].iter().map(|(a, b)| b - a).sum();
            let mut r = if clean >= min_samples {
                std::mem::take(&mut runs[pc])
            } else {
                std::mem::take(&mut all_runs[pc])
            };
            r.sort_by_key(|(a, b)| std::cmp::Reverse(b - a));
            let budget = (p.embed_secs * SR as f64) as usize;
            let mut chosen = Vec::new();
            let mut got = 0;
            for (a, b) in r {
                if got >= budget {
                    break;
                }
                // The middle of a long run: its edges are where overlap and pauses blur.
                let take = (b - a).min(budget - got);
                let a2 = a + (b - a - take) / 2;
                if take >= 400 {
                    chosen.push((a2, a2 + take));
                    got += take;
                }
            }
            if got < min_samples {
                continue;
            }
            items.push(self.embed(x, &chosen)?);
            item_piece.push(pc);
            weights.push(piece_secs[pc]);
        }
        tracing::debug!(
            windows = starts.len(),
            segmentation_ms,
            pieces,
            embedded = items.len(),
            embedding_ms = t0.elapsed().as_millis() as u64 - segmentation_ms,
            "diarization stages"
        );
        // Cluster the pieces long enough for a steady embedding; short ones ("Nope.", "Yes.")
        // join the nearest resulting speaker: their embeddings are noisy, but a short answer
        // is exactly where a role matters, so it is decided by its own voice.
        let long: Vec<usize> = (0..items.len())
            .filter(|&i| weights[i] >= p.cluster_piece_secs)
            .collect();
        let base: Vec<usize> = if long.len() >= 2 {
            long
        } else {
            (0..items.len()).collect()
        };
        let base_items: Vec<Vec<f32>> = base.iter().map(|&i| items[i].clone()).collect();
        let base_weights: Vec<f64> = base.iter().map(|&i| weights[i]).collect();
        let base_labels = cluster::cluster(
            &base_items,
            &base_weights,
            ClusterParams {
                threshold: p.threshold,
                max_clusters: max_speakers,
                min_cluster_secs: p.min_speaker_secs,
            },
        );
        let k = base_labels.iter().max().map_or(0, |m| m + 1);
        let mut centroids = vec![vec![0f32; items.first().map_or(0, Vec::len)]; k];
        for (j, &i) in base.iter().enumerate() {
            for (c, v) in centroids[base_labels[j]].iter_mut().zip(&items[i]) {
                *c += v * weights[i] as f32;
            }
        }
        centroids.iter_mut().for_each(|c| cluster::normalize(c));
        let mut labels = vec![usize::MAX; items.len()];
        for (j, &i) in base.iter().enumerate() {
            labels[i] = base_labels[j];
        }
        for (i, l) in labels.iter_mut().enumerate() {
            if *l == usize::MAX {
                *l = (0..k)
                    .min_by(|&a, &b| {
                        cluster::cosine_distance(&items[i], &centroids[a])
                            .total_cmp(&cluster::cosine_distance(&items[i], &centroids[b]))
                    })
                    .unwrap_or(0);
            }
        }
        let mut speaker_of_piece = vec![usize::MAX; pieces];
        for (i, &pc) in item_piece.iter().enumerate() {
            speaker_of_piece[pc] = labels[i];
        }
        // Pieces too short to embed ("yes", "mm-hmm") take the speaker of the same local
        // speaker's longest embedded piece in their window, else of the nearest embedded
        // piece of that local speaker in a neighbouring window.
        let mut best_in: std::collections::HashMap<(usize, usize), (f64, usize)> =
            Default::default();
        for &pc in &item_piece {
            let e = best_in.entry(piece_local[pc]).or_insert((0.0, usize::MAX));
            if piece_secs[pc] > e.0 {
                *e = (piece_secs[pc], speaker_of_piece[pc]);
            }
        }
        for pc in 0..pieces {
            if speaker_of_piece[pc] == usize::MAX {
                let (w, k) = piece_local[pc];
                speaker_of_piece[pc] = best_in.get(&(w, k)).map_or(usize::MAX, |e| e.1);
            }
        }
        let speakers = labels.iter().max().map_or(0, |m| m + 1);
        let frame_speakers: Vec<Vec<usize>> = frames_active
            .iter()
            .map(|a| {
                let mut s: Vec<usize> = a
                    .iter()
                    .map(|&pc| speaker_of_piece[pc])
                    .filter(|&s| s != usize::MAX)
                    .collect();
                s.sort_unstable();
                s.dedup();
                s
            })
            .collect();
        let mut speech_secs = vec![0f64; speakers];
        for s in frame_speakers.iter().flatten() {
            speech_secs[*s] += frame_secs;
        }
        let owners = smooth(
            &assign_owners(&frame_speakers),
            (p.min_flip_secs / frame_secs).round() as usize,
        );
        let regions = owner_regions(&owners, speakers, n, &p);
        Ok(Diarization {
            regions,
            speech_secs,
        })
    }
}

fn push_run(runs: &mut Vec<(usize, usize)>, a: usize, b: usize) {
    match runs.last_mut() {
        Some(r) if r.1 == a => r.1 = b,
        _ => runs.push((a, b)),
    }
}

/// One owner per frame (`None` = silence): a single active speaker owns it; in overlap the
/// speaker who already owned the previous frame keeps it, else the one who talks longest from
/// here (an answer that starts as a question ends belongs to the answer once the question stops).
pub fn assign_owners(frames: &[Vec<usize>]) -> Vec<Option<usize>> {
    let mut out: Vec<Option<usize>> = Vec::with_capacity(frames.len());
    for (g, a) in frames.iter().enumerate() {
        let prev = out.last().copied().flatten();
        let o = match a.len() {
            0 => None,
            1 => Some(a[0]),
            _ if prev.is_some_and(|p| a.contains(&p)) => prev,
            _ => a
                .iter()
                .copied()
                .max_by_key(|&s| frames[g..].iter().take_while(|f| f.contains(&s)).count()),
        };
        out.push(o);
    }
    out
}

/// Runs of one owner shorter than `min` frames with the same other owner right before and
/// after are given to that owner (flicker inside one speaker's turn).
pub fn smooth(owners: &[Option<usize>], min: usize) -> Vec<Option<usize>> {
    let mut o = owners.to_vec();
    let mut i = 0;
    while i < o.len() {
        let mut j = i;
        while j < o.len() && o[j] == o[i] {
            j += 1;
        }
        if o[i].is_some() && j - i < min && i > 0 && j < o.len() {
            let (before, after) = (o[i - 1], o[j]);
            if before.is_some() && before == after {
                o[i..j].fill(before);
            }
        }
        i = j;
    }
    o
}

/// Each speaker's owned frames as ASR regions: nearby runs merged when nobody else speaks in
/// between, padded into silence only, split to fit whisper's window.
fn owner_regions(
    owners: &[Option<usize>],
    speakers: usize,
    n: usize,
    p: &DiarizeParams,
) -> Vec<Vec<Region>> {
    let gap = (p.merge_gap_secs * SR as f64 / FRAME as f64) as usize;
    let pad = (p.pad_secs * SR as f64 / FRAME as f64) as usize;
    let max_len = (crate::asr::MAX_WINDOW_SECS * SR as f64 / FRAME as f64) as usize;
    let mut out = vec![Vec::new(); speakers];
    // Runs of each speaker in frames.
    let mut runs: Vec<Vec<(usize, usize)>> = vec![Vec::new(); speakers];
    let mut i = 0;
    while i < owners.len() {
        let mut j = i;
        while j < owners.len() && owners[j] == owners[i] {
            j += 1;
        }
        if let Some(s) = owners[i] {
            let r = &mut runs[s];
            match r.last_mut() {
                Some(last)
                    if i - last.1 <= gap && owners[last.1..i].iter().all(Option::is_none) =>
                {
                    last.1 = j
                }
                _ => r.push((i, j)),
            }
        }
        i = j;
    }
    for (s, rs) in runs.into_iter().enumerate() {
        for (a, b) in rs {
            if b - a < 8 {
                continue; // under 0.14 s: nothing whisper can use
            }
            let mut a2 = a;
            while a2 > 0 && a - a2 < pad && owners[a2 - 1].is_none() {
                a2 -= 1;
            }
            let mut b2 = b;
            while b2 < owners.len() && b2 - b < pad && owners[b2].is_none() {
                b2 += 1;
            }
            split_region(owners, a2, b2, max_len, &mut |x, y| {
                out[s].push(Region {
                    start: (x * FRAME).min(n),
                    end: (y * FRAME).min(n),
                })
            });
        }
    }
    out
}

/// Splits [a, b) into pieces of at most `max` frames at its longest silence.
fn split_region(
    owners: &[Option<usize>],
    a: usize,
    b: usize,
    max: usize,
    emit: &mut dyn FnMut(usize, usize),
) {
    if b - a <= max {
        emit(a, b);
        return;
    }
    // Longest silent run strictly inside, else the middle.
    let (mut best, mut at, mut k) = (0, (a + b) / 2, a + 1);
    while k < b - 1 {
        if owners[k].is_none() {
            let s = k;
            while k < b - 1 && owners[k].is_none() {
                k += 1;
            }
            if k - s > best && s - a >= 30 && b - k >= 30 {
                best = k - s;
                at = (s + k) / 2;
            }
        }
        k += 1;
    }
    split_region(owners, a, at, max, emit);
    split_region(owners, at, b, max, emit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_stays_with_the_speaker_who_has_the_floor() {
        // 0 talks, 1 starts before 0 ends (overlap), then 1 alone.
        let rep = |v: Vec<usize>, k: usize| std::iter::repeat_n(v, k);
        let f: Vec<Vec<usize>> = rep(vec![0], 5)
            .chain(rep(vec![0, 1], 3))
            .chain(rep(vec![1], 6))
            .collect();
        let o = assign_owners(&f);
        assert_eq!(&o[..8], &[Some(0); 8]);
        assert_eq!(&o[8..], &[Some(1); 6]);
        // A backchannel inside 0's turn never takes the floor.
        let f: Vec<Vec<usize>> = rep(vec![0], 5)
            .chain(rep(vec![0, 1], 3))
            .chain(rep(vec![0], 5))
            .collect();
        assert!(assign_owners(&f).iter().all(|&x| x == Some(0)));
    }

    #[test]
    fn short_flips_inside_a_turn_are_smoothed_but_answers_after_silence_kept() {
        let o = vec![Some(0), Some(0), Some(1), Some(0), Some(0)];
        assert_eq!(smooth(&o, 3), vec![Some(0); 5]);
        let o = vec![Some(0), None, Some(1), None, Some(0)];
        assert_eq!(smooth(&o, 3), o);
    }

    #[test]
    fn regions_do_not_overlap_across_speakers_and_fit_whisper() {
        let mut owners = vec![None; 10];
        owners.extend(vec![Some(0); 100]);
        owners.extend(vec![None; 20]);
        owners.extend(vec![Some(1); 3000]); // 50 s
        owners.extend(vec![None; 10]);
        let r = owner_regions(&owners, 2, owners.len() * FRAME, &DiarizeParams::default());
        assert_eq!(r[0].len(), 1);
        assert!(r[1].len() >= 2);
        let max = (crate::asr::MAX_WINDOW_SECS * SR as f64) as usize;
        assert!(r[1].iter().all(|x| x.end - x.start <= max));
        assert!(r[0][0].end <= r[1][0].start);
    }
}
