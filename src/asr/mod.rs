//! Speech recognition stage: 16 kHz samples + VAD regions → timed words with confidences.
//!
//! Speech regions are *packed* into windows of at most [`MAX_WINDOW_SECS`] (regions in order,
//! separated by a short silence) before they reach whisper. Whisper always encodes a 30 s window,
//! so one call per short region would cost many times a whole-file pass; packing keeps the number
//! of encoder passes at or below whole-file decoding while every token time maps back to exactly
//! one region, so word times never leave the region (and the speaker) they were heard in.
//!
//! Architecture invariant: this module knows nothing of speakers, segments or output formats;
//! `diarize` and `transcript` give words their roles and segments.

pub mod vad;
pub mod vocabulary;
pub mod whisper;

use crate::audio::SAMPLE_RATE;
pub use vad::{Region, SileroVad, VadParams};
pub use vocabulary::Vocabulary;

/// Longest packed window: under whisper's 30 s so one window is one encoder pass.
pub const MAX_WINDOW_SECS: f64 = 28.0;
/// Silence inserted between packed regions, so whisper sees them as separate utterances.
pub const PACK_GAP_SECS: f64 = 0.6;

#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("speech model runtime error: {0}")]
    Runtime(String),
    #[error("cannot load whisper model {path}: {detail}")]
    Model { path: String, detail: String },
    #[error("whisper decoding failed: {0}")]
    Decode(String),
    #[error("custom vocabulary is invalid: {0}")]
    Vocabulary(String),
}

/// One token as a recogniser reports it; times in seconds from the start of its input.
#[derive(Clone, Debug, PartialEq)]
pub struct RawToken {
    pub bytes: Vec<u8>,
    pub start: f64,
    pub end: f64,
    pub prob: f32,
    /// Start and end (s) of the recogniser's utterance (whisper segment) holding the token.
    /// Utterance times come from whisper's timestamp tokens, which sit on pauses and are far
    /// more reliable than per-token times; they decide which packed region words belong to.
    pub utterance: (f64, f64),
}

/// A recogniser: whisper-rs in production; the trait keeps the pipeline testable and lets a
/// different engine slot in.
pub trait Recognizer {
    /// Transcribes `audio` (16 kHz mono). `prompt` biases the decoder (custom vocabulary).
    fn transcribe(
        &mut self,
        audio: &[f32],
        prompt: Option<&str>,
    ) -> Result<Vec<RawToken>, AsrError>;

    /// The model that really transcribes (e.g. `whisper ggml-base.bin`), for provenance: the
    /// transcript and the FHIR `Device` name it. `None` for stand-ins.
    fn model_name(&self) -> Option<String> {
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Pronunciation,
    Punctuation,
}

/// A recognised word or punctuation mark in source-audio time.
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub kind: ItemKind,
    pub text: String,
    pub start: f64,
    pub end: f64,
    pub confidence: f32,
    /// Index of the VAD region (of its channel) the word was heard in.
    pub region: usize,
    /// The recogniser utterance the word came from (window time, s); see [`RawToken::utterance`].
    pub utterance: (f64, f64),
    /// What the plain decode heard where a custom-vocabulary term now stands ("listen up,
    /// roll" for lisinopril); `None` for words as heard. Kept so the transcript can say which
    /// words were corrected and later stages can trust them less.
    pub heard_as: Option<String>,
}

/// A piece of source audio inside a packed window.
#[derive(Clone, Debug)]
struct Piece {
    /// Which input stream (speaker) the piece's audio comes from.
    stream: usize,
    region: usize,
    win_start: usize,
    src: Region,
}

struct Window {
    audio: Vec<f32>,
    pieces: Vec<Piece>,
}

#[cfg(test)]
fn pack(pcm: &[f32], regions: &[Region]) -> Vec<Window> {
    pack_streams(&[StreamInput {
        samples: pcm,
        regions,
    }])
}

/// Packs the speech regions of all streams, in order of start time, into windows. Each piece
/// keeps its own stream's samples (channels are never mixed), so whisper hears the conversation
/// in order — a patient's "Nope." right after the clinician's "Any chest pain?" — as it would in
/// a whole-file pass, while every piece still belongs to exactly one speaker.
fn pack_streams(streams: &[StreamInput<'_>]) -> Vec<Window> {
    let sr = SAMPLE_RATE as f64;
    let gap = (PACK_GAP_SECS * sr) as usize;
    let max = (MAX_WINDOW_SECS * sr) as usize;
    let mut all: Vec<(usize, usize, Region)> = streams
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            s.regions
                .iter()
                .enumerate()
                .map(move |(ri, r)| (si, ri, *r))
        })
        .collect();
    all.sort_by_key(|&(si, _, r)| (r.start, si));
    let mut out: Vec<Window> = Vec::new();
    for (si, ri, r) in all {
        let pcm = streams[si].samples;
        let r = Region {
            start: r.start.min(pcm.len()),
            end: r.end.min(pcm.len()),
        };
        let len = r.end.saturating_sub(r.start);
        if len == 0 {
            continue;
        }
        let fits = out.last().is_some_and(|w| w.audio.len() + gap + len <= max);
        if !fits {
            out.push(Window {
                audio: Vec::with_capacity(max),
                pieces: Vec::new(),
            });
        }
        let w = out.last_mut().expect("window pushed above");
        if !w.pieces.is_empty() {
            w.audio.extend(std::iter::repeat_n(0.0, gap));
        }
        w.pieces.push(Piece {
            stream: si,
            region: ri,
            win_start: w.audio.len(),
            src: r,
        });
        w.audio.extend_from_slice(&pcm[r.start..r.end]);
    }
    // whisper.cpp refuses inputs under 1 s; pad short windows with trailing silence.
    for w in &mut out {
        if w.audio.len() < SAMPLE_RATE as usize + SAMPLE_RATE as usize / 10 {
            w.audio
                .resize(SAMPLE_RATE as usize + SAMPLE_RATE as usize / 10, 0.0);
        }
    }
    out
}

impl Window {
    /// Maps a window time (s) to (piece index, source time in s), snapping gap times to the
    /// nearest piece edge.
    fn to_source(&self, t: f64) -> (usize, f64) {
        let sr = SAMPLE_RATE as f64;
        let s = (t * sr).max(0.0) as usize;
        let mut best = (0usize, f64::MAX, 0f64);
        for (i, p) in self.pieces.iter().enumerate() {
            let len = p.src.end - p.src.start;
            let (lo, hi) = (p.win_start, p.win_start + len);
            let (dist, src) = if s < lo {
                ((lo - s) as f64, p.src.start)
            } else if s >= hi {
                ((s - hi) as f64, p.src.end)
            } else {
                (0.0, p.src.start + (s - lo))
            };
            if dist < best.1 {
                best = (i, dist, src as f64 / sr);
            }
        }
        (best.0, best.2)
    }
}

/// One speaker stream to transcribe: 16 kHz mono samples and their speech regions.
pub struct StreamInput<'a> {
    pub samples: &'a [f32],
    pub regions: &'a [Region],
}

/// Transcribes the speech regions of every stream; returns each stream's words in time order.
///
/// The regions of all streams are packed together in time order ([`pack_streams`]); the words
/// of each window are assigned back to its pieces, hence to their streams. Windows are decoded
/// without a prompt: giving the preceding conversation as a text prompt made tiny.en copy it
/// into its output (WER 8% → 26% on the sample) and did not help base, and a vocabulary prompt
/// makes whisper skip short turns. A custom vocabulary instead gets a second, prompted decode
/// of just the pieces with near misses of its terms ([`vocabulary`]).
pub fn transcribe_streams(
    rec: &mut dyn Recognizer,
    streams: &[StreamInput<'_>],
    vocabulary: Option<&Vocabulary>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Vec<Word>>, AsrError> {
    let windows = pack_streams(streams);
    let mut words: Vec<Vec<Word>> = vec![Vec::new(); streams.len()];
    for (n, w) in windows.iter().enumerate() {
        progress(n, windows.len());
        let mut per_piece = decode_resuming(rec, streams, w)?;
        if let Some(v) = vocabulary {
            apply_vocabulary(rec, streams, w, &mut per_piece, v)?;
        }
        for (piece, ws) in w.pieces.iter().zip(per_piece) {
            words[piece.stream].extend(ws);
        }
    }
    progress(windows.len(), windows.len());
    for ws in &mut words {
        // Pieces are packed in start order; keep each stream's words ordered explicitly.
        ws.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    Ok(words)
}

/// Decodes the pieces of `w` whose plain words hold a near miss of a vocabulary term again,
/// packed into one window with the vocabulary prompt, and splices in the terms both decodes
/// agree on (matched by words, so the prompted decode's unreliable times do not matter).
fn apply_vocabulary(
    rec: &mut dyn Recognizer,
    streams: &[StreamInput<'_>],
    w: &Window,
    per_piece: &mut [Vec<Word>],
    v: &Vocabulary,
) -> Result<(), AsrError> {
    let near: Vec<usize> = (0..w.pieces.len())
        .filter(|&i| v.has_near_miss(&per_piece[i]))
        .collect();
    if near.is_empty() {
        return Ok(());
    }
    // Whisper sometimes skips whole pieces of a prompted window: those it did not hear are
    // decoded again (packed anew, as whisper's own seek would resume); a piece not heard even
    // alone keeps its plain words. Every round settles at least one piece.
    let mut queue = vec![near.clone()];
    let (mut replaced, mut kept_everyday) = (0, 0);
    while let Some(todo) = queue.pop() {
        let pieces: Vec<Piece> = todo.iter().map(|&i| w.pieces[i].clone()).collect();
        let audio = repack(streams, &pieces).audio;
        let prompted = words_from_tokens(&rec.transcribe(&audio, Some(v.prompt()))?);
        let mut plain: Vec<Vec<Word>> = todo
            .iter()
            .map(|&i| std::mem::take(&mut per_piece[i]))
            .collect();
        let done = v.splice(&mut plain, &prompted);
        replaced += done.replaced;
        kept_everyday += done.kept_everyday;
        let mut missed = Vec::new();
        for ((&i, ws), heard) in todo.iter().zip(plain).zip(done.heard) {
            per_piece[i] = ws;
            if !heard {
                missed.push(i);
            }
        }
        if missed.is_empty() {
            continue;
        }
        if missed.len() < todo.len() {
            queue.push(missed);
        } else if missed.len() > 1 {
            // Nothing heard: the first piece alone next, then the rest.
            queue.push(missed[1..].to_vec());
            queue.push(vec![missed[0]]);
        }
    }
    tracing::debug!(
        pieces = near.len(),
        replaced,
        kept_everyday,
        "vocabulary applied"
    );
    Ok(())
}

/// Decodes a window; where whisper abandoned it (stopped early or skipped ahead, leaving a piece
/// under-transcribed), decodes again from that piece on, as whisper's own seek would resume:
/// the pieces from the first under-transcribed one to the end are packed into a new, shorter
/// window (one more encoder pass, whatever their number). A piece that is under-transcribed
/// even at the start of a window is decoded alone. Every step settles at least one piece.
fn decode_resuming(
    rec: &mut dyn Recognizer,
    streams: &[StreamInput<'_>],
    w: &Window,
) -> Result<Vec<Vec<Word>>, AsrError> {
    let mut out: Vec<Vec<Word>> = Vec::with_capacity(w.pieces.len());
    let mut start = 0;
    let mut res = decode_window(rec, w)?;
    // Whether `res` came from a window of several pieces (a piece decoded alone is final).
    let mut packed = w.pieces.len() > 1;
    while start < w.pieces.len() {
        let bad = if packed {
            w.pieces[start..]
                .iter()
                .zip(&res)
                .position(|(p, ws)| under_transcribed(p, ws))
        } else {
            None
        };
        let Some(b) = bad else {
            out.extend(res);
            break;
        };
        tracing::debug!(
            piece = start + b,
            "window abandoned: decoding again from this piece"
        );
        let mut tail = res.split_off(b);
        if b > 0 {
            reclaim_abandoned_utterance(&w.pieces[start + b - 1], &mut res[b - 1], &mut tail);
        }
        out.extend(res);
        start += b;
        if b > 0 {
            let rest = &w.pieces[start..];
            packed = rest.len() > 1;
            res = decode_window(rec, &repack(streams, rest))?;
        } else {
            let p = &w.pieces[start];
            let alone = single_piece_window(streams[p.stream].samples, p);
            out.push(decode_window(rec, &alone)?.remove(0));
            tail.remove(0);
            res = tail;
            start += 1;
        }
    }
    Ok(out)
}

/// When whisper abandons a window, its last utterance runs on to the window's end and its token
/// times are spread over that whole span, so the assignment can hand the utterance's last words
/// to the (abandoned) next piece, whose words are then decoded again. Those words belong to the
/// previous piece: move back the leading words of the abandoned pieces that continue `prev`'s
/// last utterance.
fn reclaim_abandoned_utterance(piece: &Piece, prev: &mut Vec<Word>, abandoned: &mut [Vec<Word>]) {
    let Some(u) = prev.last().map(|w| w.utterance) else {
        return;
    };
    let hi = piece.src.end_secs();
    // The run of words continuing that utterance: its length in each abandoned piece, in order,
    // up to the first piece where the utterance ends.
    let mut lens = Vec::new();
    for next in abandoned.iter() {
        let n = next.iter().take_while(|w| w.utterance == u).count();
        lens.push(n);
        if n < next.len() {
            break;
        }
    }
    let run: usize = abandoned
        .iter()
        .zip(&lens)
        .map(|(next, &n)| spoken_words(&next[..n]))
        .sum();
    // More than the piece can hold is not an utterance's tail but a breakdown (the whole window
    // came back as one utterance): move nothing, those words are decoded again anyway.
    if spoken_words(prev) + run > max_plausible_words(piece) {
        return;
    }
    for (next, n) in abandoned.iter_mut().zip(lens) {
        let after = prev.last().map_or(piece.src.start_secs(), |w| w.end);
        for mut w in next.drain(..n) {
            // The moved words stay inside the previous piece's region, after its last word.
            w.start = w.start.clamp(after, hi);
            w.end = w.end.clamp(w.start, hi);
            w.region = piece.region;
            prev.push(w);
        }
    }
}

fn spoken_words(words: &[Word]) -> usize {
    words
        .iter()
        .filter(|x| x.kind == ItemKind::Pronunciation)
        .count()
}

fn piece_secs(piece: &Piece) -> f64 {
    piece.src.end_secs() - piece.src.start_secs()
}

/// Whether whisper gave `piece` far fewer words than anyone speaks in its time.
fn under_transcribed(piece: &Piece, words: &[Word]) -> bool {
    let secs = piece_secs(piece);
    secs >= MIN_REDECODE_SECS && (spoken_words(words) as f64) < MIN_WORDS_PER_SEC * secs
}

/// The most words `piece` can plausibly hold: more means the decode's timing broke down and
/// other pieces' words were piled onto this one (whisper sometimes returns a whole window as
/// one utterance without timestamps, its token times then collapse at the window's end).
fn max_plausible_words(piece: &Piece) -> usize {
    (MAX_WORDS_PER_SEC * piece_secs(piece)) as usize + MAX_WORDS_SLACK
}

/// Packs already packed pieces again, in order, into one new window.
fn repack(streams: &[StreamInput<'_>], pieces: &[Piece]) -> Window {
    let gap = (PACK_GAP_SECS * SAMPLE_RATE as f64) as usize;
    let mut audio = Vec::new();
    let mut out = Vec::with_capacity(pieces.len());
    for p in pieces {
        if !out.is_empty() {
            audio.extend(std::iter::repeat_n(0.0, gap));
        }
        out.push(Piece {
            win_start: audio.len(),
            ..p.clone()
        });
        audio.extend_from_slice(&streams[p.stream].samples[p.src.start..p.src.end]);
    }
    let min = SAMPLE_RATE as usize + SAMPLE_RATE as usize / 10;
    if audio.len() < min {
        audio.resize(min, 0.0);
    }
    Window { audio, pieces: out }
}

/// A region at least this long (s) with fewer than [`MIN_WORDS_PER_SEC`] words is decoded again.
const MIN_REDECODE_SECS: f64 = 1.0;
/// Far below any speaking rate (2–3 words/s); VAD padding and pauses are included in a region.
const MIN_WORDS_PER_SEC: f64 = 0.6;
/// Far above any speaking rate (fast speech is ~4 words/s), plus a few words of slack for short
/// pieces whose neighbours' words legitimately slip in at a boundary.
const MAX_WORDS_PER_SEC: f64 = 6.0;
const MAX_WORDS_SLACK: usize = 4;

/// Decodes one window: the words of each piece, in source time, in piece order.
fn decode_window(rec: &mut dyn Recognizer, w: &Window) -> Result<Vec<Vec<Word>>, AsrError> {
    let tokens = rec.transcribe(&w.audio, None)?;
    let mut ws = words_from_tokens(&tokens);
    let pieces = assign_pieces(w, &ws);
    let mut out: Vec<Vec<Word>> = vec![Vec::new(); w.pieces.len()];
    for (mut word, pi) in ws.drain(..).zip(pieces) {
        let piece = &w.pieces[pi];
        let (lo, hi) = (piece.src.start_secs(), piece.src.end_secs());
        let map = |t: f64| {
            let (p, s) = w.to_source(t);
            match p.cmp(&pi) {
                std::cmp::Ordering::Equal => s.clamp(lo, hi),
                std::cmp::Ordering::Less => lo,
                std::cmp::Ordering::Greater => hi,
            }
        };
        word.start = map(word.start);
        word.end = map(word.end).max(word.start);
        word.region = piece.region;
        out[pi].push(word);
    }
    Ok(out)
}

/// A window holding just one piece (padded to whisper's 1 s minimum).
fn single_piece_window(pcm: &[f32], piece: &Piece) -> Window {
    let mut audio = pcm[piece.src.start..piece.src.end].to_vec();
    let min = SAMPLE_RATE as usize + SAMPLE_RATE as usize / 10;
    if audio.len() < min {
        audio.resize(min, 0.0);
    }
    Window {
        audio,
        pieces: vec![Piece {
            stream: piece.stream,
            region: piece.region,
            win_start: 0,
            src: piece.src,
        }],
    }
}

/// Assigns each word of a window to a packed piece.
///
/// Whisper's per-token times are rough: a word near a boundary is often timed a second or more
/// into the gap or the neighbouring piece, in either direction, so nearest-piece assignment puts
/// whole sentences into the wrong turn. Pieces follow each other in the transcript, though, so the
/// assignment is a monotone segmentation of the word sequence, chosen by dynamic programming to
/// minimise the total distance (s) of words from their piece, plus a penalty for a boundary that
/// is not at a sentence end (VAD pieces almost always end one) and for leaving a piece without
/// words (VAD heard speech there). A boundary at a whisper utterance change costs less.
fn assign_pieces(w: &Window, words: &[Word]) -> Vec<usize> {
    let (n, m) = (w.pieces.len(), words.len());
    if n <= 1 || m == 0 {
        return vec![0; m];
    }
    let sr = SAMPLE_RATE as f64;
    let bounds: Vec<(f64, f64)> = w
        .pieces
        .iter()
        .map(|p| {
            (
                p.win_start as f64 / sr,
                (p.win_start + p.src.end - p.src.start) as f64 / sr,
            )
        })
        .collect();
    // cum[k][i]: summed distance of words[..i] from piece k.
    let cum: Vec<Vec<f64>> = bounds
        .iter()
        .map(|&(lo, hi)| {
            let mut c = vec![0.0; m + 1];
            for (i, wd) in words.iter().enumerate() {
                let d = if wd.kind == ItemKind::Punctuation {
                    0.0
                } else {
                    let t = (wd.start + wd.end) / 2.0;
                    (lo - t).max(0.0) + (t - hi).max(0.0)
                };
                c[i + 1] = c[i] + d;
            }
            c
        })
        .collect();
    let is_end = |k: usize| {
        words[k].kind == ItemKind::Punctuation && matches!(words[k].text.as_str(), "." | "?" | "!")
    };
    // Cost of a boundary before word i (0 < i < m).
    let boundary = |i: usize| -> f64 {
        if words[i].kind == ItemKind::Punctuation {
            return f64::INFINITY; // punctuation stays with the word before it
        }
        let mut c = if is_end(i - 1) {
            0.0
        } else {
            NON_SENTENCE_BOUNDARY_COST
        };
        if words[i].utterance != words[i - 1].utterance {
            c *= 0.5;
        }
        c
    };
    // f[k][j]: best cost of words[..j] in pieces[..k]; back[k][j]: start of piece k-1's words.
    let inf = f64::INFINITY;
    let mut f = vec![vec![inf; m + 1]; n + 1];
    let mut back = vec![vec![0usize; m + 1]; n + 1];
    f[0][0] = 0.0;
    for k in 1..=n {
        for j in 0..=m {
            for i in 0..=j {
                if f[k - 1][i] == inf {
                    continue;
                }
                let cut = if i == 0 || i == m || k == 1 {
                    0.0
                } else {
                    boundary(i)
                };
                if k == 1 && i != 0 {
                    continue;
                }
                let empty = if i == j { EMPTY_PIECE_COST } else { 0.0 };
                let c = f[k - 1][i] + cum[k - 1][j] - cum[k - 1][i] + cut + empty;
                if c < f[k][j] {
                    f[k][j] = c;
                    back[k][j] = i;
                }
            }
        }
    }
    let mut idx = vec![0usize; m];
    let mut j = m;
    for k in (1..=n).rev() {
        let i = back[k][j];
        for v in &mut idx[i..j] {
            *v = k - 1;
        }
        j = i;
    }
    idx
}

/// Penalty (in seconds of timing error) for a piece boundary that is not at a sentence end.
const NON_SENTENCE_BOUNDARY_COST: f64 = 3.0;
/// Penalty for a piece that gets no words.
const EMPTY_PIECE_COST: f64 = 3.0;

fn is_punct(c: char) -> bool {
    matches!(c, '.' | ',' | '?' | '!' | ';' | ':' | '"' | '…')
}

/// Joins BPE tokens into words (a leading space starts a word) and splits off punctuation.
pub fn words_from_tokens(tokens: &[RawToken]) -> Vec<Word> {
    struct Acc {
        bytes: Vec<u8>,
        start: f64,
        end: f64,
        probs: Vec<f32>,
        utterance: (f64, f64),
    }
    let mut groups: Vec<Acc> = Vec::new();
    for t in tokens {
        let starts_word = t.bytes.first() == Some(&b' ') || groups.is_empty();
        let text = String::from_utf8_lossy(&t.bytes);
        let pure_punct = !text.trim().is_empty() && text.trim().chars().all(is_punct);
        if starts_word && !pure_punct {
            groups.push(Acc {
                bytes: Vec::new(),
                start: t.start,
                end: t.end,
                probs: Vec::new(),
                utterance: t.utterance,
            });
        }
        let g = match groups.last_mut() {
            Some(g) => g,
            None => {
                groups.push(Acc {
                    bytes: Vec::new(),
                    start: t.start,
                    end: t.end,
                    probs: Vec::new(),
                    utterance: t.utterance,
                });
                groups.last_mut().expect("just pushed")
            }
        };
        g.bytes.extend_from_slice(&t.bytes);
        g.end = g.end.max(t.end);
        g.probs.push(t.prob);
    }
    let mut out = Vec::new();
    for g in groups {
        let text = String::from_utf8_lossy(&g.bytes).trim().to_string();
        // Whisper's non-speech annotations ("[BLANK_AUDIO]", "(coughs)") are not words.
        if text.is_empty()
            || (text.starts_with('[') && text.ends_with(']'))
            || (text.starts_with('(') && text.ends_with(')'))
        {
            continue;
        }
        let conf = g.probs.iter().sum::<f32>() / g.probs.len().max(1) as f32;
        let lead: String = text.chars().take_while(|c| is_punct(*c)).collect();
        let rest = &text[lead.len()..];
        let core = rest.trim_end_matches(is_punct);
        let trail = &rest[core.len()..];
        let mk = |kind, t: &str, start, end, confidence| Word {
            kind,
            text: t.to_string(),
            start,
            end,
            confidence,
            region: 0,
            utterance: g.utterance,
            heard_as: None,
        };
        for c in lead.chars() {
            out.push(mk(
                ItemKind::Punctuation,
                &c.to_string(),
                g.start,
                g.start,
                0.0,
            ));
        }
        if !core.is_empty() {
            out.push(mk(
                ItemKind::Pronunciation,
                core,
                g.start,
                g.end,
                conf.clamp(0.0, 1.0),
            ));
        }
        for c in trail.chars() {
            out.push(mk(ItemKind::Punctuation, &c.to_string(), g.end, g.end, 0.0));
        }
    }
    // Token times from whisper are rough and occasionally non-monotonic: make them ordered.
    let mut last = 0.0f64;
    for w in &mut out {
        w.start = w.start.max(last);
        w.end = w.end.max(w.start);
        last = if w.kind == ItemKind::Pronunciation {
            w.end
        } else {
            w.start
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two 2 s regions with 2 s of silence between them.
    fn two_regions() -> [Region; 2] {
        [
            Region {
                start: 0,
                end: 32_000,
            },
            Region {
                start: 64_000,
                end: 96_000,
            },
        ]
    }

    fn tok(s: &str, a: f64, b: f64) -> RawToken {
        utok(s, a, b, (0.0, 100.0))
    }

    fn utok(s: &str, a: f64, b: f64, utterance: (f64, f64)) -> RawToken {
        RawToken {
            bytes: s.as_bytes().to_vec(),
            start: a,
            end: b,
            prob: 0.8,
            utterance,
        }
    }

    #[test]
    fn joins_subword_tokens_and_splits_punctuation() {
        let w = words_from_tokens(&[
            tok(" Lis", 0.0, 0.2),
            tok("inopril", 0.2, 0.5),
            tok(".", 0.5, 0.5),
            tok(" Yes", 0.6, 0.8),
            tok("?", 0.8, 0.8),
        ]);
        let texts: Vec<_> = w.iter().map(|w| (w.kind, w.text.as_str())).collect();
        assert_eq!(
            texts,
            vec![
                (ItemKind::Pronunciation, "Lisinopril"),
                (ItemKind::Punctuation, "."),
                (ItemKind::Pronunciation, "Yes"),
                (ItemKind::Punctuation, "?")
            ]
        );
        assert_eq!((w[0].start, w[0].end), (0.0, 0.5));
    }

    #[test]
    fn drops_non_speech_annotations_and_keeps_times_monotonic() {
        let w = words_from_tokens(&[
            tok(" [BLANK_AUDIO]", 0.0, 1.0),
            tok(" ok", 2.0, 1.5),
            tok(" fine", 1.0, 1.2),
        ]);
        assert_eq!(w.len(), 2);
        assert!(w[1].start >= w[0].end);
    }

    #[test]
    fn packed_times_map_back_into_their_region() {
        let pcm = vec![0.1f32; 16_000 * 60];
        let regions = [
            Region {
                start: 16_000,
                end: 32_000,
            },
            Region {
                start: 48_000,
                end: 64_000,
            },
        ];
        let wins = pack(&pcm, &regions);
        assert_eq!(wins.len(), 1);
        let w = &wins[0];
        assert_eq!(w.to_source(0.5), (0, 1.5));
        // 0.4 s into the second piece (after 1 s of the first piece and the gap).
        let (p, t) = w.to_source(1.0 + PACK_GAP_SECS + 0.4);
        assert_eq!(p, 1);
        assert!((t - 3.4).abs() < 1e-3);
        // A time inside the gap snaps to the nearer edge.
        assert_eq!(w.to_source(1.05).0, 0);
    }

    #[test]
    fn boundaries_follow_sentence_ends_over_rough_token_times() {
        let pcm = vec![0.1f32; 16_000 * 20];
        let regions = two_regions();
        let w = &pack(&pcm, &regions)[0]; // piece 0: 0–2 s, gap, piece 1: 2.6–4.6 s
                                          // "My" is timed into the gap, nearer piece 0, but the sentence end before it wins.
        let u1 = (0.0, 1.1);
        let u2 = (2.5, 4.0);
        let toks = [
            utok(" Any", 0.1, 0.5, u1),
            utok(" pain", 0.5, 1.0, u1),
            utok("?", 1.0, 1.0, u1),
            utok(" My", 2.1, 2.3, u2),
            utok(" knee", 2.7, 3.0, u2),
            utok(".", 3.0, 3.0, u2),
        ];
        assert_eq!(w.to_source(2.2).0, 0, "premise: time alone says piece 0");
        assert_eq!(
            assign_pieces(w, &words_from_tokens(&toks)),
            vec![0, 0, 0, 1, 1, 1]
        );
        // A late-timed sentence stays with the piece it ends in.
        let u1 = (0.0, 2.2);
        let toks = [
            utok(" That's", 1.5, 1.8, u1),
            utok(" it", 2.0, 2.5, u1),
            utok(".", 2.5, 2.5, u1),
            utok(" Yes", 2.7, 3.0, u2),
        ];
        assert_eq!(
            assign_pieces(w, &words_from_tokens(&toks)),
            vec![0, 0, 0, 1]
        );
    }

    #[test]
    fn one_utterance_spanning_pieces_splits_at_a_sentence_end() {
        let pcm = vec![0.1f32; 16_000 * 20];
        let regions = two_regions();
        let w = &pack(&pcm, &regions)[0];
        let u = (0.0, 4.6);
        let toks = [
            utok(" Any", 0.1, 0.5, u),
            utok(" pain", 0.5, 1.0, u),
            utok("?", 1.0, 1.0, u),
            utok(" My", 2.2, 2.4, u),
            utok(" knee", 2.7, 3.0, u),
            utok(".", 3.0, 3.0, u),
        ];
        assert_eq!(
            assign_pieces(w, &words_from_tokens(&toks)),
            vec![0, 0, 0, 1, 1, 1]
        );
    }

    /// Stands in for whisper to exercise the control flow: on a long window it "stops early"
    /// (only the first second gets words); on a short one it transcribes it.
    struct StopsEarly;
    impl Recognizer for StopsEarly {
        fn transcribe(
            &mut self,
            audio: &[f32],
            _prompt: Option<&str>,
        ) -> Result<Vec<RawToken>, AsrError> {
            let secs = audio.len() as f64 / 16_000.0;
            let u = (0.0, 1.0);
            let mut t = vec![utok(" first", 0.1, 0.5, u), utok(".", 0.5, 0.5, u)];
            if secs < 3.0 {
                t = vec![
                    utok(" alone", 0.2, 0.6, u),
                    utok(" words", 0.6, 1.2, u),
                    utok(".", 1.2, 1.2, u),
                ];
            }
            Ok(t)
        }
    }

    #[test]
    fn an_abandoned_region_is_decoded_again_on_its_own() {
        let pcm = vec![0.1f32; 16_000 * 10];
        let regions = two_regions();
        let words = transcribe_streams(
            &mut StopsEarly,
            &[StreamInput {
                samples: &pcm,
                regions: &regions,
            }],
            None,
            |_, _| {},
        )
        .unwrap();
        let texts: Vec<(&str, usize)> = words[0]
            .iter()
            .map(|w| (w.text.as_str(), w.region))
            .collect();
        assert!(texts.contains(&("alone", 1)), "{texts:?}");
        assert!(words[0]
            .iter()
            .filter(|w| w.region == 1)
            .all(|w| w.start >= 4.0 && w.end <= 6.0));
    }

    /// Abandons its first window after the first piece (one utterance running to the window's
    /// end, its last word timed into the last piece); transcribes every later window fully.
    /// Pieces are 2 s regions 2 s apart, so piece k lies at k * (2 + gap) s in a packed window.
    struct AbandonsOnce {
        calls: usize,
    }
    impl Recognizer for AbandonsOnce {
        fn transcribe(
            &mut self,
            audio: &[f32],
            _prompt: Option<&str>,
        ) -> Result<Vec<RawToken>, AsrError> {
            self.calls += 1;
            let secs = audio.len() as f64 / 16_000.0;
            let step = 2.0 + PACK_GAP_SECS;
            if self.calls == 1 {
                let u = (0.0, secs);
                return Ok(vec![
                    utok(" it", 0.2, 0.6, u),
                    utok(" was", 0.6, 1.0, u),
                    utok(" all", 1.0, 1.4, u),
                    utok(" fine", secs - 0.8, secs - 0.4, u),
                    utok(".", secs - 0.4, secs - 0.4, u),
                ]);
            }
            let mut t = Vec::new();
            let mut k = 0;
            while k as f64 * step < secs - 1.0 {
                let (a, u) = (k as f64 * step, (k as f64 * step, k as f64 * step + 2.0));
                t.push(utok(&format!(" one{k}"), a + 0.2, a + 0.6, u));
                t.push(utok(&format!(" two{k}"), a + 0.6, a + 1.0, u));
                t.push(utok(".", a + 1.0, a + 1.0, u));
                k += 1;
            }
            Ok(t)
        }
    }

    #[test]
    fn an_abandoned_window_is_resumed_in_one_decode_and_keeps_its_last_words() {
        let pcm = vec![0.1f32; 16_000 * 16];
        let regions: Vec<Region> = (0..4)
            .map(|i| Region {
                start: i * 64_000,
                end: i * 64_000 + 32_000,
            })
            .collect();
        let mut rec = AbandonsOnce { calls: 0 };
        let words = transcribe_streams(
            &mut rec,
            &[StreamInput {
                samples: &pcm,
                regions: &regions,
            }],
            None,
            |_, _| {},
        )
        .unwrap();
        // One resumed decode for the three abandoned pieces, not one decode per piece.
        assert_eq!(rec.calls, 2);
        let of = |r: usize| -> Vec<&str> {
            words[0]
                .iter()
                .filter(|w| w.region == r && w.kind == ItemKind::Pronunciation)
                .map(|w| w.text.as_str())
                .collect()
        };
        // "fine" ends the utterance begun in region 0: it stays there, inside the region.
        assert_eq!(of(0), vec!["it", "was", "all", "fine"]);
        assert!(words[0]
            .iter()
            .filter(|w| w.region == 0)
            .all(|w| w.start >= 0.0 && w.end <= 2.0));
        assert_eq!(of(1), vec!["one0", "two0"]);
        assert_eq!(of(3), vec!["one2", "two2"]);
        assert!(words[0]
            .iter()
            .filter(|w| w.region == 3)
            .all(|w| w.start >= 12.0 && w.end <= 14.0));
    }

    /// Without a prompt, a properly timed decode of two 2 s pieces (4 words each; the second
    /// holds a near miss of "lisinopril"). With a prompt, either the same words with the term
    /// spelled right, or (`collapse`) the window as one untimed utterance whose times collapse at
    /// the window's end (what whisper sometimes does with a prompt).
    struct Prompted {
        collapse: bool,
        /// (prompted?, audio seconds) of each call.
        calls: Vec<(bool, f64)>,
    }

    impl Recognizer for Prompted {
        fn transcribe(
            &mut self,
            audio: &[f32],
            prompt: Option<&str>,
        ) -> Result<Vec<RawToken>, AsrError> {
            let end = audio.len() as f64 / SAMPLE_RATE as f64;
            self.calls.push((prompt.is_some(), end));
            let plain = [
                " we", " talked", " a", " bit.", " listen", " up", " roll", " daily.",
            ];
            if prompt.is_none() {
                // Pieces at 0–2 s and 2.6–4.6 s of the window.
                return Ok(plain
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let a = if i < 4 {
                            0.4 * i as f64
                        } else {
                            2.6 + 0.4 * (i - 4) as f64
                        };
                        tok(t, a, a + 0.3)
                    })
                    .collect());
            }
            // Only the second piece comes back (it alone had a near miss), at 0–2 s; with
            // `collapse`, all at the window's end, with words whisper invented.
            let heard = [" listen", " opril", " daily."];
            Ok(heard
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if self.collapse {
                        utok(t, end, end, (0.0, 30.0))
                    } else {
                        tok(t, 0.5 * i as f64, 0.5 * i as f64 + 0.4)
                    }
                })
                .chain(
                    (0..if self.collapse { 4 } else { 0 })
                        .map(|_| utok(" and", end, end, (0.0, 30.0))),
                )
                .collect())
        }
    }

    fn with_vocabulary(collapse: bool) -> (Vec<(bool, f64)>, Vec<String>) {
        let pcm = vec![0.1f32; 16_000 * 8];
        let regions = two_regions();
        let mut rec = Prompted {
            collapse,
            calls: vec![],
        };
        let v = Vocabulary::parse("lisinopril\nMotrin\n").unwrap().unwrap();
        let words = transcribe_streams(
            &mut rec,
            &[StreamInput {
                samples: &pcm,
                regions: &regions,
            }],
            Some(&v),
            |_, _| {},
        )
        .unwrap();
        let text = words[0]
            .iter()
            .filter(|w| w.kind == ItemKind::Pronunciation)
            .map(|w| w.text.clone())
            .collect();
        (rec.calls, text)
    }

    #[test]
    fn only_pieces_with_a_near_miss_are_decoded_again_with_the_prompt() {
        let (calls, text) = with_vocabulary(false);
        assert_eq!(calls.len(), 2);
        assert!(!calls[0].0 && calls[1].0);
        // The prompted window holds the second piece alone (2 s), not both (4.6 s).
        assert!(calls[1].1 < 2.5, "{calls:?}");
        assert_eq!(
            text,
            ["we", "talked", "a", "bit", "lisinopril", "daily"].map(String::from)
        );
    }

    #[test]
    fn a_prompted_decode_whose_times_collapsed_still_places_the_term() {
        // The two decodes are matched by their words, not by whisper's (broken) times.
        let (calls, text) = with_vocabulary(true);
        assert_eq!(calls.len(), 2);
        assert_eq!(
            text,
            ["we", "talked", "a", "bit", "lisinopril", "daily"].map(String::from)
        );
    }

    /// Two 2 s pieces, each with a near miss of "metformin". A prompted decode of both
    /// together hears only the first (as whisper sometimes skips a prompted window's turns).
    struct SkipsWithPrompt {
        calls: Vec<(bool, f64)>,
    }

    impl Recognizer for SkipsWithPrompt {
        fn transcribe(
            &mut self,
            audio: &[f32],
            prompt: Option<&str>,
        ) -> Result<Vec<RawToken>, AsrError> {
            let secs = audio.len() as f64 / SAMPLE_RATE as f64;
            self.calls.push((prompt.is_some(), secs));
            let piece = |words: &[&str], at: f64| -> Vec<RawToken> {
                words
                    .iter()
                    .enumerate()
                    .map(|(i, t)| tok(t, at + 0.4 * i as f64, at + 0.4 * i as f64 + 0.3))
                    .collect()
            };
            Ok(match (prompt.is_some(), secs > 3.0) {
                (false, _) => [
                    piece(&[" start", " met", " for", " men."], 0.0),
                    piece(&[" keep", " met", " for", " men."], 2.6),
                ]
                .concat(),
                // Both pieces: only the first is heard.
                (true, true) => piece(&[" start", " metformin."], 0.0),
                (true, false) => piece(&[" keep", " metformin."], 0.0),
            })
        }
    }

    #[test]
    fn pieces_a_prompted_decode_skipped_are_decoded_again() {
        let pcm = vec![0.1f32; 16_000 * 8];
        let regions = two_regions();
        let mut rec = SkipsWithPrompt { calls: vec![] };
        let v = Vocabulary::parse("metformin").unwrap().unwrap();
        let words = transcribe_streams(
            &mut rec,
            &[StreamInput {
                samples: &pcm,
                regions: &regions,
            }],
            Some(&v),
            |_, _| {},
        )
        .unwrap();
        let prompted: Vec<bool> = rec.calls.iter().map(|c| c.0).collect();
        assert_eq!(prompted, vec![false, true, true]);
        assert!(
            rec.calls[2].1 < 2.5,
            "the skipped piece alone: {:?}",
            rec.calls
        );
        let text: Vec<&str> = words[0]
            .iter()
            .filter(|w| w.kind == ItemKind::Pronunciation)
            .map(|w| w.text.as_str())
            .collect();
        assert_eq!(text, ["start", "metformin", "keep", "metformin"]);
    }

    #[test]
    fn windows_never_exceed_the_limit() {
        let pcm = vec![0.1f32; 16_000 * 200];
        let regions: Vec<Region> = (0..20)
            .map(|i| Region {
                start: i * 160_000,
                end: i * 160_000 + 150_000,
            })
            .collect();
        for w in pack(&pcm, &regions) {
            assert!(w.audio.len() as f64 / 16_000.0 <= MAX_WINDOW_SECS);
        }
    }
}
