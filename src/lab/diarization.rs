//! Diarization figures of a transcript against a rendered dialogue's reference turns: diarization
//! error rate (DER) and role accuracy.
//!
//! Reference (TSV; `#` lines are comments): a header row naming the columns `speaker`, `role`
//! (optional), `begin_s`, `end_s`, `text`, then one row per turn. `speaker` is any id
//! (doctor, patient, guest…); `role` is CLINICIAN or PATIENT (without the column, `speaker` is
//! the role, as in `samples/*.ref.tsv`). Turns may overlap.
//!
//! **DER** (on 10 ms frames, a 0.25 s collar around every reference turn boundary not scored):
//! (missed speech + false alarm + speaker confusion) / reference speech, with the one-to-one
//! mapping of hypothesis speakers (segment `ParticipantRole` labels) to reference speakers that
//! maximises their overlap. The hypothesis speech is the transcript's segments, so ASR timing and
//! words whisper did not hear count too: this is the DER of what the product writes.
//!
//! **Role accuracy**: reference words (in turn order) aligned to the transcript's words (in
//! segment order) by edit distance; of the aligned pairs (same or substituted word), the share
//! whose segment role (CLINICIAN/PATIENT, index ignored) is the reference turn's role. Reference
//! words with no counterpart (deleted by the ASR) are reported as coverage, not counted.

use crate::healthscribe::{MedicalScribeParticipantRole, TranscriptFile};
use std::collections::BTreeMap;
use std::fmt;

const FRAME: f64 = 0.01;
pub const COLLAR: f64 = 0.25;

#[derive(Clone, Debug, PartialEq)]
pub struct RefTurn {
    pub speaker: String,
    pub clinician: bool,
    pub begin: f64,
    pub end: f64,
    pub text: String,
}

pub fn parse_reference(tsv: &str) -> Result<Vec<RefTurn>, String> {
    let mut lines = tsv
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let header: Vec<&str> = lines.next().ok_or("empty reference")?.split('\t').collect();
    let col = |n: &str| header.iter().position(|h| h.trim() == n);
    let (sp, b, e, t) = match (col("speaker"), col("begin_s"), col("end_s"), col("text")) {
        (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
        _ => return Err("header needs speaker, begin_s, end_s and text columns".into()),
    };
    let role = col("role");
    let mut out = Vec::new();
    for (i, l) in lines.enumerate() {
        let f: Vec<&str> = l.split('\t').collect();
        let get = |k: usize| {
            f.get(k)
                .copied()
                .ok_or(format!("row {}: missing column", i + 1))
        };
        let r = role.map_or(get(sp), get)?.trim().to_ascii_uppercase();
        let num = |k: usize| -> Result<f64, String> {
            get(k)?
                .trim()
                .parse()
                .map_err(|_| format!("row {}: bad time", i + 1))
        };
        out.push(RefTurn {
            speaker: get(sp)?.trim().to_string(),
            clinician: match r.as_str() {
                "CLINICIAN" => true,
                "PATIENT" => false,
                other => return Err(format!("row {}: role {other:?}", i + 1)),
            },
            begin: num(b)?,
            end: num(e)?,
            text: get(t)?.to_string(),
        });
    }
    Ok(out)
}

/// A hypothesis turn: a transcript segment.
#[derive(Clone, Debug)]
pub struct HypTurn {
    pub label: String,
    pub clinician: bool,
    pub begin: f64,
    pub end: f64,
    pub text: String,
}

pub fn hypothesis(t: &TranscriptFile) -> Vec<HypTurn> {
    t.conversation
        .transcript_segments
        .iter()
        .map(|s| {
            let r = s.participant_details.participant_role;
            HypTurn {
                label: r.to_string(),
                clinician: r.role == MedicalScribeParticipantRole::Clinician,
                begin: s.begin_audio_time,
                end: s.end_audio_time,
                text: s.content.clone(),
            }
        })
        .collect()
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Report {
    pub scored_secs: f64,
    pub missed_secs: f64,
    pub false_alarm_secs: f64,
    pub confusion_secs: f64,
    pub ref_speakers: usize,
    pub hyp_speakers: usize,
    pub ref_words: usize,
    pub aligned_words: usize,
    pub right_role_words: usize,
    /// Word edit distance (substitutions + deletions + insertions) between the reference and
    /// the transcript, roles ignored: how much the speaker regions cost the ASR.
    pub word_errors: usize,
}

impl Report {
    pub fn der(&self) -> f64 {
        (self.missed_secs + self.false_alarm_secs + self.confusion_secs)
            / self.scored_secs.max(1e-9)
    }
    pub fn role_accuracy(&self) -> f64 {
        self.right_role_words as f64 / self.aligned_words.max(1) as f64
    }
    pub fn wer(&self) -> f64 {
        self.word_errors as f64 / self.ref_words.max(1) as f64
    }
    pub fn add(&mut self, o: &Report) {
        self.scored_secs += o.scored_secs;
        self.missed_secs += o.missed_secs;
        self.false_alarm_secs += o.false_alarm_secs;
        self.confusion_secs += o.confusion_secs;
        self.ref_speakers += o.ref_speakers;
        self.hyp_speakers += o.hyp_speakers;
        self.ref_words += o.ref_words;
        self.aligned_words += o.aligned_words;
        self.right_role_words += o.right_role_words;
        self.word_errors += o.word_errors;
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DER {:.1}% (missed {:.1}%, false alarm {:.1}%, confusion {:.1}%; {:.0} s scored)\tspeakers ref {} hyp {}\trole accuracy {:.1}% of {} aligned words (coverage {:.1}% of {})\tWER {:.1}%",
            100.0 * self.der(),
            100.0 * self.missed_secs / self.scored_secs.max(1e-9),
            100.0 * self.false_alarm_secs / self.scored_secs.max(1e-9),
            100.0 * self.confusion_secs / self.scored_secs.max(1e-9),
            self.scored_secs,
            self.ref_speakers,
            self.hyp_speakers,
            100.0 * self.role_accuracy(),
            self.aligned_words,
            100.0 * self.aligned_words as f64 / self.ref_words.max(1) as f64,
            self.ref_words,
            100.0 * self.wer()
        )
    }
}

fn frames(t: f64) -> usize {
    (t / FRAME).round().max(0.0) as usize
}

/// Best one-to-one mapping total of an overlap matrix (rows ref, columns hyp).
fn best_mapping(m: &[Vec<f64>]) -> f64 {
    fn go(m: &[Vec<f64>], r: usize, used: &mut Vec<bool>) -> f64 {
        if r == m.len() {
            return 0.0;
        }
        let mut best = go(m, r + 1, used); // this ref speaker unmapped
        for c in 0..used.len() {
            if !used[c] {
                used[c] = true;
                best = best.max(m[r][c] + go(m, r + 1, used));
                used[c] = false;
            }
        }
        best
    }
    let cols = m.first().map_or(0, Vec::len);
    go(m, 0, &mut vec![false; cols])
}

pub fn der(reference: &[RefTurn], hyp: &[HypTurn]) -> Report {
    let end = reference
        .iter()
        .map(|t| t.end)
        .chain(hyp.iter().map(|t| t.end))
        .fold(0.0, f64::max);
    let n = frames(end) + 1;
    let mut scored = vec![true; n];
    let c = frames(COLLAR);
    for t in reference {
        for b in [frames(t.begin), frames(t.end)] {
            for s in scored
                .iter_mut()
                .take((b + c).min(n))
                .skip(b.saturating_sub(c))
            {
                *s = false;
            }
        }
    }
    let index = |names: Vec<&str>| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for x in names {
            let k = m.len();
            m.entry(x.to_string()).or_insert(k);
        }
        m
    };
    let rs = index(reference.iter().map(|t| t.speaker.as_str()).collect());
    let hs = index(hyp.iter().map(|t| t.label.as_str()).collect());
    let mut rf = vec![0u32; n]; // bitmask of ref speakers
    let mut hf = vec![0u32; n];
    for t in reference {
        for x in rf
            .iter_mut()
            .take(frames(t.end).min(n))
            .skip(frames(t.begin))
        {
            *x |= 1 << rs[&t.speaker];
        }
    }
    for t in hyp {
        for x in hf
            .iter_mut()
            .take(frames(t.end).min(n))
            .skip(frames(t.begin))
        {
            *x |= 1 << hs[&t.label];
        }
    }
    let mut overlap = vec![vec![0f64; hs.len()]; rs.len()];
    let mut rep = Report {
        ref_speakers: rs.len(),
        hyp_speakers: hs.len(),
        ..Report::default()
    };
    let mut matched_min = 0f64;
    for g in 0..n {
        if !scored[g] {
            continue;
        }
        let (nr, nh) = (rf[g].count_ones() as f64, hf[g].count_ones() as f64);
        rep.scored_secs += nr * FRAME;
        rep.missed_secs += (nr - nh).max(0.0) * FRAME;
        rep.false_alarm_secs += (nh - nr).max(0.0) * FRAME;
        matched_min += nr.min(nh) * FRAME;
        for (r, row) in overlap.iter_mut().enumerate() {
            if rf[g] >> r & 1 == 1 {
                for (h, cell) in row.iter_mut().enumerate() {
                    if hf[g] >> h & 1 == 1 {
                        *cell += FRAME;
                    }
                }
            }
        }
    }
    rep.confusion_secs = (matched_min - best_mapping(&overlap)).max(0.0);
    rep
}

fn norm_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Fills the word figures of `rep`.
pub fn role_accuracy(reference: &[RefTurn], hyp: &[HypTurn], rep: &mut Report) {
    let mut rt: Vec<&RefTurn> = reference.iter().collect();
    rt.sort_by(|a, b| a.begin.total_cmp(&b.begin));
    let r: Vec<(String, bool)> = rt
        .iter()
        .flat_map(|t| norm_words(&t.text).into_iter().map(|w| (w, t.clinician)))
        .collect();
    let mut ht: Vec<&HypTurn> = hyp.iter().collect();
    ht.sort_by(|a, b| a.begin.total_cmp(&b.begin));
    let h: Vec<(String, bool)> = ht
        .iter()
        .flat_map(|t| norm_words(&t.text).into_iter().map(|w| (w, t.clinician)))
        .collect();
    let (n, m) = (r.len(), h.len());
    // Edit distance with a backtrace (u16 costs are plenty for encounters).
    let mut d = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in 0..=n {
        d[at(i, 0)] = i as u32;
    }
    for j in 0..=m {
        d[at(0, j)] = j as u32;
    }
    for i in 1..=n {
        for j in 1..=m {
            let sub = d[at(i - 1, j - 1)] + u32::from(r[i - 1].0 != h[j - 1].0);
            d[at(i, j)] = sub.min(d[at(i - 1, j)] + 1).min(d[at(i, j - 1)] + 1);
        }
    }
    let (mut i, mut j) = (n, m);
    rep.ref_words += n;
    rep.word_errors += d[at(n, m)] as usize;
    while i > 0 && j > 0 {
        let sub = d[at(i - 1, j - 1)] + u32::from(r[i - 1].0 != h[j - 1].0);
        if d[at(i, j)] == sub {
            rep.aligned_words += 1;
            rep.right_role_words += usize::from(r[i - 1].1 == h[j - 1].1);
            i -= 1;
            j -= 1;
        } else if d[at(i, j)] == d[at(i - 1, j)] + 1 {
            i -= 1;
        } else {
            j -= 1;
        }
    }
}

/// Both figures for one transcript.
pub fn evaluate(reference: &[RefTurn], t: &TranscriptFile) -> Report {
    let hyp = hypothesis(t);
    let mut rep = der(reference, &hyp);
    role_accuracy(reference, &hyp, &mut rep);
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, c: bool, b: f64, e: f64, t: &str) -> RefTurn {
        RefTurn {
            speaker: s.into(),
            clinician: c,
            begin: b,
            end: e,
            text: t.into(),
        }
    }
    fn h(l: &str, b: f64, e: f64, t: &str) -> HypTurn {
        HypTurn {
            label: l.into(),
            clinician: l.starts_with("CLINICIAN"),
            begin: b,
            end: e,
            text: t.into(),
        }
    }

    #[test]
    fn perfect_is_zero_and_swapped_labels_are_not_confusion() {
        let re = vec![
            r("doc", true, 0.0, 5.0, "how are you"),
            r("pat", false, 6.0, 10.0, "fine thanks"),
        ];
        let hy = vec![
            h("PATIENT_0", 0.0, 5.0, "how are you"),
            h("CLINICIAN_0", 6.0, 10.0, "fine thanks"),
        ];
        let mut rep = der(&re, &hy);
        assert!(rep.der() < 1e-9, "{rep}");
        // The roles are wrong although the speakers are right: role accuracy 0.
        role_accuracy(&re, &hy, &mut rep);
        assert_eq!((rep.aligned_words, rep.right_role_words), (5, 0));
        assert_eq!(rep.word_errors, 0);
        // One word misheard and one lost: 2 errors in 5 words.
        let hy = vec![
            h("CLINICIAN_0", 0.0, 5.0, "how were you"),
            h("PATIENT_0", 6.0, 10.0, "fine"),
        ];
        let mut rep = der(&re, &hy);
        role_accuracy(&re, &hy, &mut rep);
        assert_eq!(rep.word_errors, 2);
        assert!((rep.wer() - 0.4).abs() < 1e-9);
    }

    #[test]
    fn missed_false_alarm_and_confusion_by_hand() {
        // Collar 0.25 s: boundaries at 0, 10, 10, 20 → scored 0.25–9.75 and 10.25–19.75 (19 s).
        let re = vec![r("a", true, 0.0, 10.0, "x"), r("b", false, 10.0, 20.0, "y")];
        // Hyp: a right on 0–8 (2 s of a missed: 8–9.75 = 1.75 s), b labelled as a's speaker on
        // 10–15 (confusion 4.75 s: 10.25–15), b right on 15–20; false alarm 20–21 (1 s, no
        // collar beyond 20.25: 0.75 s).
        let hy = vec![
            h("CLINICIAN_0", 0.0, 8.0, "x"),
            h("CLINICIAN_0", 10.0, 15.0, "y"),
            h("PATIENT_0", 15.0, 21.0, "y"),
        ];
        let rep = der(&re, &hy);
        assert!((rep.scored_secs - 19.0).abs() < 0.02, "{rep:?}");
        assert!((rep.missed_secs - 1.75).abs() < 0.02, "{rep:?}");
        assert!((rep.false_alarm_secs - 0.75).abs() < 0.02, "{rep:?}");
        assert!((rep.confusion_secs - 4.75).abs() < 0.02, "{rep:?}");
    }

    #[test]
    fn overlap_counts_two_speakers_and_reference_parses_both_formats() {
        let re = vec![r("a", true, 0.0, 4.0, "x"), r("b", false, 2.0, 6.0, "y")];
        // One hyp speaker over all: the overlap 2.25–3.75 misses one speaker (1.5 s); b's solo
        // part 4.25–5.75 is confusion (1.5 s).
        let rep = der(&re, &[h("CLINICIAN_0", 0.0, 6.0, "x y")]);
        assert!((rep.missed_secs - 1.5).abs() < 0.02, "{rep:?}");
        assert!((rep.confusion_secs - 1.5).abs() < 0.02, "{rep:?}");
        let a = parse_reference(
            "# c\nspeaker\trole\tbegin_s\tend_s\ttext\nnurse\tCLINICIAN\t1.0\t2.0\thi there\n",
        )
        .unwrap();
        assert_eq!(a[0].speaker, "nurse");
        assert!(a[0].clinician);
        let b = parse_reference(
            "turn\tspeaker\tchannel\tbegin_s\tend_s\ttext\n1\tPATIENT\t1\t0.5\t1.0\tno\n",
        )
        .unwrap();
        assert!(!b[0].clinician);
        assert!(parse_reference("speaker\tbegin_s\n").is_err());
    }
}
