//! The independent evidence checker, run on every note sentence before it is written
//! ([`super::generate`]) and on every sentence a language model rewrites ([`super::llm`]).
//!
//! It shares no code with the generator (`build`, [`super::phrasing`]): its own tokenisation and
//! normalisation, its own list of connectives; only word lists come from [`crate::words`]. A
//! sentence is supported when it has at least one evidence link to an existing segment and every
//! word of it is, after the checker's normalisation (contractions, number words, a few unit
//! spellings, `-s` inflections, forms of be/have/do, a stutter written as one hyphenated word —
//! "i-i" is "i"), either in [`CHECKER_CONNECTIVES`] or among
//! the words of the linked segments; and when a condition that the insights mark as negated (in
//! every mention in the linked segments) is only written with a negation word in the sentence,
//! one marked as a family member's with a family word, and one marked hypothetical with a hedge.
//!
//! [`enforce`] drops the sentences that fail and records how many in the documentation's
//! `Extensions.EvidenceCheck` (see [`crate::healthscribe`]); the reasons never leave the process
//! except through [`check_support`] in evaluation.

use std::collections::{HashMap, HashSet};

use crate::healthscribe::{
    ClinicalDocumentation, ClinicalInsight, Conversation, DocumentationExtensions, EntityType,
    EvidenceCheck, TraitName, TranscriptSegment,
};
use crate::words::{self, FAMILY_MEMBERS, HEDGE_WORDS, NEGATION_WORDS, SPOUSES};

/// Words a sentence may use that need not be in its evidence. Kept separate from the
/// generator's list on purpose: a word added there fails here until added here too.
pub const CHECKER_CONNECTIVES: &[&str] = &[
    "patient",
    "the",
    "he",
    "she",
    "they",
    "him",
    "her",
    "them",
    "his",
    "hers",
    "their",
    "theirs",
    "himself",
    "herself",
    "themselves",
    "be",
    "have",
    "do",
    "reports",
    "denies",
    "and",
    "or",
    "of",
    "to",
    "a",
    "an",
    "with",
    "for",
    "on",
    "in",
    "at",
    "will",
    "would",
    "we",
];

/// The checker's own word normalisation: lower case, contractions expanded, number words as
/// digits, unit spellings, then a crude lemma (forms of be/have/do, plural/3rd-person `-s`).
fn checker_words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace('’', "'");
    let mut raw: Vec<String> = Vec::new();
    for w in lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-' || c == '.' || c == '/'))
    {
        let w = w.trim_matches(|c: char| c == '\'' || c == '-' || c == '.' || c == '/');
        if w.is_empty() {
            continue;
        }
        // A written ratio ("142/88", "3/6") is its two spoken numbers ("142 over 88").
        if let Some((a, b)) = w.split_once('/') {
            let numeric =
                |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit() || c == '.');
            if numeric(a) && numeric(b) {
                raw.push(a.to_owned());
                raw.push(b.to_owned());
                continue;
            }
        }
        // A stutter written as one hyphenated word ("i-i", "we-we") is that word.
        if let Some((first, _)) = w.split_once('-') {
            if !first.is_empty() && w.split('-').all(|part| part == first) {
                raw.push(first.to_owned());
                continue;
            }
        }
        // ACI-style split contractions: "do n't", "gon na".
        match w {
            "n't" => {
                // "ca n't", "wo n't".
                match raw.last().map(String::as_str) {
                    Some("ca") => *raw.last_mut().expect("just matched") = "can".into(),
                    Some("wo") => *raw.last_mut().expect("just matched") = "will".into(),
                    _ => {}
                }
                raw.push("not".into());
                continue;
            }
            "s" => continue,
            _ => {}
        }
        let expanded: Vec<&str> = match w {
            "can't" | "cannot" => vec!["can", "not"],
            "won't" => vec!["will", "not"],
            "gonna" => vec!["going", "to"],
            "wanna" => vec!["want", "to"],
            "gotta" => vec!["have", "to"],
            _ => Vec::new(),
        };
        if !expanded.is_empty() {
            raw.extend(expanded.into_iter().map(str::to_owned));
            continue;
        }
        let (stem, suffix) = if let Some(s) = w.strip_suffix("n't") {
            (s, Some("not"))
        } else if let Some(s) = w.strip_suffix("'re") {
            (s, Some("are"))
        } else if let Some(s) = w.strip_suffix("'ve") {
            (s, Some("have"))
        } else if let Some(s) = w.strip_suffix("'ll") {
            (s, Some("will"))
        } else if let Some(s) = w.strip_suffix("'m") {
            (s, Some("am"))
        } else if let Some(s) = w.strip_suffix("'d") {
            (s, Some("would"))
        } else if let Some(s) = w.strip_suffix("'s") {
            (s, None)
        } else {
            (w, None)
        };
        if !stem.is_empty() {
            raw.push(stem.to_owned());
        }
        if let Some(s) = suffix {
            raw.push(s.to_owned());
        }
    }
    // "gon na", "wan na".
    let mut merged: Vec<String> = Vec::with_capacity(raw.len());
    for w in raw {
        match (merged.last().map(String::as_str), w.as_str()) {
            (Some("gon"), "na") => {
                merged.pop();
                merged.push("going".into());
                merged.push("to".into());
            }
            (Some("wan"), "na") => {
                merged.pop();
                merged.push("want".into());
                merged.push("to".into());
            }
            _ => merged.push(w),
        }
    }
    // Number words to digits, "twenty five" → 25.
    let mut out: Vec<String> = Vec::with_capacity(merged.len());
    let mut last_tens: Option<u32> = None;
    for w in merged {
        if let Some(n) = words::number_value(&w) {
            if let (Some(t), true) = (last_tens, n < 10) {
                out.pop();
                out.push((t + n).to_string());
                last_tens = None;
                continue;
            }
            last_tens = (n >= 20 && n % 10 == 0 && n < 100).then_some(n);
            out.push(n.to_string());
            continue;
        }
        last_tens = None;
        out.push(w);
    }
    // Spoken hundreds ("one forty two" → 1, 42) also count as the written number (142).
    let two_digits = |x: &str| x.len() == 2 && x.chars().all(|c| c.is_ascii_digit());
    let hundreds: Vec<String> = out
        .windows(2)
        .filter(|p| matches!(p[0].as_str(), "1" | "2") && two_digits(&p[1]))
        .map(|p| format!("{}{}", p[0], p[1]))
        .collect();
    out.extend(hundreds);
    out.into_iter().map(|w| lemma(&w)).collect()
}

fn lemma(w: &str) -> String {
    let unit = match w {
        "milligrams" | "milligram" | "mg" | "mgs" => Some("mg"),
        "micrograms" | "microgram" | "mcg" => Some("mcg"),
        "milliliters" | "milliliter" | "ml" => Some("ml"),
        "ronchi" | "rhonchi" => Some("rhonchi"),
        "is" | "am" | "are" | "was" | "were" | "be" | "been" | "being" => Some("be"),
        "has" | "have" | "had" | "having" => Some("have"),
        "does" | "do" | "did" | "doing" => Some("do"),
        "goes" => Some("go"),
        _ => None,
    };
    if let Some(u) = unit {
        return u.to_owned();
    }
    if w.len() > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..w.len() - 3]);
    }
    if w.len() > 4
        && (w.ends_with("ches")
            || w.ends_with("shes")
            || w.ends_with("xes")
            || w.ends_with("zes")
            || w.ends_with("sses"))
    {
        return w[..w.len() - 2].to_owned();
    }
    if w.len() > 3
        && w.ends_with('s')
        && !w.ends_with("ss")
        && !w.ends_with("us")
        && !w.ends_with("is")
    {
        return w[..w.len() - 1].to_owned();
    }
    w.to_owned()
}

/// Why one sentence is not supported.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsupported {
    pub section: String,
    pub sentence: String,
    pub reason: String,
}

/// Result of [`check_support`] on one note.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SupportReport {
    pub sentences: usize,
    pub supported: usize,
    pub failures: Vec<Unsupported>,
    /// One per sentence in document order: whether it passed.
    pub verdicts: Vec<bool>,
}

impl SupportReport {
    pub fn rate(&self) -> f64 {
        if self.sentences == 0 {
            1.0
        } else {
            self.supported as f64 / self.sentences as f64
        }
    }
}

/// Checks one sentence against the texts of its linked segments and the insights located in
/// them. `Err` gives the reason.
pub fn check_sentence(
    sentence: &str,
    evidence: &[&str],
    insights: &[&ClinicalInsight],
) -> Result<(), String> {
    if evidence.is_empty() {
        return Err("no evidence links".into());
    }
    let support: HashSet<String> = evidence.iter().flat_map(|e| checker_words(e)).collect();
    let words = checker_words(sentence);
    // A denial ("denies", "no") needs a negative in the evidence; then it may be written in
    // any of the negation words.
    let negative_evidence = support
        .iter()
        .any(|w| NEGATION_WORDS.iter().any(|n| lemma(n) == *w));
    let missing: Vec<&String> = words
        .iter()
        .filter(|w| {
            let allowed = CHECKER_CONNECTIVES.iter().any(|c| lemma(c) == **w)
                || support.contains(*w)
                || (negative_evidence && NEGATION_WORDS.iter().any(|n| lemma(n) == **w));
            !allowed
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "words not in the linked segments: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if words.iter().any(|w| w == "deny") && !negative_evidence {
        return Err("`denies` without a negative answer in the linked segments".into());
    }
    // Entity-level checks: an entity written in the sentence keeps its negation, family and
    // hypothetical status.
    let sentence_words: Vec<String> = words;
    let contains = |needle: &[String]| {
        !needle.is_empty() && sentence_words.windows(needle.len()).any(|w| w == needle)
    };
    let has = |set: &[&str]| {
        sentence_words
            .iter()
            .any(|w| set.iter().any(|s| lemma(s) == *w))
    };
    let mut by_text: HashMap<Vec<String>, Vec<&ClinicalInsight>> = HashMap::new();
    for ins in insights {
        if ins.category != EntityType::MedicalCondition {
            continue;
        }
        for sp in &ins.spans {
            by_text
                .entry(checker_words(&sp.content))
                .or_default()
                .push(ins);
        }
    }
    for (text, mentions) in &by_text {
        if !contains(text) {
            continue;
        }
        let all = |t: TraitName| {
            mentions.iter().all(|m| {
                m.extensions
                    .as_ref()
                    .is_some_and(|e| e.traits.iter().any(|x| x.name == t))
            })
        };
        if all(TraitName::Negation)
            && !has(NEGATION_WORDS)
            && !sentence_words.iter().any(|w| w == "not")
        {
            return Err(format!(
                "`{}` is negated in the evidence but asserted",
                text.join(" ")
            ));
        }
        if all(TraitName::PertainsToFamily) && !has(FAMILY_MEMBERS) && !has(SPOUSES) {
            return Err(format!(
                "`{}` is about a family member but the sentence names none",
                text.join(" ")
            ));
        }
        if all(TraitName::Hypothetical) && !has(HEDGE_WORDS) && !has(NEGATION_WORDS) {
            return Err(format!("`{}` is hypothetical but asserted", text.join(" ")));
        }
    }
    Ok(())
}

/// Checks every sentence of `doc` against `conv`.
pub fn check_support(doc: &ClinicalDocumentation, conv: &Conversation) -> SupportReport {
    let by_id: HashMap<&str, &TranscriptSegment> = conv
        .transcript_segments
        .iter()
        .map(|s| (s.segment_id.as_str(), s))
        .collect();
    let mut report = SupportReport::default();
    for section in &doc.sections {
        for s in &section.summary {
            report.sentences += 1;
            let ids: Vec<&str> = s
                .evidence_links
                .iter()
                .map(|l| l.segment_id.as_str())
                .collect();
            let result = if let Some(bad) = ids.iter().find(|id| !by_id.contains_key(*id)) {
                Err(format!("evidence link to unknown segment {bad}"))
            } else {
                let texts: Vec<&str> = ids.iter().map(|id| by_id[id].content.as_str()).collect();
                let insights: Vec<&ClinicalInsight> = conv
                    .clinical_insights
                    .iter()
                    .filter(|i| {
                        i.spans
                            .iter()
                            .any(|sp| ids.contains(&sp.segment_id.as_str()))
                    })
                    .collect();
                check_sentence(&s.summarized_segment, &texts, &insights)
            };
            report.verdicts.push(result.is_ok());
            match result {
                Ok(()) => report.supported += 1,
                Err(reason) => report.failures.push(Unsupported {
                    section: section.section_name.as_str().to_owned(),
                    sentence: s.summarized_segment.clone(),
                    reason,
                }),
            }
        }
    }
    report
}

/// Drops every sentence of `doc` that [`check_support`] rejects (and sections left empty),
/// records the counts in `Extensions.EvidenceCheck`, and returns the report of the note as it
/// was given, with the failures.
pub fn enforce(
    doc: &ClinicalDocumentation,
    conv: &Conversation,
) -> (ClinicalDocumentation, SupportReport) {
    let report = check_support(doc, conv);
    let mut out = doc.clone();
    let mut k = 0;
    for section in &mut out.sections {
        section.summary.retain(|_| {
            let keep = report.verdicts[k];
            k += 1;
            keep
        });
    }
    out.sections.retain(|s| !s.summary.is_empty());
    let ext = out
        .extensions
        .get_or_insert_with(DocumentationExtensions::default);
    ext.evidence_check = Some(EvidenceCheck {
        sentences: report.sentences,
        dropped: report.sentences - report.supported,
    });
    (out, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::healthscribe::{EntitySubType, InsightExtensions, InsightType, Span, Trait};

    #[test]
    fn checker_accepts_supported_and_rejects_added_facts() {
        let seg =
            "um , i've had this left hip pain for , like , three weeks . it's worse with stairs .";
        assert!(
            check_sentence("They have had this left hip pain for 3 weeks.", &[seg], &[]).is_ok()
        );
        assert!(check_sentence(
            "He has had left hip pain for 3 weeks, worse with stairs.",
            &[seg],
            &[]
        )
        .is_ok());
        let err =
            check_sentence("He has had right hip pain for 3 weeks.", &[seg], &[]).unwrap_err();
        assert!(err.contains("right"), "{err}");
        let err = check_sentence("Left hip pain for 4 weeks.", &[seg], &[]).unwrap_err();
        assert!(err.contains('4'), "{err}");
        assert!(check_sentence(
            "Lisinopril 10 mg daily.",
            &["lisinopril ten milligrams daily"],
            &[]
        )
        .is_ok());
        // Written ratios are their spoken numbers, and only those.
        let bp = "your blood pressure is one forty two over eighty eight";
        assert!(check_sentence("Blood pressure: 142/88.", &[bp], &[]).is_ok());
        assert!(check_sentence("Blood pressure: 142/90.", &[bp], &[]).is_err());
        assert!(check_sentence("Blood pressure: 188/42.", &[bp], &[]).is_err());
        assert!(check_sentence("We will order an x-ray.", &["let's order an x-ray"], &[]).is_ok());
        assert!(check_sentence("Anything.", &[], &[])
            .unwrap_err()
            .contains("no evidence"));
    }

    fn ins(seg: &str, content: &str, text: &str, traits: &[TraitName]) -> ClinicalInsight {
        let b = content.find(text).unwrap();
        ClinicalInsight {
            attributes: vec![],
            category: EntityType::MedicalCondition,
            insight_id: "i".into(),
            insight_type: InsightType::ClinicalEntity,
            spans: vec![Span::from_char_range(seg, content, b, b + text.len()).unwrap()],
            entity_type: EntitySubType::DxName,
            extensions: Some(InsightExtensions {
                traits: traits
                    .iter()
                    .map(|&name| Trait { name, score: 0.9 })
                    .collect(),
                codes: vec![],
                score: None,
            }),
        }
    }

    #[test]
    fn a_hyphenated_stutter_is_its_word() {
        let seg = "on physical examination , i-i do hear a slight murmur .";
        assert!(check_sentence("I do hear a slight murmur.", &[seg], &[]).is_ok());
        // Only a repetition: the parts of another hyphenated word are not words of it.
        assert!(check_sentence("I hear a murmur.", &["we-i hear a murmur"], &[]).is_err());
    }

    #[test]
    fn checker_keeps_negation_family_and_hypotheticals() {
        let q = "any chest pain ?";
        let a = "no .";
        let neg = ins("s1", q, "chest pain", &[TraitName::Negation]);
        assert!(check_sentence("Denies chest pain.", &[q, a], &[&neg]).is_ok());
        let err = check_sentence("Chest pain.", &[q, a], &[&neg]).unwrap_err();
        assert!(err.contains("negated"), "{err}");

        let f = "my mother had breast cancer";
        let fam = ins("s2", f, "breast cancer", &[TraitName::PertainsToFamily]);
        assert!(check_sentence("Her mother had breast cancer.", &[f], &[&fam]).is_ok());
        assert!(check_sentence("Had breast cancer.", &[f], &[&fam])
            .unwrap_err()
            .contains("family"));

        let h = "if you get a fever take tylenol";
        let hyp = ins("s3", h, "fever", &[TraitName::Hypothetical]);
        assert!(check_sentence("If they get a fever take tylenol.", &[h], &[&hyp]).is_ok());
        assert!(check_sentence("They get a fever.", &[h], &[&hyp])
            .unwrap_err()
            .contains("hypothetical"));
    }
}
