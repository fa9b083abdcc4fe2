//! What reaches the chart per encounter: Conditions and MedicationStatements a job's Bundle would
//! carry under a mapping's chart policy, beside what the same findings gave before the policy
//! (every coded, non-negated finding; one resource per code *and deciding trait rule*, which let
//! one code appear twice). Counts only, unless `--show-codes` lists each charted Condition's code
//! and spoken text (public evaluation data only).
//!
//! Input: ACI-BENCH dialogues (`[doctor]`/`[patient]` turns, so speaker roles are known) run
//! through the real clinical stage and note, as `eval notes` does.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use crate::fhir::mapping::{decide, Decision};
use crate::fhir::{self, EncounterContext, JobOutputs, Mapping, ScribeDevice};
use crate::healthscribe::{NoteTemplate, TraitName};
use crate::note::{NoteContext, Templates};

/// One encounter's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartCounts {
    pub id: String,
    /// Conditions before the chart policy (old grouping: code + deciding rule).
    pub conditions_before: usize,
    /// Codes that appeared in more than one Condition before.
    pub duplicate_codes_before: usize,
    pub conditions: usize,
    pub medication_statements: usize,
    /// `code display (category)` of each Condition written, for reading the policy's choices
    /// on public evaluation data (`--show-codes`).
    pub charted: Vec<String>,
}

/// Totals over a data set.
#[derive(Debug, Clone, Default)]
pub struct ChartReport {
    pub split: String,
    pub rows: Vec<ChartCounts>,
    pub show_codes: bool,
}

impl fmt::Display for ChartReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "encounter\tconditions_before\tduplicate_codes_before\tconditions\tmedication_statements"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{}\t{}\t{}\t{}\t{}",
                r.id,
                r.conditions_before,
                r.duplicate_codes_before,
                r.conditions,
                r.medication_statements
            )?;
            if self.show_codes {
                for c in &r.charted {
                    writeln!(f, "\t{c}")?;
                }
            }
        }
        let n = self.rows.len().max(1) as f64;
        let sum = |g: fn(&ChartCounts) -> usize| self.rows.iter().map(g).sum::<usize>();
        let per = |g: fn(&ChartCounts) -> usize| sum(g) as f64 / n;
        let max = |g: fn(&ChartCounts) -> usize| self.rows.iter().map(g).max().unwrap_or(0);
        writeln!(
            f,
            "{}: {} encounters; Conditions per encounter before {:.2} (max {}, {} codes twice in one Bundle), after {:.2} (max {}); MedicationStatements {:.2}",
            self.split,
            self.rows.len(),
            per(|r| r.conditions_before),
            max(|r| r.conditions_before),
            sum(|r| r.duplicate_codes_before),
            per(|r| r.conditions),
            max(|r| r.conditions),
            per(|r| r.medication_statements),
        )
    }
}

/// Conditions the mapping's rules made before the chart policy: one per (code, deciding
/// trait rule) among insights the trait rules did not skip.
fn conditions_before(
    mapping: &Mapping,
    conv: &crate::healthscribe::Conversation,
) -> (usize, usize) {
    let c = &mapping.conditions;
    let mut groups: BTreeSet<(String, Option<usize>)> = BTreeSet::new();
    for ins in &conv.clinical_insights {
        if !c
            .from
            .iter()
            .any(|s| s.matches(ins.category, ins.entity_type))
        {
            continue;
        }
        let Some(ext) = ins.extensions.as_ref() else {
            continue;
        };
        let traits: Vec<(TraitName, f64)> = ext.traits.iter().map(|t| (t.name, t.score)).collect();
        if matches!(decide(&c.trait_rules, &traits), Decision::Skip(_)) {
            continue;
        }
        // The first rule that matched, if any (the old grouping's key).
        let rule = c.trait_rules.iter().position(|r| {
            traits
                .iter()
                .any(|(t, s)| *t == r.trait_name && *s >= r.min_score)
        });
        let code = ext
            .codes
            .iter()
            .filter(|k| k.system == c.code_system && k.score.unwrap_or(1.0) >= c.min_code_score)
            .max_by(|a, b| a.score.unwrap_or(1.0).total_cmp(&b.score.unwrap_or(1.0)));
        if let Some(code) = code {
            groups.insert((code.code.clone(), rule));
        }
    }
    let codes: BTreeSet<&String> = groups.iter().map(|(c, _)| c).collect();
    (groups.len(), groups.len() - codes.len())
}

/// Runs every dialogue of an ACI-BENCH split through the clinical stage and the note, and counts
/// what its Bundle would chart under `mapping`.
pub fn evaluate(
    data: &Path,
    split: &str,
    mapping: &Mapping,
    show_codes: bool,
) -> anyhow::Result<ChartReport> {
    let encounters = super::aci::read_aci_bench(data, split)?;
    let templates = Templates::builtin()?;
    let template = NoteTemplate::HistoryAndPhysical;
    let ctx = EncounterContext::new("Patient/eval", "Encounter/eval")?;
    let device = ScribeDevice {
        version: env!("CARGO_PKG_VERSION").into(),
        models: vec![(
            "asr".into(),
            "reference transcript (no speech model)".into(),
        )],
    };
    let mut rows = Vec::new();
    for e in &encounters {
        let mut conv = super::aci::dialogue_to_conversation(&e.id, &e.dialogue);
        crate::annotate::annotate(&mut conv);
        let doc = crate::note::generate(&conv, templates.get(template), &NoteContext::default());
        let job = format!("chart-{}", e.id);
        let mapped = fhir::build_bundle(
            mapping,
            &ctx,
            &device,
            &JobOutputs {
                job_name: &job,
                template,
                conversation: &conv,
                documentation: &doc,
                note_markdown: "",
                transcript_json: b"{}",
                documentation_json: b"{}",
                recorded: "2026-12-03T00:00:00Z",
            },
        )?;
        let (before, dup) = conditions_before(mapping, &conv);
        rows.push(ChartCounts {
            id: e.id.clone(),
            conditions_before: before,
            duplicate_codes_before: dup,
            conditions: mapped.report.conditions,
            medication_statements: mapped.report.medication_statements,
            charted: mapped.bundle["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| &e["resource"])
                .filter(|r| r["resourceType"] == "Condition")
                .map(|r| {
                    format!(
                        "{} {} ({})",
                        r["code"]["coding"][0]["code"].as_str().unwrap_or("?"),
                        r["code"]["text"].as_str().unwrap_or("?"),
                        r["category"][0]["coding"][0]["code"]
                            .as_str()
                            .unwrap_or("?")
                    )
                })
                .collect(),
        });
    }
    Ok(ChartReport {
        split: split.to_string(),
        rows,
        show_codes,
    })
}
