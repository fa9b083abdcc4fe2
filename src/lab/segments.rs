//! Segment timing check against reference turn timings of a rendered dialogue: each segment must
//! begin and end inside one reference turn of the same speaker (within a tolerance). A looser
//! figure counts segments inside one *stretch* of a speaker's speech: consecutive turns of the
//! same speaker with nobody else talking between them (a segment may join two such turns across
//! a short pause; it must never reach into the other speaker's speech).

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
    pub inside_one_stretch: usize,
    pub right_speaker: usize,
    pub worst_overhang_secs: f64,
}

impl fmt::Display for SegmentReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "segments {}\tinside one same-speaker turn {} ({:.1}%)\tinside one stretch of the speaker's speech {} ({:.1}%)\tspeaker matches overlapping turn {} ({:.1}%)\tworst overhang beyond own speaker's turns {:.2} s",
            self.segments,
            self.inside_one_turn,
            100.0 * self.inside_one_turn as f64 / self.segments.max(1) as f64,
            self.inside_one_stretch,
            100.0 * self.inside_one_stretch as f64 / self.segments.max(1) as f64,
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

/// Merges consecutive same-speaker turns (in time order) when no other speaker's turn overlaps
/// the pause between them.
pub fn speaker_stretches(turns: &[Turn]) -> Vec<Turn> {
    let mut sorted: Vec<&Turn> = turns.iter().collect();
    sorted.sort_by(|a, b| a.begin.total_cmp(&b.begin));
    let mut out: Vec<Turn> = Vec::new();
    for u in sorted {
        if let Some(last) = out.last_mut() {
            let (gap_b, gap_e) = (last.end.min(u.begin), last.end.max(u.begin));
            let other_in_gap = turns
                .iter()
                .any(|o| o.clinician != u.clinician && o.begin < gap_e && o.end > gap_b);
            if last.clinician == u.clinician && !other_in_gap {
                last.end = last.end.max(u.end);
                continue;
            }
        }
        out.push(Turn {
            clinician: u.clinician,
            begin: u.begin,
            end: u.end,
        });
    }
    out
}

/// Whether the segment `[b, e]` lies inside a turn of the given speaker, within `tol` seconds.
fn inside_any(turns: &[Turn], clinician: bool, b: f64, e: f64, tol: f64) -> bool {
    turns
        .iter()
        .any(|u| u.clinician == clinician && b >= u.begin - tol && e <= u.end + tol)
}

pub fn check(ref_tsv: &str, t: &TranscriptFile, tol: f64) -> Result<SegmentReport, String> {
    let turns = parse_turns(ref_tsv)?;
    let stretches = speaker_stretches(&turns);
    let segs = &t.conversation.transcript_segments;
    let mut r = SegmentReport {
        segments: segs.len(),
        inside_one_turn: 0,
        inside_one_stretch: 0,
        right_speaker: 0,
        worst_overhang_secs: 0.0,
    };
    for s in segs {
        let clin =
            s.participant_details.participant_role.role == MedicalScribeParticipantRole::Clinician;
        let (b, e) = (s.begin_audio_time, s.end_audio_time);
        if inside_any(&stretches, clin, b, e, tol) {
            r.inside_one_stretch += 1;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(clinician: bool, begin: f64, end: f64) -> Turn {
        Turn {
            clinician,
            begin,
            end,
        }
    }

    #[test]
    fn stretches_join_a_speakers_turns_only_when_nobody_talks_between() {
        let turns = [
            turn(true, 0.0, 2.0),
            turn(true, 2.4, 4.0),  // same speaker after a pause: joins
            turn(false, 4.5, 5.0), // the patient answers
            turn(true, 5.3, 6.0),  // a new stretch
            turn(false, 5.9, 7.0), // overlaps the clinician's stretch end
            turn(false, 7.2, 8.0), // joins the patient's turn before it
        ];
        let s = speaker_stretches(&turns);
        let spans: Vec<(bool, f64, f64)> =
            s.iter().map(|u| (u.clinician, u.begin, u.end)).collect();
        assert_eq!(
            spans,
            vec![
                (true, 0.0, 4.0),
                (false, 4.5, 5.0),
                (true, 5.3, 6.0),
                (false, 5.9, 8.0)
            ]
        );
        assert!(inside_any(&s, true, 0.1, 3.9, 0.0));
        assert!(
            !inside_any(&s, true, 0.1, 5.5, 0.25),
            "reaches into the patient's answer"
        );
        assert!(
            !inside_any(&turns, true, 0.1, 3.9, 0.25),
            "two turns, not one"
        );
    }
}
