//! k-fold cross-validation of the section model over MTS-Dialog train + validation snippets, and
//! the snippet-level decision rule chosen on its out-of-fold predictions. Used by
//! `lab::train::clinical` (model selection) and `examples/sections_cv.rs` (experiments). MTS-Dialog
//! test-1 is never read here.

use std::path::Path;

use crate::clinical::sections::{
    group_section, header_group, train, TrainConfig, TrainingDialogue,
};
use crate::clinical::{Role, Section};
use crate::lab::data::{read_mts, MtsRecord};
use crate::lab::metrics::Confusion;

/// The pooled development data and its folds.
pub struct CvSetup {
    /// MTS-Dialog train records, then validation records.
    pub records: Vec<MtsRecord>,
    /// Fold of each record.
    pub fold: Vec<usize>,
    pub folds: usize,
    /// ACI-BENCH train encounters with silver turn labels (always in the training part).
    pub aci: Vec<TrainingDialogue>,
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

impl CvSetup {
    /// Loads MTS-Dialog train + validation and ACI-BENCH train from the shared data folder and
    /// assigns folds stratified by header (the n-th snippet of a header goes to fold n mod k).
    pub fn load(data: &Path, folds: usize) -> Result<CvSetup, String> {
        let mts = data.join("mts-dialog");
        let mut records = read_mts(&read(&mts.join("MTS-Dialog-TrainingSet.csv"))?)?;
        records.extend(read_mts(&read(&mts.join("MTS-Dialog-ValidationSet.csv"))?)?);
        let mut seen: std::collections::HashMap<&str, usize> = Default::default();
        let fold = records
            .iter()
            .map(|r| {
                let n = seen.entry(r.header.as_str()).or_default();
                *n += 1;
                (*n - 1) % folds
            })
            .collect();
        Ok(CvSetup {
            fold,
            folds,
            aci: super::clinical::aci_silver(data)?,
            records,
        })
    }

    /// Re-deals the folds (still stratified by header) with a seeded shuffle; seed 0 keeps the
    /// file order.
    pub fn reshuffle(&mut self, seed: u64) {
        if seed == 0 {
            return;
        }
        let mut by_header: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for (i, r) in self.records.iter().enumerate() {
            by_header.entry(r.header.clone()).or_default().push(i);
        }
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut start = 0usize;
        for idx in by_header.values_mut() {
            for i in (1..idx.len()).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                idx.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            for (n, &i) in idx.iter().enumerate() {
                self.fold[i] = (start + n) % self.folds;
            }
            start += idx.len();
        }
    }

    /// Training dialogues: every record outside `skip` (all when `None`), plus ACI-BENCH train
    /// unless the config leaves it out.
    pub fn training_set(&self, skip: Option<usize>, cfg: &TrainConfig) -> Vec<TrainingDialogue> {
        self.records
            .iter()
            .zip(&self.fold)
            .filter(|(_, f)| Some(**f) != skip)
            .map(|(r, _)| TrainingDialogue {
                turns: r.turns.clone(),
                header: r.header.clone(),
                turn_labels: Vec::new(),
            })
            .chain(
                self.aci
                    .iter()
                    .filter(|_| !cfg.no_aci)
                    .map(|d| TrainingDialogue {
                        turns: d.turns.clone(),
                        header: d.header.clone(),
                        turn_labels: d.turn_labels.clone(),
                    }),
            )
            .collect()
    }
}

/// One held-out snippet: its fold, gold SOAP group index, and per-turn (role, group
/// log-probabilities without offsets).
#[derive(Debug, Clone)]
pub struct OofSnippet {
    pub fold: usize,
    pub gold: usize,
    pub turns: Vec<(Role, [f32; 3])>,
}

fn group_index(s: Section) -> usize {
    match s {
        Section::OBJECTIVE => 1,
        Section::ASSESSMENT_AND_PLAN => 2,
        _ => 0,
    }
}

/// Out-of-fold per-turn group log-probabilities for every record (one model per fold).
pub fn oof_predictions(setup: &CvSetup, cfg: &TrainConfig) -> Vec<OofSnippet> {
    let mut out: Vec<Option<OofSnippet>> = vec![None; setup.records.len()];
    for k in 0..setup.folds {
        let mut model = train(&setup.training_set(Some(k), cfg), cfg);
        model.bias = [0.0; 3];
        for (i, r) in setup.records.iter().enumerate() {
            if setup.fold[i] != k || r.turns.is_empty() {
                continue;
            }
            let turns: Vec<(Role, &str)> = r.turns.iter().map(|(a, b)| (*a, b.as_str())).collect();
            let lp = model
                .turn_group_probs(&turns)
                .into_iter()
                .zip(&turns)
                .map(|(p, (role, _))| (*role, p.map(|x| x.max(1e-6).ln())))
                .collect();
            out[i] = Some(OofSnippet {
                fold: k,
                gold: group_index(header_group(&r.header)),
                turns: lp,
            });
        }
    }
    out.into_iter().flatten().collect()
}

#[allow(clippy::needless_range_loop)]
/// Per-turn mean of several models' out-of-fold group log-probabilities (same records, same
/// folds), renormalised.
pub fn ensemble(parts: &[Vec<OofSnippet>]) -> Vec<OofSnippet> {
    let mut out = parts[0].clone();
    for (si, s) in out.iter_mut().enumerate() {
        for (ti, (_, lp)) in s.turns.iter_mut().enumerate() {
            let mut v = [0f32; 3];
            for p in parts {
                for g in 0..3 {
                    v[g] += p[si].turns[ti].1[g] / parts.len() as f32;
                }
            }
            let z = v.iter().map(|x| x.exp()).sum::<f32>().ln();
            *lp = v.map(|x| x - z);
        }
    }
    out
}

/// How a snippet's turn-level group log-probabilities become one score per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Weighted mean of log-probabilities (what a per-turn log-space offset plus a sum over the
    /// turns, and so the product's sequence decoder, amounts to).
    MeanLog,
    /// Log of the weighted mean of probabilities.
    MeanProb,
    /// Maximum over turns of the log-probability.
    Max,
}

/// A snippet-level decision rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub agg: Aggregate,
    /// Weight of clinician turns relative to the others' 1.
    pub clinician_weight: f32,
    /// Log-space offset per group (SUBJECTIVE, OBJECTIVE, ASSESSMENT_AND_PLAN).
    pub bias: [f32; 3],
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            agg: Aggregate::MeanLog,
            clinician_weight: 1.0,
            bias: [0.0; 3],
        }
    }
}

impl Rule {
    pub fn agg_name(&self) -> &'static str {
        match self.agg {
            Aggregate::MeanLog => "meanlog",
            Aggregate::MeanProb => "meanprob",
            Aggregate::Max => "max",
        }
    }

    /// Offsets grid (0 to 4 in steps of 0.25 for OBJECTIVE and ASSESSMENT_AND_PLAN) for one
    /// aggregate and clinician weight.
    pub fn offsets_grid(agg: Aggregate, clinician_weight: f32) -> Vec<Rule> {
        let steps: Vec<f32> = (0..=16).map(|i| i as f32 * 0.25).collect();
        let mut v = Vec::new();
        for &o in &steps {
            for &a in &steps {
                v.push(Rule {
                    agg,
                    clinician_weight,
                    bias: [0.0, o, a],
                });
            }
        }
        v
    }

    /// All aggregates × clinician weights {1, 1.5, 2} (1 only for max) × offsets.
    pub fn grid_default() -> Vec<Rule> {
        let mut v = Vec::new();
        for agg in [Aggregate::MeanLog, Aggregate::MeanProb, Aggregate::Max] {
            for cw in [1.0f32, 1.5, 2.0] {
                if agg == Aggregate::Max && cw != 1.0 {
                    continue;
                }
                v.extend(Rule::offsets_grid(agg, cw));
            }
        }
        v
    }

    /// Group scores of a snippet.
    #[allow(clippy::needless_range_loop)]
    pub fn scores(&self, turns: &[(Role, [f32; 3])]) -> [f32; 3] {
        let mut s = [0f32; 3];
        match self.agg {
            Aggregate::Max => {
                s = [f32::NEG_INFINITY; 3];
                for (_, lp) in turns {
                    for g in 0..3 {
                        s[g] = s[g].max(lp[g]);
                    }
                }
            }
            Aggregate::MeanLog | Aggregate::MeanProb => {
                let mut wsum = 0f32;
                for (role, lp) in turns {
                    let w = if *role == Role::Clinician {
                        self.clinician_weight
                    } else {
                        1.0
                    };
                    wsum += w;
                    for g in 0..3 {
                        s[g] += w * if self.agg == Aggregate::MeanLog {
                            lp[g]
                        } else {
                            lp[g].exp()
                        };
                    }
                }
                for x in &mut s {
                    *x /= wsum.max(1e-6);
                    if self.agg == Aggregate::MeanProb {
                        *x = x.max(1e-9).ln();
                    }
                }
            }
        }
        for g in 0..3 {
            s[g] += self.bias[g];
        }
        s
    }

    /// The decided group index of a snippet.
    pub fn decide(&self, turns: &[(Role, [f32; 3])]) -> usize {
        let s = self.scores(turns);
        let mut best = 0;
        for g in 1..3 {
            if s[g] > s[best] {
                best = g;
            }
        }
        best
    }
}

/// Snippet-level SOAP confusion of a rule over some held-out snippets.
pub fn rule_eval<'a>(oof: impl IntoIterator<Item = &'a OofSnippet>, rule: &Rule) -> Confusion {
    let mut c = Confusion::default();
    for s in oof {
        c.add(
            group_section(s.gold).as_str(),
            group_section(rule.decide(&s.turns)).as_str(),
        );
    }
    c
}

/// The rule of `grid` with the best snippet-level macro-F1 on `oof` (ties: the first in grid
/// order, i.e. the smallest offsets), with its confusion.
pub fn choose_rule(oof: &[OofSnippet], grid: &[Rule]) -> (Rule, Confusion) {
    choose_rule_where(oof, grid, |_| true)
}

fn choose_rule_where(
    oof: &[OofSnippet],
    grid: &[Rule],
    keep: impl Fn(&OofSnippet) -> bool,
) -> (Rule, Confusion) {
    let mut best: Option<(f64, Rule, Confusion)> = None;
    for r in grid {
        let c = rule_eval(oof.iter().filter(|s| keep(s)), r);
        let m = c.macro_f1();
        if best.as_ref().is_none_or(|(b, _, _)| m > *b + 1e-12) {
            best = Some((m, *r, c));
        }
    }
    let (_, r, c) = best.expect("non-empty grid");
    (r, c)
}

/// Honest estimate of choosing a rule from `grid`: for each fold, the rule is chosen on the
/// other folds' out-of-fold predictions and applied to this fold; confusions pooled.
pub fn nested_rule_eval(oof: &[OofSnippet], folds: usize, grid: &[Rule]) -> Confusion {
    let mut all = Confusion::default();
    for k in 0..folds {
        let (r, _) = choose_rule_where(oof, grid, |s| s.fold != k);
        let c = rule_eval(oof.iter().filter(|s| s.fold == k), &r);
        for (key, v) in c.counts {
            *all.counts.entry(key).or_default() += v;
        }
    }
    all
}
