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
            fhirscribe::clinical::build::build_all(&data.expect("--data"), &repo).map(|r| r.to_string())
        }
        "eval-sections" => {
            fhirscribe::clinical::eval::eval_sections(&data.expect("--data")).map(|r| r.to_string())
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
