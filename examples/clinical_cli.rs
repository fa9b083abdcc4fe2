//! Developer CLI for the clinical stage (the product wires the same functions into
//! `fhirscribe clinical build` and `fhirscribe eval ...`).
//!
//! cargo run --example clinical_cli -- build --data ../shared/data [--repo .]
//! cargo run --example clinical_cli -- eval-sections --data ../shared/data/mts-dialog/MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv

use std::path::PathBuf;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let data = arg(&args, "--data").map(PathBuf::from);
    let res: Result<String, String> = match cmd {
        "build" => {
            let repo = PathBuf::from(arg(&args, "--repo").unwrap_or_else(|| ".".into()));
            fhirscribe::lab::train::clinical::build_all(&data.expect("--data"), &repo)
                .map(|r| r.to_string())
        }
        "eval-sections" => match arg(&args, "--model") {
            // a model file instead of the compiled-in one (e.g. straight after `build`)
            Some(m) => std::fs::read_to_string(&m)
                .map_err(|e| format!("{m}: {e}"))
                .and_then(|t| fhirscribe::clinical::sections::SectionModel::from_tsv(&t))
                .and_then(|model| {
                    let d = data.expect("--data");
                    let recs = fhirscribe::lab::data::read_mts(
                        &std::fs::read_to_string(&d).map_err(|e| e.to_string())?,
                    )?;
                    Ok(fhirscribe::lab::clinical::eval_sections_records(
                        &model,
                        &recs,
                        &d.display().to_string(),
                    )
                    .to_string())
                }),
            None => fhirscribe::lab::clinical::eval_sections(&data.expect("--data"))
                .map(|r| r.to_string()),
        },
        "eval-sections-aci" => {
            let split = arg(&args, "--split").unwrap_or_else(|| "valid".into());
            fhirscribe::lab::clinical::eval_sections_aci(&data.expect("--data"), &split).map(|(c, n)| {
                let mut no_other = fhirscribe::lab::metrics::Confusion::default();
                for ((g, p), n) in &c.counts {
                    if p != "OTHER" {
                        for _ in 0..*n {
                            no_other.add(g, p);
                        }
                    }
                }
                format!(
                    "ACI-BENCH {split}: {n} encounters, {} turns (silver labels)\naccuracy {:.3} macro-F1 {:.3} (turns called OTHER count as errors)\naccuracy {:.3} macro-F1 {:.3} on the {} turns not called OTHER\n{}",
                    c.total(),
                    c.accuracy(),
                    c.macro_f1(),
                    no_other.accuracy(),
                    no_other.macro_f1(),
                    no_other.total(),
                    c.summary()
                )
            })
        }
        "eval-entities" => {
            fhirscribe::lab::clinical::eval_entities(&data.expect("--data")).map(|r| r.to_string())
        }
        "eval-conversational" => fhirscribe::lab::clinical::eval_conversational(data.as_deref())
            .map(|r| {
                r.iter()
                    .map(|(name, e)| format!("== {name}\n{e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
        "analyze" => {
            // dialogue on stdin: `Doctor: ...` / `Patient: ...` lines
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut input).expect("stdin");
            let turns: Vec<fhirscribe::clinical::Turn> =
                fhirscribe::lab::data::parse_dialogue(&input)
                    .into_iter()
                    .enumerate()
                    .map(|(i, (r, t))| fhirscribe::clinical::Turn::new(i.to_string(), r, t))
                    .collect();
            let a = fhirscribe::clinical::analyzer();
            eprintln!("lexicon load {:?}", a.load_time);
            let out = a.analyze(&turns);
            let mut s = String::new();
            for (t, o) in turns.iter().zip(&out) {
                s.push_str(&format!(
                    "[{} {:?}] {}\n",
                    o.section.as_str(),
                    t.role,
                    t.text
                ));
                for e in &o.entities {
                    let tr: Vec<String> = e
                        .traits
                        .iter()
                        .map(|(t, _)| t.as_str().to_string())
                        .collect();
                    let at: Vec<String> = e
                        .attributes
                        .iter()
                        .map(|a| format!("{}={:?}", a.entity_type.as_str(), a.text))
                        .collect();
                    let co: Vec<String> = e
                        .codes
                        .iter()
                        .map(|c| {
                            format!(
                                "{:?}:{}({}{})",
                                c.system,
                                c.code,
                                c.display,
                                c.tty
                                    .as_deref()
                                    .map(|x| format!(" {x}"))
                                    .unwrap_or_default()
                            )
                        })
                        .collect();
                    s.push_str(&format!(
                        "    {}/{} {:?} [{}..{}] traits={:?} attrs={:?} codes={:?}\n",
                        e.category.as_str(),
                        e.entity_type.as_str(),
                        e.text,
                        e.begin_char,
                        e.end_char,
                        tr,
                        at,
                        co
                    ));
                }
            }
            Ok(s)
        }
        _ => Err(format!("unknown command {cmd:?}; see the file header")),
    };
    match res {
        Ok(s) => print!("{s}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
