//! Speed of the clinical stage on one core: start-up (model + lexicon load) and
//! sections + entities + traits + codes for a ~15-minute encounter (~2,500 words), built by
//! repeating the team-written conversational set.
//!
//! cargo run --release --example clinical_bench

use std::time::{Duration, Instant};

use fhirscribe::clinical::{Analyzer, Turn};
use fhirscribe::lab::clinical as eval;

fn main() {
    let t0 = Instant::now();
    let a = Analyzer::load();
    let cold = t0.elapsed();
    let convs = eval::parse_conversational(eval::CONVERSATIONAL_SET).expect("fixture parses");
    let mut turns: Vec<Turn> = Vec::new();
    let mut words = 0usize;
    'outer: loop {
        for c in &convs {
            for t in &c.turns {
                words += t.text.split_whitespace().count();
                let mut t = t.clone();
                t.segment_id = turns.len().to_string();
                turns.push(t);
                if words >= 2_500 {
                    break 'outer;
                }
            }
        }
    }
    let mut times: Vec<Duration> = Vec::new();
    let mut n_entities = 0;
    for _ in 0..30 {
        let t = Instant::now();
        let out = a.analyze(&turns);
        times.push(t.elapsed());
        n_entities = out.iter().map(|s| s.entities.len()).sum();
    }
    times.sort();
    let t1 = Instant::now();
    let _again = Analyzer::load();
    let warm = t1.elapsed();
    println!(
        "transcript: {} turns, {} words, {} entities",
        turns.len(),
        words,
        n_entities
    );
    println!(
        "analyze (sections + entities + traits + codes): min {:.2} ms, median {:.2} ms, max {:.2} ms over {} runs",
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
    println!(
        "start-up load: first {:.1} ms (incl. section model parse), lexicons again {:.1} ms",
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3
    );
}
