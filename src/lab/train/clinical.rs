//! `fhirscribe clinical build --data DIR [--repo DIR]`: derives the committed compact data from the
//! shared open datasets. Deterministic: the same inputs give byte-identical outputs.

use std::fmt::Write as _;
use std::path::Path;

use crate::clinical::sections::{train, TrainConfig, TrainingDialogue};
use crate::clinical::Role;

/// What a build wrote and measured.
#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    pub lines: Vec<String>,
}

impl std::fmt::Display for BuildReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write(p: &Path, s: &str) -> Result<(), String> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()))
}

/// Builds everything: section model into `<repo>/models/clinical/`, lexicons into
/// `<repo>/mappings/clinical/`. `data` is the shared data folder (`../shared/data`).
pub fn build_all(data: &Path, repo: &Path) -> Result<BuildReport, String> {
    let mut rep = BuildReport::default();
    build_sections(data, &repo.join("models/clinical/sections.tsv"), &mut rep)?;
    super::lexicons::build_lexicons(data, &repo.join("mappings/clinical"), &mut rep)?;
    super::lexicons::build_triggers(data, &repo.join("mappings/clinical"), &mut rep)?;
    Ok(rep)
}

/// Trains the section model on MTS-Dialog train + validation (+ ACI-BENCH train silver turns).
/// Model selection: every candidate training configuration listed in
/// `models/clinical/section_candidates.txt` is scored by 5-fold cross-validation over the
/// MTS-Dialog train + validation snippets (folds stratified by header); for each, the snippet
/// decision rule (per-group log-space offsets and the clinician-turn weight) is the one with the
/// best out-of-fold snippet-level SOAP macro-F1. The candidate with the best such macro-F1 is
/// retrained on all of train + validation. Test-1 is never read here.
pub fn build_sections(data: &Path, out: &Path, rep: &mut BuildReport) -> Result<(), String> {
    use super::section_cv::{
        choose_rule, nested_rule_eval, oof_predictions, Aggregate, CvSetup, Rule,
    };
    let mut setup = CvSetup::load(data, 5)?;
    let mut counts = [0usize; 3];
    for d in &setup.aci {
        for l in &d.turn_labels {
            match l.as_str() {
                "ACI_SUBJECTIVE" => counts[0] += 1,
                "ACI_OBJECTIVE" => counts[1] += 1,
                _ => counts[2] += 1,
            }
        }
    }
    rep.lines.push(format!(
        "sections: ACI-BENCH train silver turns: {} encounters, S/O/AP = {:?}",
        setup.aci.len(),
        counts
    ));
    let cand_path = out.with_file_name("section_candidates.txt");
    let candidates: Vec<String> = read(&cand_path)?
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if candidates.is_empty() {
        return Err(format!("{}: no candidates", cand_path.display()));
    }
    // the product's decision: per-turn offsets summed over turns (mean of log-probabilities),
    // clinician turns weighted
    let grid: Vec<Rule> = [1.0f32, 1.5, 2.0]
        .iter()
        .flat_map(|cw| Rule::offsets_grid(Aggregate::MeanLog, *cw))
        .collect();
    // two seeded deals of the folds: a 3-group macro-F1 over 138 minority snippets is noisy
    const DEALS: [u64; 2] = [7, 3];
    let mut best: Option<(f64, TrainConfig, Rule)> = None;
    for c in &candidates {
        let cfg = TrainConfig::parse(c)?;
        let mut pooled = Vec::new();
        let mut line = format!("sections: candidate `{c}`:");
        for deal in DEALS {
            setup.reshuffle(deal);
            let oof = oof_predictions(&setup, &cfg);
            let (rule, cv) = choose_rule(&oof, &grid);
            let nested = nested_rule_eval(&oof, setup.folds, &grid);
            let _ = write!(
                line,
                " [deal {deal}: CV SOAP macro-F1 {:.3} acc {:.3} with offsets {:?} clinician weight {}; rule chosen inside the folds: macro-F1 {:.3} acc {:.3}]",
                cv.macro_f1(),
                cv.accuracy(),
                rule.bias,
                rule.clinician_weight,
                nested.macro_f1(),
                nested.accuracy()
            );
            pooled.extend(oof);
        }
        // the rule chosen on both deals' out-of-fold predictions together
        let (rule, cv) = choose_rule(&pooled, &grid);
        let _ = write!(
            line,
            " both deals: macro-F1 {:.3} acc {:.3} with offsets {:?} clinician weight {}",
            cv.macro_f1(),
            cv.accuracy(),
            rule.bias,
            rule.clinician_weight
        );
        rep.lines.push(line);
        if best
            .as_ref()
            .is_none_or(|(m, _, _)| cv.macro_f1() > *m + 1e-9)
        {
            best = Some((cv.macro_f1(), cfg, rule));
        }
    }
    let (_, cfg, rule) = best.ok_or("no model")?;
    let mut model = train(&setup.training_set(None, &cfg), &cfg);
    model.bias = rule.bias;
    model.clinician_weight = rule.clinician_weight;
    rep.lines.push(format!(
        "sections: chosen {cfg:?}, offsets {:?}, clinician weight {}",
        model.bias, model.clinician_weight
    ));
    // switch penalty of the sequence decoder, on whole ACI-BENCH *valid* encounters (silver)
    let aci_valid = aci_silver_split(data, "valid")?;
    let mut best_sw = (0f32, f64::MIN);
    for sw in [0f32, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0] {
        model.switch_penalty = sw;
        let mut c = crate::lab::metrics::Confusion::default();
        for e in &aci_valid {
            let turns: Vec<(Role, &str)> = e.turns.iter().map(|(r, t)| (*r, t.as_str())).collect();
            for ((g, _), gold) in model.decode(&turns).into_iter().zip(&e.turn_labels) {
                c.add(
                    crate::clinical::sections::header_group(gold).as_str(),
                    crate::clinical::sections::group_section(g).as_str(),
                );
            }
        }
        rep.lines.push(format!(
            "sections: switch penalty {sw}: ACI-BENCH valid (silver) turn accuracy {:.3} macro-F1 {:.3}",
            c.accuracy(),
            c.macro_f1()
        ));
        if c.macro_f1() > best_sw.1 + 1e-9 {
            best_sw = (sw, c.macro_f1());
        }
    }
    model.switch_penalty = best_sw.0;
    let mut header = String::new();
    let _ = writeln!(
        header,
        "fhirscribe section model (multinomial logistic regression over MTS-Dialog headers + ACI-BENCH silver labels)."
    );
    let _ = writeln!(
        header,
        "Derived by `fhirscribe clinical build` from MTS-Dialog train + validation and ACI-BENCH train (all CC BY 4.0); see models/clinical/README.md"
    );
    let _ = writeln!(header, "config: {cfg:?}");
    let text = model.to_tsv(&header);
    write(out, &text)?;
    rep.lines.push(format!(
        "sections: wrote {} ({} features, {} bytes)",
        out.display(),
        model.weights.len(),
        text.len(),
    ));
    Ok(())
}

const STOP: &[&str] = &[
    "the", "and", "you", "your", "that", "this", "with", "have", "for", "are", "was", "but", "not",
    "all", "any", "can", "had", "her", "his", "she", "him", "they", "them", "what", "how", "yeah",
    "okay", "just", "like", "know", "well", "then", "there", "here", "about", "some", "been",
    "were", "will", "would", "going", "get", "got", "also", "did", "does", "doing", "right", "yes",
    "um", "uh", "mm", "hmm", "one", "two", "very", "really", "think", "that", "from", "which",
];

/// Silver per-turn SOAP labels for ACI-BENCH *train* encounters: each turn is scored by its
/// (idf-weighted) word overlap with the gold note's divisions (subjective; objective_exam +
/// objective_results; assessment_and_plan), plus a few clinician cue words, and a monotone
/// S → O → A&P path is chosen with Viterbi (backward moves heavily penalised).
pub fn aci_silver(data: &Path) -> Result<Vec<TrainingDialogue>, String> {
    aci_silver_split(data, "train")
}

/// [`aci_silver`] for a named ACI-BENCH split (`train`, `valid`, `clinicalnlp_taskB_test1`).
#[allow(clippy::needless_range_loop)] // index loops read clearer in Viterbi
pub fn aci_silver_split(data: &Path, split: &str) -> Result<Vec<TrainingDialogue>, String> {
    use crate::clinical::text::{fold_token, tokenize};
    use std::collections::{BTreeSet, HashMap};
    let aci = data.join("aci-bench");
    let load = |name: &str| -> Result<HashMap<String, String>, String> {
        let v: serde_json::Value =
            serde_json::from_str(&read(&aci.join(name))?).map_err(|e| format!("{name}: {e}"))?;
        let mut m = HashMap::new();
        for e in v["data"].as_array().into_iter().flatten() {
            let file = e["file"].as_str().unwrap_or("");
            let id = file.split('-').next().unwrap_or("").to_string();
            m.insert(id, e["tgt"].as_str().unwrap_or("").to_string());
        }
        Ok(m)
    };
    let full: serde_json::Value = serde_json::from_str(&read(&aci.join(format!("{split}.json")))?)
        .map_err(|e| format!("{split}.json: {e}"))?;
    let subj = load(&format!("{split}_subjective.json"))?;
    let exam = load(&format!("{split}_objective_exam.json"))?;
    let res = load(&format!("{split}_objective_results.json"))?;
    let ap = load(&format!("{split}_assessment_and_plan.json"))?;
    // ordered sets: the idf sums below must add in the same order on every run
    let words = |t: &str| -> BTreeSet<String> {
        tokenize(t)
            .iter()
            .map(|x| fold_token(&x.lower))
            .filter(|w| w.chars().count() >= 3 && !STOP.contains(&w.as_str()))
            .collect()
    };
    let mut encounters: Vec<(String, Vec<(Role, String)>)> = Vec::new();
    for e in full["data"].as_array().into_iter().flatten() {
        let id = e["file"]
            .as_str()
            .unwrap_or("")
            .split('-')
            .next()
            .unwrap_or("")
            .to_string();
        let turns = crate::lab::data::parse_dialogue(e["src"].as_str().unwrap_or(""));
        if !turns.is_empty() {
            encounters.push((id, turns));
        }
    }
    encounters.sort_by(|a, b| a.0.cmp(&b.0));
    // idf over turns
    let mut df: HashMap<String, usize> = HashMap::new();
    let mut n_turns = 0usize;
    for (_, turns) in &encounters {
        for (_, t) in turns {
            n_turns += 1;
            for w in words(t) {
                *df.entry(w).or_default() += 1;
            }
        }
    }
    let idf = |w: &str| ((n_turns as f32 + 1.0) / (*df.get(w).unwrap_or(&0) as f32 + 1.0)).ln();
    let mut out = Vec::new();
    for (id, turns) in &encounters {
        let div = [
            words(subj.get(id).map(String::as_str).unwrap_or("")),
            words(&format!(
                "{} {}",
                exam.get(id).map(String::as_str).unwrap_or(""),
                res.get(id).map(String::as_str).unwrap_or("")
            )),
            words(ap.get(id).map(String::as_str).unwrap_or("")),
        ];
        let emis: Vec<[f32; 3]> = turns
            .iter()
            .map(|(role, t)| {
                let ws = words(t);
                let total: f32 = ws.iter().map(|w| idf(w)).sum::<f32>() + 1.0;
                let mut e = [0f32; 3];
                for (k, d) in div.iter().enumerate() {
                    let hit: f32 = ws.iter().filter(|w| d.contains(*w)).map(|w| idf(w)).sum();
                    e[k] = 6.0 * hit / total;
                }
                if *role == Role::Clinician {
                    let l = t.to_lowercase();
                    if [
                        "exam",
                        "examine",
                        "take a look",
                        "listen to",
                        "press",
                        "vitals",
                        "deep breath",
                    ]
                    .iter()
                    .any(|c| l.contains(c))
                    {
                        e[1] += 1.5;
                    }
                    if [
                        "results",
                        "x-ray",
                        "xray",
                        "lab",
                        "ekg",
                        "echo",
                        "mri",
                        "ct scan",
                        "ultrasound",
                    ]
                    .iter()
                    .any(|c| l.contains(c))
                    {
                        e[1] += 0.5;
                    }
                    if [
                        "assessment",
                        "plan",
                        "diagnos",
                        "prescribe",
                        "i want you to",
                        "follow up",
                        "refer",
                        "recommend",
                        "let's go ahead",
                        "i'm going to order",
                    ]
                    .iter()
                    .any(|c| l.contains(c))
                    {
                        e[2] += 1.5;
                    }
                }
                e
            })
            .collect();
        // Viterbi
        let trans = |a: usize, b: usize| -> f32 {
            if a == b {
                0.0
            } else if b > a {
                -2.5 * (b - a) as f32
            } else {
                -8.0
            }
        };
        let n = emis.len();
        let mut score = vec![[f32::NEG_INFINITY; 3]; n];
        let mut back = vec![[0usize; 3]; n];
        for k in 0..3 {
            score[0][k] = emis[0][k] - if k == 0 { 0.0 } else { 5.0 };
        }
        for i in 1..n {
            for b in 0..3 {
                let mut best = (f32::NEG_INFINITY, 0);
                for a in 0..3 {
                    let v = score[i - 1][a] + trans(a, b);
                    if v > best.0 {
                        best = (v, a);
                    }
                }
                score[i][b] = best.0 + emis[i][b];
                back[i][b] = best.1;
            }
        }
        let mut k = (0..3)
            .max_by(|a, b| score[n - 1][*a].total_cmp(&score[n - 1][*b]))
            .unwrap_or(0);
        let mut path = vec![0usize; n];
        for i in (0..n).rev() {
            path[i] = k;
            k = back[i][k];
        }
        let names = ["ACI_SUBJECTIVE", "ACI_OBJECTIVE", "ACI_ASSESSMENT_AND_PLAN"];
        out.push(TrainingDialogue {
            turns: turns.clone(),
            header: names[0].to_string(),
            turn_labels: path.iter().map(|k| names[*k].to_string()).collect(),
        });
    }
    Ok(out)
}
