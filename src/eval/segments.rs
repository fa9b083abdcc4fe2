//! Segment timing check against reference turn timings of a rendered dialogue: each segment must
//! begin and end inside one reference turn of the same speaker (within a tolerance).

use crate::healthscribe::{MedicalScribeParticipantRole, TranscriptFile};
use std::fmt;

pub struct Turn {
    pub clinician: bool,
    pub begin: f64,
    pub end: f64,
}

pub struct SegmentReport {
    pub segments: usize,
    pub inside_one_turn: usize,
    pub right_speaker: usize,
    pub worst_overhang_secs: f64,
}

impl fmt::Display for SegmentReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "segments {}\tinside one same-speaker turn {} ({:.1}%)\tspeaker matches overlapping turn {} ({:.1}%)\tworst overhang beyond own speaker's turns {:.2} s",
            self.segments,
            self.inside_one_turn,
            100.0 * self.inside_one_turn as f64 / self.segments.max(1) as f64,
            self.right_speaker,
            100.0 * self.right_speaker as f64 / self.segments.max(1) as f64,
            self.worst_overhang_secs
        )
    }
}

/// Parses `turn\tspeaker\tchannel\tbegin_s\tend_s\ttext` rows (`#` comments and a header allowed).
pub fn parse_turns(tsv: &str) -> Result<Vec<Turn>, String> {
    let mut out = Vec::new();
    for (i, line) in tsv.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() || line.starts_with("turn\t") {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let bad = || {
            format!(
                "line {}: expected turn, speaker, channel, begin_s, end_s, text",
                i + 1
            )
        };
        if f.len() < 5 {
            return Err(bad());
        }
        out.push(Turn {
            clinician: f[1].eq_ignore_ascii_case("clinician"),
            begin: f[3].parse().map_err(|_| bad())?,
            end: f[4].parse().map_err(|_| bad())?,
        });
    }
    Ok(out)
}

pub fn check(ref_tsv: &str, t: &TranscriptFile, tol: f64) -> Result<SegmentReport, String> {
    let turns = parse_turns(ref_tsv)?;
    let segs = &t.conversation.transcript_segments;
    let mut r = SegmentReport {
        segments: segs.len(),
        inside_one_turn: 0,
        right_speaker: 0,
        worst_overhang_secs: 0.0,
    };
    for s in segs {
        let clin =
            s.participant_details.participant_role.role == MedicalScribeParticipantRole::Clinician;
        let (b, e) = (s.begin_audio_time, s.end_audio_time);
        let overlap = |u: &Turn| (e.min(u.end) - b.max(u.begin)).max(0.0);
        // Distance outside a turn: 0 when the segment lies inside it.
        let overhang = |u: &Turn| (u.begin - b).max(0.0) + (e - u.end).max(0.0);
        // The speaker check uses the turn overlapping the segment most (nearest, in a gap).
        let score = |u: &Turn| {
            if overlap(u) > 0.0 {
                overlap(u)
            } else {
                -overhang(u)
            }
        };
        if let Some(best) = turns.iter().max_by(|x, y| score(x).total_cmp(&score(y))) {
            if best.clinician == clin {
                r.right_speaker += 1;
            }
        }
        // The timing check: the closest same-speaker turn must contain the segment.
        if let Some(own) = turns
            .iter()
            .filter(|u| u.clinician == clin)
            .min_by(|x, y| overhang(x).total_cmp(&overhang(y)))
        {
            r.worst_overhang_secs = r.worst_overhang_secs.max(overhang(own));
            if overhang(own) <= 0.0 || (b >= own.begin - tol && e <= own.end + tol) {
                r.inside_one_turn += 1;
            }
        }
    }
    Ok(r)
}
