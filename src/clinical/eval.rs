//! Evaluation commands' logic (`fhirscribe eval sections|entities|conversational`). Each function
//! returns a report whose `Display` is what the CLI prints.

use std::fmt;
use std::path::Path;

use super::data::{read_mts, MtsRecord};
use super::metrics::Confusion;
use super::sections::{group_section, header_group, turn_features, SectionModel};
use super::types::Role;

/// Section metrics on an MTS-Dialog file.
#[derive(Debug, Clone)]
pub struct SectionEval {
    pub data: String,
    pub snippets: usize,
    pub turns: usize,
    /// Snippet level, 20 headers (argmax of summed header log-probabilities over its turns).
    pub header: Confusion,
    /// Snippet level, SOAP groups (argmax of summed group log-probabilities over its turns).
    pub group: Confusion,
    /// Turn level, SOAP groups after neighbour smoothing (each turn's gold = its snippet's group).
    pub turn_group: Confusion,
}

impl fmt::Display for SectionEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sections on {} ({} snippets, {} turns)", self.data, self.snippets, self.turns)?;
        writeln!(
            f,
            "SOAP group, snippet level: accuracy {:.3}  macro-F1 {:.3}",
            self.group.accuracy(),
            self.group.macro_f1()
        )?;
        writeln!(
            f,
            "20 headers, snippet level: accuracy {:.3}  macro-F1 {:.3}",
            self.header.accuracy(),
            self.header.macro_f1()
        )?;
        writeln!(
            f,
            "SOAP group, turn level:    accuracy {:.3}  macro-F1 {:.3}",
            self.turn_group.accuracy(),
            self.turn_group.macro_f1()
        )?;
        writeln!(f, "\n-- SOAP group, snippet level --\n{}", self.group.summary())?;
        writeln!(f, "-- SOAP group, turn level --\n{}", self.turn_group.summary())?;
        writeln!(f, "-- 20 headers, snippet level (per class) --")?;
        for l in self.header.labels() {
            let (p, r, f1, n) = self.header.prf(&l);
            writeln!(f, "{l:<16} P {p:.3} R {r:.3} F1 {f1:.3} n {n}")?;
        }
        Ok(())
    }
}

/// Evaluates a section model on MTS-Dialog records.
pub fn eval_sections_records(model: &SectionModel, recs: &[MtsRecord], data: &str) -> SectionEval {
    let mut ev = SectionEval {
        data: data.to_string(),
        snippets: recs.len(),
        turns: 0,
        header: Confusion::default(),
        group: Confusion::default(),
        turn_group: Confusion::default(),
    };
    for r in recs {
        let turns: Vec<(Role, &str)> = r.turns.iter().map(|(a, b)| (*a, b.as_str())).collect();
        if turns.is_empty() {
            continue;
        }
        ev.turns += turns.len();
        let mut hsum = vec![0f32; model.labels.len()];
        let mut gsum = [0f32; 3];
        for i in 0..turns.len() {
            let lp = model.header_logprobs(&turn_features(&turns, i));
            for (a, b) in hsum.iter_mut().zip(&lp) {
                *a += b;
            }
            let g = model.group_probs(&lp);
            for k in 0..3 {
                gsum[k] += g[k].max(1e-6).ln();
            }
        }
        let hbest = argmax(&hsum);
        let gbest = argmax(&gsum);
        let gold_group = header_group(&r.header);
        ev.header.add(&r.header, &model.labels[hbest]);
        ev.group.add(gold_group.as_str(), group_section(gbest).as_str());
        for g in model.classify_groups(&turns) {
            ev.turn_group.add(gold_group.as_str(), group_section(argmax(&g)).as_str());
        }
    }
    ev
}

/// `fhirscribe eval sections --data PATH`: evaluates the committed model on an MTS-Dialog CSV.
pub fn eval_sections(data: &Path) -> Result<SectionEval, String> {
    let text = std::fs::read_to_string(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let recs = read_mts(&text)?;
    let model = super::section_model();
    Ok(eval_sections_records(model, &recs, &data.display().to_string()))
}

pub(crate) fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}
