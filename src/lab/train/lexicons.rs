//! Derives the compact lexicons in `mappings/clinical/` from the open vocabularies in the shared
//! data folder. See `mappings/clinical/README.md` for the files and `NOTICE` for attributions.
//!
//! * `conditions.tsv` (`key, icd10cm, kind`): ICD-10-CM 2026 category/subcategory names (codes of
//!   at most 5 characters, chapters V–Z and U left out) with systematic variants (", unspecified",
//!   parentheticals, "without complications" removed), Human Disease Ontology labels (ICD-10-CM via
//!   its xrefs), SYMP symptom labels, and NCBI-disease *train* mentions. `kind` is `sx` for symptoms
//!   and signs (ICD chapter R, SYMP), `dx` otherwise.
//! * `drugs.tsv` (`key, rxcui, G|B`): RxNorm IN/PIN/MIN/BN names and the spoken-name synonyms of
//!   `rxnorm-merged/drug_synonyms.tsv` (rows whose only source is the partly CC BY-SA package are
//!   dropped), each to an ingredient-level RXCUI.
//! * `rxnorm_names.tsv`, `icd10cm_names.tsv`: display names of the referenced codes.
//! * `rxnorm_scd.tsv` (`ingredient rxcui, strength, unit, dose form, scd rxcui`): single-ingredient
//!   clinical drugs, for SCD coding when strength is known.
//! * Keys that the NCBI-disease / BC5CDR *train* splits show to be mostly not a mention (matched at
//!   least 4 times, under 25% of them a gold mention) are dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::clinical::BuildReport;
use crate::clinical::matcher::TokenMatcher;
use crate::clinical::text::{fold_token, normalize_phrase, tokenize};
use crate::lab::data::{iob_spans, read_iob};

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write(p: &Path, s: &str) -> Result<usize, String> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(s.len())
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

/// Candidate key for a condition.
#[derive(Debug, Clone)]
struct Cand {
    rank: u8,
    code: String,
    kind: &'static str,
}

fn better(a: &Cand, b: &Cand) -> bool {
    // is a better than b?
    let ka = (a.rank, a.code == "-", a.code.len(), a.code.clone());
    let kb = (b.rank, b.code == "-", b.code.len(), b.code.clone());
    ka < kb
}

fn offer(map: &mut HashMap<String, Cand>, key: String, c: Cand) {
    if key.chars().count() < 3 || key.split(' ').count() > 6 {
        return;
    }
    if key.chars().all(|c| c.is_ascii_digit() || c == ' ') {
        return;
    }
    match map.get(&key) {
        Some(old) if !better(&c, old) => {}
        _ => {
            map.insert(key, c);
        }
    }
}

/// Systematic variants of an ICD-10-CM description with a rank (0 = as written).
pub fn icd_variants(desc: &str) -> Vec<(String, u8)> {
    let d = desc.to_lowercase();
    if d.starts_with("other ") || d.starts_with("encounter") || d.contains("personal history") {
        return Vec::new();
    }
    let mut out = vec![(d.clone(), 0u8)];
    // remove parentheticals and brackets
    let mut np = String::new();
    let mut depth = 0i32;
    for c in d.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            _ if depth <= 0 => np.push(c),
            _ => {}
        }
    }
    let mut v = np.split_whitespace().collect::<Vec<_>>().join(" ");
    for suf in [
        ", unspecified",
        " unspecified",
        ", not elsewhere classified",
        " without complications",
        " without complication",
        ", site not specified",
        ", unspecified site",
    ] {
        if let Some(x) = v.strip_suffix(suf) {
            v = x.to_string();
        }
    }
    if let Some(x) = v.strip_prefix("unspecified ") {
        v = x.to_string();
    }
    out.push((v.clone(), 1));
    // "acute bronchitis, unspecified" handled; "pain in joint, shoulder" → keep first part only
    // when the rest is a qualifier list
    if let Some((a, _)) = v.split_once(", ") {
        out.push((a.to_string(), 2));
    }
    out
}

/// Builds all lexicon files into `out`.
pub fn build_lexicons(data: &Path, out: &Path, rep: &mut BuildReport) -> Result<(), String> {
    let vocab = data.join("vocab");
    // ---------- ICD-10-CM ----------
    let icd = read(&vocab.join("icd10cm/icd10cm_2026_april_flat.tsv"))?;
    let mut icd_names: HashMap<String, String> = HashMap::new();
    let mut cond: HashMap<String, Cand> = HashMap::new();
    for line in icd.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 4 {
            continue;
        }
        let (code, kind, desc) = (cols[0], cols[1], cols[3]);
        if kind != "category" && kind != "subcategory" {
            continue;
        }
        icd_names.insert(code.to_string(), desc.to_string());
        let first = code.chars().next().unwrap_or('Z');
        if matches!(first, 'V' | 'W' | 'X' | 'Y' | 'Z' | 'U') || code.replace('.', "").len() > 5 {
            continue;
        }
        let k = if first == 'R' { "sx" } else { "dx" };
        for (v, rank) in icd_variants(desc) {
            offer(
                &mut cond,
                normalize_phrase(&v),
                Cand {
                    rank,
                    code: code.to_string(),
                    kind: k,
                },
            );
        }
    }
    let n_icd = cond.len();
    let lookup = |cond: &HashMap<String, Cand>, key: &str| -> (String, &'static str) {
        cond.get(key)
            .map(|c| (c.code.clone(), c.kind))
            .unwrap_or(("-".into(), "dx"))
    };
    // ---------- Disease Ontology ----------
    let do_icd = read(&vocab.join("disease-ontology/ICD10inDO.tsv"))?;
    let mut n_do = 0;
    for line in do_icd.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            continue;
        }
        let label = unquote(cols[1]);
        let code = unquote(cols[2])
            .split(['|', ',', ';'])
            .find_map(|x| x.trim().strip_prefix("ICD10CM:"))
            .map(str::to_string);
        if let Some(code) = code {
            if !icd_names.contains_key(&code) {
                continue;
            }
            let k = if code.starts_with('R') { "sx" } else { "dx" };
            offer(
                &mut cond,
                normalize_phrase(label),
                Cand {
                    rank: 0,
                    code,
                    kind: k,
                },
            );
            n_do += 1;
        }
    }
    let do_all = read(&vocab.join("disease-ontology/HumanDO.tsv"))?;
    for line in do_all.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 2 {
            continue;
        }
        let key = normalize_phrase(unquote(cols[1]));
        if cond.contains_key(&key) {
            continue;
        }
        let (code, kind) = lookup(&cond, &key);
        offer(
            &mut cond,
            key,
            Cand {
                rank: 2,
                code,
                kind,
            },
        );
        n_do += 1;
    }
    // ---------- SYMP symptoms ----------
    let ds = read(&vocab.join("disease-ontology/disease-symptom.tsv"))?;
    let mut symp: HashSet<String> = HashSet::new();
    for line in ds.lines().skip(1) {
        if let Some(l) = line.split('\t').nth(3) {
            symp.insert(normalize_phrase(l));
        }
    }
    for key in &symp {
        let (code, _) = lookup(&cond, key);
        let rank = if code == "-" { 2 } else { 1 };
        if let Some(c) = cond.get_mut(key) {
            c.kind = "sx";
            continue;
        }
        offer(
            &mut cond,
            key.clone(),
            Cand {
                rank,
                code,
                kind: "sx",
            },
        );
    }
    // ---------- NCBI-disease train mentions ----------
    let ncbi_train = read_iob(&read(&data.join("ner/ncbi-disease/train.tsv"))?);
    let mut n_ncbi = 0;
    for s in &ncbi_train {
        for (b, e, _) in iob_spans(&s.tags) {
            let key = normalize_phrase(&s.tokens[b..e].join(" "));
            if cond.contains_key(&key) {
                continue;
            }
            let (code, kind) = lookup(&cond, &key);
            offer(
                &mut cond,
                key,
                Cand {
                    rank: 3,
                    code,
                    kind,
                },
            );
            n_ncbi += 1;
        }
    }
    // ---------- precision filter for conditions ----------
    let bc5_train = read_iob(&read(&data.join("ner/bc5cdr/train.ssv"))?);
    let dropped_c = precision_filter(
        &mut cond,
        &[(&ncbi_train, "Disease"), (&bc5_train, "Disease")],
    );
    rep.lines.push(format!(
        "conditions: {} keys (ICD-10-CM variants {n_icd}, Disease Ontology {n_do}, SYMP {}, NCBI train mentions {n_ncbi}); dropped {} low-precision keys",
        cond.len(),
        symp.len(),
        dropped_c.len()
    ));
    // ---------- RxNorm ----------
    let lex = read(&vocab.join("rxnorm-merged/rxnorm_lexicon.tsv"))?;
    let mut rx_names: HashMap<String, (String, String)> = HashMap::new(); // rxcui -> (tty, name)
    let mut in_by_name: HashMap<String, String> = HashMap::new();
    let mut scd_rows: Vec<(String, String)> = Vec::new();
    for line in lex.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            continue;
        }
        let (rxcui, tty, name) = (cols[0], cols[1], cols[2]);
        rx_names.insert(rxcui.to_string(), (tty.to_string(), name.to_string()));
        match tty {
            "IN" => {
                in_by_name.insert(name.to_lowercase(), rxcui.to_string());
            }
            "SCD" => scd_rows.push((rxcui.to_string(), name.to_string())),
            _ => {}
        }
    }
    // (key) -> (prio, tty rank, rxcui, G/B)
    let mut drugs: HashMap<String, (u8, u8, u64, &'static str)> = HashMap::new();
    let tty_rank = |t: &str| match t {
        "IN" => 0u8,
        "PIN" => 1,
        "MIN" => 2,
        _ => 3,
    };
    let mut offer_drug = |key: String, v: (u8, u8, u64, &'static str)| {
        if key.chars().count() < 3
            || key.split(' ').count() > 5
            || key.chars().all(|c| c.is_ascii_digit() || c == ' ')
        {
            return;
        }
        match drugs.get(&key) {
            Some(old) if (old.0, old.1, old.2) <= (v.0, v.1, v.2) => {}
            _ => {
                drugs.insert(key, v);
            }
        }
    };
    for (rxcui, (tty, name)) in &rx_names {
        if matches!(tty.as_str(), "IN" | "PIN" | "MIN") {
            if let Ok(id) = rxcui.parse() {
                offer_drug(normalize_phrase(name), (0, tty_rank(tty), id, "G"));
            }
        }
    }
    let syn = read(&vocab.join("rxnorm-merged/drug_synonyms.tsv"))?;
    let mut n_syn = 0;
    for line in syn.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 6 {
            continue;
        }
        let (synonym, rxcui, tty, kind, source) = (cols[0], cols[1], cols[2], cols[4], cols[5]);
        if source == "drug_named_entity_recognition-2.0.9" {
            continue; // only from the partly CC BY-SA source
        }
        let Ok(id) = rxcui.parse() else { continue };
        let t = if kind == "brand" { "B" } else { "G" };
        offer_drug(normalize_phrase(synonym), (1, tty_rank(tty), id, t));
        n_syn += 1;
    }
    let mut drug_keys: HashMap<String, Cand> = drugs
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Cand {
                    rank: 0,
                    code: v.2.to_string(),
                    kind: v.3,
                },
            )
        })
        .collect();
    let dropped_d = precision_filter(&mut drug_keys, &[(&bc5_train, "Chemical")]);
    rep.lines.push(format!(
        "drugs: {} keys ({} synonym rows used); dropped {} low-precision keys",
        drug_keys.len(),
        n_syn,
        dropped_d.len()
    ));
    // ---------- SCD table ----------
    let mut scd_out: Vec<String> = Vec::new();
    for (rxcui, name) in &scd_rows {
        if name.contains(" / ") {
            continue;
        }
        let toks: Vec<&str> = name.split(' ').collect();
        let Some(pos) = toks.iter().position(|t| t.parse::<f64>().is_ok()) else {
            continue;
        };
        if pos == 0 || pos + 2 >= toks.len() {
            continue;
        }
        let ingr = toks[..pos].join(" ").to_lowercase();
        let mut in_rx = None;
        for cut in (1..=pos).rev() {
            if let Some(r) = in_by_name.get(&toks[..cut].join(" ").to_lowercase()) {
                in_rx = Some(r.clone());
                break;
            }
        }
        let Some(in_rx) = in_rx else { continue };
        let _ = ingr;
        let value = toks[pos];
        let unit = toks[pos + 1];
        let form = toks[pos + 2..].join(" ");
        scd_out.push(format!("{in_rx}\t{value}\t{unit}\t{form}\t{rxcui}"));
    }
    scd_out.sort();
    // ---------- conversational vocabulary (never fuzzily "corrected") ----------
    let mts =
        crate::lab::data::read_mts(&read(&data.join("mts-dialog/MTS-Dialog-TrainingSet.csv"))?)?;
    let mut wc: HashMap<String, usize> = HashMap::new();
    for r in &mts {
        for (_, t) in &r.turns {
            for tok in tokenize(t) {
                if tok.lower.chars().all(char::is_alphabetic) {
                    *wc.entry(fold_token(&tok.lower)).or_default() += 1;
                }
            }
        }
    }
    let mut common: Vec<String> = wc
        .into_iter()
        .filter(|(_, c)| *c >= 3)
        .map(|(w, _)| w)
        .collect();
    common.sort();
    // ---------- write ----------
    let mut cond_lines: Vec<String> = cond
        .iter()
        .map(|(k, c)| format!("{k}\t{}\t{}", c.code, c.kind))
        .collect();
    cond_lines.sort();
    let mut drug_lines: Vec<String> = drug_keys
        .iter()
        .map(|(k, c)| format!("{k}\t{}\t{}", c.code, c.kind))
        .collect();
    drug_lines.sort();
    let mut used_icd: HashSet<String> = cond.values().map(|c| c.code.clone()).collect();
    let cats: Vec<String> = used_icd
        .iter()
        .filter_map(|c| c.split('.').next().map(str::to_string))
        .collect();
    used_icd.extend(cats);
    let mut icd_lines: Vec<String> = used_icd
        .iter()
        .filter_map(|c| icd_names.get(c).map(|n| format!("{c}\t{n}")))
        .collect();
    icd_lines.sort();
    let mut used_rx: HashSet<String> = drug_keys.values().map(|c| c.code.clone()).collect();
    for l in &scd_out {
        if let Some(x) = l.rsplit('\t').next() {
            used_rx.insert(x.to_string());
        }
    }
    let mut rx_lines: Vec<String> = used_rx
        .iter()
        .filter_map(|c| rx_names.get(c).map(|(t, n)| format!("{c}\t{t}\t{n}")))
        .collect();
    rx_lines.sort();
    let head = "# derived by `fhirscribe clinical build`; sources and licences in NOTICE and mappings/clinical/README.md\n";
    let files: BTreeMap<&str, Vec<String>> = BTreeMap::from([
        ("conditions.tsv", cond_lines),
        ("drugs.tsv", drug_lines),
        ("icd10cm_names.tsv", icd_lines),
        ("rxnorm_names.tsv", rx_lines),
        ("rxnorm_scd.tsv", scd_out),
        ("common_words.txt", common),
    ]);
    for (name, lines) in files {
        let mut s = String::from(head);
        for l in &lines {
            s.push_str(l);
            s.push('\n');
        }
        let n = write(&out.join(name), &s)?;
        rep.lines.push(format!(
            "wrote {} ({} rows, {} bytes)",
            out.join(name).display(),
            lines.len(),
            n
        ));
    }
    Ok(())
}

/// Drops keys that the labelled train splits show to be mostly not mentions; returns the dropped.
fn precision_filter(
    map: &mut HashMap<String, Cand>,
    corpora: &[(&Vec<crate::lab::data::IobSentence>, &str)],
) -> Vec<String> {
    let mut keys: Vec<String> = map.keys().cloned().collect();
    keys.sort();
    let m = TokenMatcher::new(&keys);
    let mut stats = vec![(0usize, 0usize); keys.len()];
    for (corpus, ty) in corpora {
        for s in corpus.iter() {
            let gold: HashSet<(usize, usize)> = iob_spans(&s.tags)
                .into_iter()
                .filter(|(_, _, t)| t == ty)
                .map(|(b, e, _)| (b, e))
                .collect();
            // map IOB tokens to folded sub-tokens
            let mut folded: Vec<String> = Vec::new();
            let mut owner: Vec<usize> = Vec::new();
            for (i, t) in s.tokens.iter().enumerate() {
                for st in tokenize(t) {
                    folded.push(fold_token(&st.lower));
                    owner.push(i);
                }
            }
            for (b, e, k) in m.find(&folded) {
                let span = (owner[b], owner[e - 1] + 1);
                if gold.contains(&span) {
                    stats[k].0 += 1;
                } else if !gold.iter().any(|g| g.0 < span.1 && span.0 < g.1) {
                    stats[k].1 += 1;
                }
            }
        }
    }
    let mut dropped = Vec::new();
    for (k, (tp, fp)) in keys.iter().zip(stats) {
        if tp + fp >= 4 && (tp as f64) < 0.25 * (tp + fp) as f64 {
            map.remove(k);
            dropped.push(k.clone());
        }
    }
    dropped
}

/// Derives `context_triggers.tsv` (`trigger, type`) from the negspacy `en_clinical` termsets and
/// the medspacy ConText rules (literals only). Types: NEG_PRE, NEG_POST, PSEUDO, TERM, HYPO_PRE,
/// HYPO_POST, HIST_PRE, FAM_PRE.
pub fn build_triggers(data: &Path, out: &Path, rep: &mut BuildReport) -> Result<(), String> {
    let vocab = data.join("vocab");
    let neg: serde_json::Value = serde_json::from_str(&read(
        &vocab.join("negspacy-termsets/negspacy_termsets.json"),
    )?)
    .map_err(|e| format!("negspacy: {e}"))?;
    let mut rows: std::collections::BTreeSet<(String, String)> = Default::default();
    let set = &neg["en_clinical"];
    for (k, ty) in [
        ("preceding_negations", "NEG_PRE"),
        ("following_negations", "NEG_POST"),
        ("pseudo_negations", "PSEUDO"),
        ("termination", "TERM"),
    ] {
        for t in set[k].as_array().into_iter().flatten() {
            if let Some(s) = t.as_str() {
                rows.insert((s.to_lowercase(), ty.to_string()));
            }
        }
    }
    let ctx: serde_json::Value =
        serde_json::from_str(&read(&vocab.join("medspacy-resources/context_rules.json"))?)
            .map_err(|e| format!("medspacy: {e}"))?;
    for r in ctx["context_rules"].as_array().into_iter().flatten() {
        let (Some(lit), Some(cat), Some(dir)) = (
            r["literal"].as_str(),
            r["category"].as_str(),
            r["direction"].as_str(),
        ) else {
            continue;
        };
        let ty = match (cat, dir) {
            (_, "TERMINATE") => "TERM",
            (_, "PSEUDO") => "PSEUDO",
            ("NEGATED_EXISTENCE", "BACKWARD") => "NEG_POST",
            ("NEGATED_EXISTENCE", _) => "NEG_PRE",
            ("POSSIBLE_EXISTENCE" | "HYPOTHETICAL", "BACKWARD") => "HYPO_POST",
            ("POSSIBLE_EXISTENCE" | "HYPOTHETICAL", _) => "HYPO_PRE",
            ("HISTORICAL", _) => "HIST_PRE",
            ("FAMILY", _) => "FAM_PRE",
            _ => continue,
        };
        rows.insert((lit.to_lowercase(), ty.to_string()));
    }
    let mut s = String::from("# derived by `fhirscribe clinical build` from negspacy termsets (MIT) and medspacy ConText rules (MIT)\n");
    for (t, ty) in &rows {
        s.push_str(&format!("{t}\t{ty}\n"));
    }
    let n = write(&out.join("context_triggers.tsv"), &s)?;
    rep.lines.push(format!(
        "wrote {} ({} rows, {n} bytes)",
        out.join("context_triggers.tsv").display(),
        rows.len()
    ));
    Ok(())
}
