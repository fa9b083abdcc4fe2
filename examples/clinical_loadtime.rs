//! Breakdown of the clinical stage's start-up cost (release build, one core).
//!
//! cargo run --release --example clinical_loadtime

use std::time::Instant;

use fhirscribe::clinical::{committed_sources, lexicon::Lexicons, sections::SectionModel};

fn main() {
    let t = Instant::now();
    let m = SectionModel::from_tsv(include_str!("../models/clinical/sections.tsv")).expect("model");
    println!(
        "section model parse: {:.1} ms ({} features)",
        t.elapsed().as_secs_f64() * 1e3,
        m.weights.len()
    );
    let t = Instant::now();
    let l = Lexicons::from_sources(&committed_sources());
    println!(
        "lexicons (incl. Aho-Corasick over {} keys, fuzzy index {} entries): {:.1} ms",
        l.entries.len(),
        l.fuzzy.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
}
