//! Run-time lexicons: the derived files in `mappings/clinical/` plus the team-written
//! `team_terms.tsv`, compiled into one token-level Aho–Corasick matcher.

use std::collections::HashMap;

use super::matcher::TokenMatcher;
use super::text::{fold_token, normalize_phrase};
use super::types::{Category, EntityType};

/// Symptom/sign vs diagnosis, for the SIGN / SYMPTOM / DIAGNOSIS traits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CondKind {
    Symptom,
    Diagnosis,
    NotACondition,
}

/// One lexicon entry.
#[derive(Debug, Clone)]
pub struct LexEntry {
    pub category: Category,
    pub entity_type: EntityType,
    pub code: Option<String>,
    pub kind: CondKind,
    pub score: f32,
    /// Needs a determiner/possessive before it ("my back").
    pub needs_context: bool,
}

/// A single-ingredient clinical drug (RxNorm SCD).
#[derive(Debug, Clone)]
pub struct Scd {
    pub strength: f64,
    pub unit: String,
    pub form: String,
    pub rxcui: String,
}

/// All run-time lexical data.
pub struct Lexicons {
    pub matcher: TokenMatcher,
    pub entries: Vec<LexEntry>,
    pub asr: HashMap<String, String>,
    /// deletion-variant → vocabulary token (tokens of ≥ 7 chars), for one-edit ASR slips
    pub fuzzy: HashMap<String, String>,
    pub icd_names: HashMap<String, String>,
    pub rx_names: HashMap<String, (String, String)>,
    pub scd: HashMap<String, Vec<Scd>>,
    pub common_words: std::collections::HashSet<String>,
}

/// The committed files, in the form `Lexicons::from_sources` reads.
pub struct LexiconSources<'a> {
    pub conditions: &'a str,
    pub drugs: &'a str,
    pub team: &'a str,
    pub icd_names: &'a str,
    pub rx_names: &'a str,
    pub scd: &'a str,
    /// Conversational words (from MTS-Dialog train) that are never fuzzily corrected.
    pub common_words: &'a str,
}

/// The words of `common_words.txt` (folded tokens, one a line, `#` comment lines skipped).
pub fn parse_common_words(src: &str) -> std::collections::HashSet<String> {
    src.lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn rows(s: &str) -> impl Iterator<Item = Vec<&str>> {
    s.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect::<Vec<_>>())
}

fn code_opt(c: &str) -> Option<String> {
    (c != "-" && !c.is_empty()).then(|| c.to_string())
}

/// Unit and number words are never corrected into drug names.
const NEVER_CORRECT: &[&str] = &[
    "milligram",
    "microgram",
    "milliliter",
    "millilitre",
    "kilogram",
    "seventy",
    "seventeen",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "eighteen",
    "nineteen",
    "hundred",
    "thousand",
    "yesterday",
    "tomorrow",
    "morning",
    "evening",
    "tonight",
];

/// Deletion variants of a token (one char removed).
pub fn deletions(w: &str) -> Vec<String> {
    let chars: Vec<char> = w.chars().collect();
    (0..chars.len())
        .map(|i| {
            chars
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| *c)
                .collect()
        })
        .collect()
}

impl Lexicons {
    pub fn from_sources(src: &LexiconSources<'_>) -> Lexicons {
        let mut map: HashMap<String, (u8, LexEntry)> = HashMap::new();
        let mut stop_med: Vec<String> = Vec::new();
        let mut stop_cond: Vec<String> = Vec::new();
        let mut asr = HashMap::new();
        // priority: 0 team, 1 condition, 2 drug
        let mut put = |key: String, prio: u8, e: LexEntry| {
            if key.is_empty() {
                return;
            }
            match map.get(&key) {
                Some((p, _)) if *p <= prio => {}
                _ => {
                    map.insert(key, (prio, e));
                }
            }
        };
        for r in rows(src.team) {
            if r.len() < 4 {
                continue;
            }
            let (cat, ty, term, code) = (r[0], r[1], r[2], r[3]);
            let extra = r.get(4).copied().unwrap_or("");
            match cat {
                "ASR" => {
                    asr.insert(
                        fold_token(&term.to_lowercase()),
                        fold_token(&code.to_lowercase()),
                    );
                }
                "STOP" => {
                    let k = normalize_phrase(term);
                    if ty == "MEDICATION" {
                        stop_med.push(k)
                    } else {
                        stop_cond.push(k)
                    }
                }
                _ => {
                    let (Some(category), Some(entity_type)) =
                        (Category::parse(cat), EntityType::parse(ty))
                    else {
                        continue;
                    };
                    let kind = match (category, extra) {
                        (Category::MEDICAL_CONDITION, "sx") => CondKind::Symptom,
                        (Category::MEDICAL_CONDITION, _) => CondKind::Diagnosis,
                        _ => CondKind::NotACondition,
                    };
                    put(
                        normalize_phrase(term),
                        0,
                        LexEntry {
                            category,
                            entity_type,
                            code: code_opt(code),
                            kind,
                            score: 0.95,
                            needs_context: extra == "ctx",
                        },
                    );
                }
            }
        }
        for r in rows(src.conditions) {
            if r.len() < 3 {
                continue;
            }
            put(
                r[0].to_string(),
                1,
                LexEntry {
                    category: Category::MEDICAL_CONDITION,
                    entity_type: EntityType::DX_NAME,
                    code: code_opt(r[1]),
                    kind: if r[2] == "sx" {
                        CondKind::Symptom
                    } else {
                        CondKind::Diagnosis
                    },
                    score: 0.85,
                    needs_context: false,
                },
            );
        }
        for r in rows(src.drugs) {
            if r.len() < 3 {
                continue;
            }
            put(
                r[0].to_string(),
                2,
                LexEntry {
                    category: Category::MEDICATION,
                    entity_type: if r[2] == "B" {
                        EntityType::BRAND_NAME
                    } else {
                        EntityType::GENERIC_NAME
                    },
                    code: code_opt(r[1]),
                    kind: CondKind::NotACondition,
                    score: 0.9,
                    needs_context: false,
                },
            );
        }
        for k in stop_med {
            if map
                .get(&k)
                .is_some_and(|(p, e)| *p > 0 && e.category == Category::MEDICATION)
            {
                map.remove(&k);
            }
        }
        for k in stop_cond {
            if map
                .get(&k)
                .is_some_and(|(p, e)| *p > 0 && e.category == Category::MEDICAL_CONDITION)
            {
                map.remove(&k);
            }
        }
        let mut keys: Vec<String> = map.keys().cloned().collect();
        keys.sort();
        let entries: Vec<LexEntry> = keys.iter().map(|k| map[k].1.clone()).collect();
        let matcher = TokenMatcher::new(&keys);
        let mut fuzzy = HashMap::new();
        // one-edit correction only towards tokens of team terms, drug names and one-word
        // condition names (where ASR slips matter and the risk of a wrong phrase is small)
        let mut vocab: Vec<&str> = keys
            .iter()
            .filter(|k| map[*k].0 != 1 || !k.contains(' '))
            .flat_map(|k| k.split(' '))
            .filter(|w| w.chars().count() >= 7 && w.chars().all(char::is_alphabetic))
            .collect();
        vocab.sort_unstable();
        vocab.dedup();
        for w in vocab {
            for d in deletions(w) {
                fuzzy.entry(d).or_insert_with(|| w.to_string());
            }
            fuzzy.entry(w.to_string()).or_insert_with(|| w.to_string());
        }
        let icd_names = rows(src.icd_names)
            .filter(|r| r.len() >= 2)
            .map(|r| (r[0].to_string(), r[1].to_string()))
            .collect();
        let rx_names = rows(src.rx_names)
            .filter(|r| r.len() >= 3)
            .map(|r| (r[0].to_string(), (r[1].to_string(), r[2].to_string())))
            .collect();
        let mut scd: HashMap<String, Vec<Scd>> = HashMap::new();
        for r in rows(src.scd) {
            if r.len() < 5 {
                continue;
            }
            if let Ok(v) = r[1].parse() {
                scd.entry(r[0].to_string()).or_default().push(Scd {
                    strength: v,
                    unit: r[2].to_string(),
                    form: r[3].to_string(),
                    rxcui: r[4].to_string(),
                });
            }
        }
        let common_words = parse_common_words(src.common_words);
        Lexicons {
            common_words,
            matcher,
            entries,
            asr,
            fuzzy,
            icd_names,
            rx_names,
            scd,
        }
    }

    /// Corrects a folded token not in the vocabulary: the team's ASR list first, then one edit
    /// (SymSpell-style deletions) against lexicon tokens of ≥ 7 characters. Returns the
    /// replacement and whether it was fuzzy.
    pub fn correct(&self, tok: &str) -> Option<(String, bool)> {
        if let Some(r) = self.asr.get(tok) {
            return Some((r.clone(), false));
        }
        if self.matcher.knows(tok)
            || !(7..=24).contains(&tok.chars().count())
            || !tok.chars().all(char::is_alphabetic)
            || self.common_words.contains(tok)
            || NEVER_CORRECT.iter().any(|w| tok.starts_with(w))
        {
            return None;
        }
        let first = tok.chars().next();
        let ok = |w: &String| w.chars().next() == first;
        if let Some(w) = self.fuzzy.get(tok).filter(|w| ok(w)) {
            return Some((w.clone(), true));
        }
        for d in deletions(tok) {
            if let Some(w) = self.fuzzy.get(&d).filter(|w| ok(w)) {
                return Some((w.clone(), true));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::clinical::analyze;
    use crate::clinical::types::{Category, Role, Turn};

    #[test]
    fn lay_condition_names_of_the_team_lexicon() {
        for (text, name, code) in [
            ("I've had the runs since Sunday.", "the runs", "R19.7"),
            (
                "Are you sick to your stomach?",
                "sick to your stomach",
                "R11.0",
            ),
            ("I can't sleep at night.", "can't sleep", "G47.00"),
            (
                "Any problems with your water works?",
                "water works",
                "R39.9",
            ),
            ("I'm bringing up phlegm.", "phlegm", "R09.3"),
            ("Any coughing up blood?", "coughing up blood", "R04.2"),
            ("My heart's been fluttering.", "fluttering", "R00.2"),
            (
                "Any ringing in your ears?",
                "ringing in your ears",
                "H93.19",
            ),
            ("I get winded on the stairs.", "winded", "R06.02"),
        ] {
            let out = analyze(&[Turn::new("0", Role::Patient, text)]);
            let e = out[0]
                .entities
                .iter()
                .find(|e| e.category == Category::MEDICAL_CONDITION)
                .unwrap_or_else(|| panic!("no condition in {text:?}"));
            assert!(e.text.eq_ignore_ascii_case(name), "{text:?}: {e:?}");
            assert_eq!(
                e.codes.first().map(|c| c.code.as_str()),
                Some(code),
                "{text}"
            );
        }
    }
}
