//! ACI-BENCH note evaluation with the fallback analyzer (the clinical stage is not wired in yet).
//! Ignored by default: it needs the shared data folder. Run with
//! `cargo test --release --test note_aci_bench -- --ignored --nocapture`.
//! `NOTE_EVAL_SPLITS` (comma-separated, default `valid,clinicalnlp_taskB_test1`),
//! `FHIRSCRIBE_ACI_BENCH` (folder) and `FHIRSCRIBE_VOCAB` (entity lexicons) override the defaults;
//! `NOTE_EVAL_DUMP=DIR` writes each generated note and its support failures there.

use std::path::PathBuf;

use fhirscribe::healthscribe::NoteTemplate;
use fhirscribe::lab::{facts::Lexicon, fallback::FallbackAnalyzer, notes::evaluate_aci_bench};
use fhirscribe::note::Templates;

fn shared(sub: &str, env: &str) -> PathBuf {
    std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data")
            .join(sub)
    })
}

#[test]
#[ignore = "needs ../shared/data/aci-bench"]
fn aci_bench_with_fallback_analyzer() {
    let dir = shared("aci-bench", "FHIRSCRIBE_ACI_BENCH");
    let lexicon = Lexicon::load(&shared("vocab", "FHIRSCRIBE_VOCAB")).ok();
    let templates = Templates::builtin().unwrap();
    let template = templates.get(NoteTemplate::HistoryAndPhysical);
    let analyzer = FallbackAnalyzer::new();
    let splits = std::env::var("NOTE_EVAL_SPLITS")
        .unwrap_or_else(|_| "valid,clinicalnlp_taskB_test1".into());
    for split in splits.split(',') {
        let report = evaluate_aci_bench(
            &dir,
            split,
            template,
            &|c| analyzer.analyze(c),
            lexicon.as_ref(),
        )
        .unwrap();
        println!(
            "{}",
            report.to_text("fallback (cue words + built-in term list)")
        );
        if let Ok(dump) = std::env::var("NOTE_EVAL_DUMP") {
            let d = PathBuf::from(dump).join(split);
            std::fs::create_dir_all(&d).unwrap();
            for n in &report.notes {
                let mut s = format!(
                    "R1 {:.3} R2 {:.3} RL {:.3}\n",
                    n.full.rouge1, n.full.rouge2, n.full.rouge_l
                );
                for f in &n.support.failures {
                    s += &format!(
                        "UNSUPPORTED [{}] {} -- {}\n",
                        f.section, f.sentence, f.reason
                    );
                }
                s += "\n";
                s += &n.text;
                std::fs::write(d.join(format!("{}.txt", n.id)), s).unwrap();
            }
        }
        assert_eq!(
            report.supported, report.sentences,
            "every sentence must pass the independent checker"
        );
    }
}
