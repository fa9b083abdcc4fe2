//! Note generation time for a 15-minute encounter: the hand-labelled sample encounter (27 turns,
//! 2.4 min of speech) repeated 6 times with fresh segment ids = 162 turns, about 15 minutes.
//! Ignored by default; run in release:
//! `cargo test --release --test note_bench -- --ignored --nocapture`.

mod note_common;

use std::time::Instant;

use fhirscribe::healthscribe::{NoteTemplate, Pronouns};
use fhirscribe::note::{generate, NoteContext, Templates};

#[test]
#[ignore = "benchmark; run with --release"]
fn fifteen_minute_encounter_under_20_ms() {
    let one = note_common::encounter();
    let mut conv = one.clone();
    conv.transcript_segments.clear();
    conv.clinical_insights.clear();
    for rep in 0..6 {
        for s in &one.transcript_segments {
            let mut s = s.clone();
            s.segment_id = format!("r{rep}-{}", s.segment_id);
            conv.transcript_segments.push(s);
        }
        for i in &one.clinical_insights {
            let mut i = i.clone();
            i.insight_id = format!("r{rep}-{}", i.insight_id);
            for sp in &mut i.spans {
                sp.segment_id = format!("r{rep}-{}", sp.segment_id);
            }
            conv.clinical_insights.push(i);
        }
    }
    let words: usize = conv
        .transcript_segments
        .iter()
        .map(|s| s.content.split_whitespace().count())
        .sum();
    let templates = Templates::builtin().unwrap();
    let ctx = NoteContext {
        pronouns: Some(Pronouns::SheHer),
    };
    for t in [NoteTemplate::HistoryAndPhysical, NoteTemplate::Dap] {
        let template = templates.get(t);
        let _ = generate(&conv, template, &ctx); // warm-up
        let mut times: Vec<f64> = (0..200)
            .map(|_| {
                let t0 = Instant::now();
                let doc = generate(&conv, template, &ctx);
                let dt = t0.elapsed().as_secs_f64() * 1e3;
                assert!(!doc.sections.is_empty());
                dt
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let (median, p95, max) = (times[100], times[190], times[199]);
        println!(
            "{}: {} segments, {} words, {} insights: median {median:.2} ms, p95 {p95:.2} ms, max {max:.2} ms (200 runs)",
            template.name,
            conv.transcript_segments.len(),
            words,
            conv.clinical_insights.len()
        );
        if !cfg!(debug_assertions) {
            assert!(p95 < 20.0, "p95 {p95:.2} ms");
        }
    }
}
