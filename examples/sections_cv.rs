//! Section-model experiments by k-fold cross-validation over MTS-Dialog train + validation
//! snippets (test-1 is never read here).
//!
//! cargo run --release --example sections_cv -- --data ../shared/data [--variant NAME]...

use std::path::PathBuf;

use fhirscribe::clinical::sections::TrainConfig;
use fhirscribe::lab::train::section_cv::{
    choose_rule, nested_rule_eval, oof_predictions, rule_eval, CvSetup, Rule,
};

fn arg(args: &[String], name: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].clone())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = PathBuf::from(arg(&args, "--data").pop().expect("--data"));
    let mut setup = CvSetup::load(&data, 5).expect("data");
    let shuffles: Vec<u64> = arg(&args, "--shuffle")
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
    let shuffles = if shuffles.is_empty() {
        vec![0]
    } else {
        shuffles
    };
    let variants = arg(&args, "--variant");
    for v in variants {
        for &sh in &shuffles {
            setup.reshuffle(sh);
            let t = std::time::Instant::now();
            let parts: Vec<_> = v
                .split('|')
                .map(|p| oof_predictions(&setup, &parse_cfg(p)))
                .collect();
            let oof = fhirscribe::lab::train::section_cv::ensemble(&parts);
            report(
                &format!("{v} shuffle {sh}"),
                &oof,
                setup.folds,
                t.elapsed().as_secs_f32(),
            );
        }
    }
}

fn parse_cfg(v: &str) -> TrainConfig {
    TrainConfig::parse(v).expect("training options")
}

fn report(
    v: &str,
    oof: &[fhirscribe::lab::train::section_cv::OofSnippet],
    folds: usize,
    secs: f32,
) {
    let oof = oof.to_vec();
    let setup_folds = folds;
    {
        let base = rule_eval(&oof, &Rule::default());
        let (rule, inner) = choose_rule(&oof, &Rule::grid_default());
        let nested = nested_rule_eval(&oof, setup_folds, &Rule::grid_default());
        println!(
            "{v}: {secs:.0}s | no offsets acc {:.3} mF1 {:.3} | best rule {rule:?} acc {:.3} mF1 {:.3} | nested acc {:.3} mF1 {:.3} (O F1 {:.3}, A&P F1 {:.3})",
            base.accuracy(),
            base.macro_f1(),
            inner.accuracy(),
            inner.macro_f1(),
            nested.accuracy(),
            nested.macro_f1(),
            nested.prf("OBJECTIVE").2,
            nested.prf("ASSESSMENT_AND_PLAN").2,
        );
        println!(
            "    nested P/R: O {:.2}/{:.2}  A&P {:.2}/{:.2}  S {:.2}/{:.2}",
            nested.prf("OBJECTIVE").0,
            nested.prf("OBJECTIVE").1,
            nested.prf("ASSESSMENT_AND_PLAN").0,
            nested.prf("ASSESSMENT_AND_PLAN").1,
            nested.prf("SUBJECTIVE").0,
            nested.prf("SUBJECTIVE").1
        );
        for agg in ["meanlog", "meanprob", "max"] {
            for cw in [1.0f32, 1.5, 2.0] {
                let grid: Vec<Rule> = Rule::grid_default()
                    .into_iter()
                    .filter(|r| r.agg_name() == agg && r.clinician_weight == cw)
                    .collect();
                if grid.is_empty() {
                    continue;
                }
                let nested = nested_rule_eval(&oof, setup_folds, &grid);
                let (r, e) = choose_rule(&oof, &grid);
                println!(
                    "    {agg} cw {cw}: chosen {:?} CV mF1 {:.3} | nested acc {:.3} mF1 {:.3}",
                    r.bias,
                    e.macro_f1(),
                    nested.accuracy(),
                    nested.macro_f1()
                );
            }
        }
    }
}
