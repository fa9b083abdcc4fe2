//! Fact recall: the share of a gold note's concepts (terms of the shared entity lexicons, matched
//! on ROUGE tokens) that occur in the generated note.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Result};

use super::fallback::builtin_terms;
use super::rouge::rouge_tokens;

/// Multi-word terms matched greedily (longest first) on `rouge_tokens`.
#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    terms: HashMap<String, Vec<Vec<String>>>,
    count: usize,
}

/// Common words that also occur as terms in the vocabularies (drug synonyms such as "today").
const LEXICON_STOP: &[&str] = &[
    "the",
    "and",
    "for",
    "with",
    "that",
    "this",
    "have",
    "has",
    "was",
    "were",
    "are",
    "not",
    "but",
    "you",
    "your",
    "his",
    "her",
    "she",
    "him",
    "they",
    "them",
    "their",
    "will",
    "would",
    "can",
    "could",
    "today",
    "time",
    "well",
    "good",
    "back",
    "just",
    "like",
    "also",
    "over",
    "about",
    "into",
    "some",
    "more",
    "most",
    "other",
    "one",
    "two",
    "three",
    "four",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "left",
    "right",
    "plan",
    "care",
    "note",
    "normal",
    "water",
    "rest",
    "sugar",
    "all",
    "any",
    "has",
    "had",
    "may",
    "ice",
    "heat",
    "sleep",
    "walk",
    "work",
    "home",
    "test",
    "level",
    "dose",
    "daily",
    "use",
    "medication",
    "medications",
    "medicine",
    "patient",
    "doctor",
    "follow",
    "history",
    "mild",
    "will",
    "able",
    "since",
    "still",
    "then",
    "there",
    "here",
    "when",
    "what",
    "which",
    "who",
    "out",
    "off",
    "both",
    "each",
    "much",
    "many",
    "very",
    "really",
    "going",
    "want",
    "take",
    "help",
    "see",
    "get",
    "make",
    "feel",
    "felt",
    "said",
    "know",
    "think",
    "good",
    "bad",
    "new",
    "old",
    "last",
    "first",
    "next",
    "yes",
    "okay",
    "exam",
    "results",
    "result",
    "reports",
    "report",
    "states",
    "notes",
    "due",
    "recent",
    "recently",
    "current",
    "start",
    "stop",
    "continue",
    "increase",
    "decrease",
    "order",
    "refer",
    "return",
    "call",
    "check",
];

impl Lexicon {
    pub fn from_terms<I: IntoIterator<Item = S>, S: AsRef<str>>(terms: I) -> Self {
        let mut me = Self::default();
        for t in terms {
            me.add(t.as_ref());
        }
        me
    }

    fn add(&mut self, term: &str) {
        let toks = rouge_tokens(term);
        if toks.is_empty() || toks.len() > 6 {
            return;
        }
        if toks.len() == 1 && (toks[0].len() < 4 || LEXICON_STOP.contains(&toks[0].as_str())) {
            return;
        }
        if toks.iter().all(|t| t.chars().all(|c| c.is_ascii_digit())) {
            return;
        }
        let list = self.terms.entry(toks[0].clone()).or_default();
        if !list.contains(&toks) {
            list.push(toks);
            self.count += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entity lexicons of `vocab_dir` (the shared `vocab/` folder): MedWER terms, Disease
    /// Ontology labels and symptoms, RxNorm drug synonyms, plus [`BUILTIN_TERMS`](super::fallback::BUILTIN_TERMS). Missing
    /// files are skipped; an empty result is an error.
    pub fn load(vocab_dir: &Path) -> Result<Self> {
        let mut me = Self::default();
        for (_, _, t) in builtin_terms() {
            me.add(t);
        }
        let read = |p: &str| std::fs::read_to_string(vocab_dir.join(p)).ok();
        if let Some(t) = read("medwer-termlist/medical_terms.txt") {
            for l in t.lines().filter(|l| !l.starts_with('#')) {
                me.add(l);
            }
        }
        if let Some(t) = read("disease-ontology/HumanDO.tsv") {
            for l in t.lines().skip(1) {
                if let Some(label) = l.split('\t').nth(1) {
                    me.add(label.trim_matches('"'));
                }
            }
        }
        if let Some(t) = read("disease-ontology/disease-symptom.tsv") {
            for l in t.lines().skip(1) {
                if let Some(label) = l.split('\t').nth(3) {
                    me.add(label);
                }
            }
        }
        if let Some(t) = read("rxnorm-merged/drug_synonyms.tsv") {
            for l in t.lines().skip(1) {
                let mut f = l.split('\t');
                if let (Some(syn), Some(_), Some(_), Some(name)) =
                    (f.next(), f.next(), f.next(), f.next())
                {
                    me.add(syn);
                    me.add(name);
                }
            }
        }
        if me.count <= builtin_terms().count() {
            bail!(
                "no entity lexicon found under {} (expected medwer-termlist/, disease-ontology/, rxnorm-merged/)",
                vocab_dir.display()
            );
        }
        Ok(me)
    }

    /// Distinct terms found in `text` (greedy longest match, left to right).
    pub fn concepts(&self, text: &str) -> Vec<Vec<String>> {
        let toks = rouge_tokens(text);
        let mut out: Vec<Vec<String>> = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let best = self.terms.get(&toks[i]).and_then(|cands| {
                cands
                    .iter()
                    .filter(|c| toks.len() - i >= c.len() && toks[i..i + c.len()] == c[..])
                    .max_by_key(|c| c.len())
            });
            match best {
                Some(c) => {
                    if !out.contains(c) {
                        out.push(c.clone());
                    }
                    i += c.len();
                }
                None => i += 1,
            }
        }
        out
    }
}

/// Share of the reference's concepts that occur (as token sequences) in the prediction;
/// `None` when the reference has none.
pub fn fact_recall(lexicon: &Lexicon, prediction: &str, reference: &str) -> Option<f64> {
    let gold = lexicon.concepts(reference);
    if gold.is_empty() {
        return None;
    }
    let pred = rouge_tokens(prediction);
    let found = gold
        .iter()
        .filter(|c| pred.windows(c.len()).any(|w| w == &c[..]))
        .count();
    Some(found as f64 / gold.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_longest_match_and_recall() {
        let lex = Lexicon::from_terms(["chest pain", "pain", "lisinopril", "type 2 diabetes"]);
        let c = lex.concepts("Chest pain and type 2 diabetes; lisinopril. Pain.");
        assert_eq!(c.len(), 4);
        let r = fact_recall(
            &lex,
            "Denies chest pain. Lisinopril 10 mg.",
            "Chest pain. Lisinopril. Type 2 diabetes.",
        )
        .unwrap();
        assert!((r - 2.0 / 3.0).abs() < 1e-12);
    }
}
