//! Clinical understanding stage: speaker turns → section per turn, clinical entities with
//! Comprehend Medical categories/types, traits, attributes, and ICD-10-CM / RxNorm codes.
//!
//! Architecture invariant: typed input → typed output; no HTTP, storage, FHIR or HealthScribe
//! serde knowledge here. All data the stage needs at run time is committed under
//! `models/clinical/` and `mappings/clinical/` and compiled into the binary (`include_str!`); the
//! shared datasets are read only by the lab (`lab::train::clinical` builds that data,
//! `lab::clinical` evaluates the stage).
//!
//! ```
//! use fhirscribe::clinical::{analyze, Role, Turn};
//! let out = analyze(&[
//!     Turn::new("0", Role::Clinician, "Any chest pain?"),
//!     Turn::new("1", Role::Patient, "No."),
//! ]);
//! assert!(out[0].entities[0].has_trait(fhirscribe::clinical::Trait::NEGATION));
//! ```

pub mod entities;
pub mod lexicon;
pub mod matcher;
pub mod sections;
pub mod text;
pub mod traits;
pub mod types;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use types::*;

static SECTION_MODEL_TSV: &str = include_str!("../../models/clinical/sections.tsv");

/// The committed data files, compiled in.
pub fn committed_sources() -> lexicon::LexiconSources<'static> {
    lexicon::LexiconSources {
        conditions: include_str!("../../mappings/clinical/conditions.tsv"),
        drugs: include_str!("../../mappings/clinical/drugs.tsv"),
        team: include_str!("../../mappings/clinical/team_terms.tsv"),
        icd_names: include_str!("../../mappings/clinical/icd10cm_names.tsv"),
        rx_names: include_str!("../../mappings/clinical/rxnorm_names.tsv"),
        scd: include_str!("../../mappings/clinical/rxnorm_scd.tsv"),
        common_words: include_str!("../../mappings/clinical/common_words.txt"),
    }
}

/// Whether `word` is an everyday conversational word (`mappings/clinical/common_words.txt`:
/// seen ≥ 3 times in MTS-Dialog train), after the stage's lowercasing and plural folding. The
/// ASR custom vocabulary uses it too: everyday words are never turned into a term.
pub fn is_common_word(word: &str) -> bool {
    static W: OnceLock<std::collections::HashSet<String>> = OnceLock::new();
    W.get_or_init(|| lexicon::parse_common_words(committed_sources().common_words))
        .contains(&text::fold_token(&word.to_lowercase()))
}

static TRIGGERS_TSV: &str = include_str!("../../mappings/clinical/context_triggers.tsv");

/// The committed section model (parsed once).
pub fn section_model() -> &'static sections::SectionModel {
    static M: OnceLock<sections::SectionModel> = OnceLock::new();
    M.get_or_init(|| {
        sections::SectionModel::from_tsv(SECTION_MODEL_TSV)
            .expect("committed models/clinical/sections.tsv parses")
    })
}

/// Everything the stage needs, loaded once.
pub struct Analyzer {
    pub lexicons: lexicon::Lexicons,
    pub patterns: entities::Patterns,
    pub rules: traits::ContextRules,
    pub model: &'static sections::SectionModel,
    /// Time taken to load the lexicons and model.
    pub load_time: Duration,
}

impl Analyzer {
    /// Loads the committed data (≈ the start-up cost reported by the benchmark).
    pub fn load() -> Analyzer {
        let t = Instant::now();
        let model = section_model();
        let lexicons = lexicon::Lexicons::from_sources(&committed_sources());
        let patterns = entities::Patterns::new();
        let rules = traits::ContextRules::from_tsv(TRIGGERS_TSV);
        Analyzer {
            lexicons,
            patterns,
            rules,
            model,
            load_time: t.elapsed(),
        }
    }

    /// Entities of one text, without sections or cross-turn traits (used by the CoNLL eval).
    pub fn entities_of(&self, text: &str) -> Vec<Entity> {
        let turn = Turn::new("0", Role::Unknown, text);
        let mut found = vec![entities::extract(&self.lexicons, &self.patterns, text)];
        traits::apply(
            &self.rules,
            std::slice::from_ref(&turn),
            &[Section::SUBJECTIVE],
            &mut found,
        );
        found
            .pop()
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.entity)
            .collect()
    }

    /// Analyses a conversation: one [`SegmentAnalysis`] per input turn, in order.
    pub fn analyze(&self, turns: &[Turn]) -> Vec<SegmentAnalysis> {
        let pairs: Vec<(Role, &str)> = turns.iter().map(|t| (t.role, t.text.as_str())).collect();
        let groups = self.model.decode(&pairs);
        let mut found: Vec<Vec<entities::Found>> = turns
            .iter()
            .map(|t| entities::extract(&self.lexicons, &self.patterns, &t.text))
            .collect();
        let mut sections = Vec::with_capacity(turns.len());
        let mut scores = Vec::with_capacity(turns.len());
        for (i, t) in turns.iter().enumerate() {
            let (best, p) = groups[i];
            let clinical = found[i].iter().any(|f| {
                matches!(
                    f.entity.category,
                    Category::MEDICAL_CONDITION
                        | Category::MEDICATION
                        | Category::TEST_TREATMENT_PROCEDURE
                )
            });
            let st = sections::small_talk_score(&t.text);
            if st >= 0.5 && !clinical {
                sections.push(Section::OTHER);
                scores.push(st);
            } else {
                sections.push(sections::group_section(best));
                scores.push(p);
            }
        }
        traits::drop_vaccine_diseases(turns, &mut found);
        traits::apply(&self.rules, turns, &sections, &mut found);
        turns
            .iter()
            .zip(found)
            .enumerate()
            .map(|(i, (t, f))| SegmentAnalysis {
                segment_id: t.segment_id.clone(),
                section: sections[i],
                section_score: scores[i],
                entities: f.into_iter().map(|x| x.entity).collect(),
            })
            .collect()
    }
}

/// The shared analyzer (loaded on first use): a convenience for tests, docs and the lab. The
/// product loads its own into the `Engine` and passes it down (`annotate::annotate_with`).
pub fn analyzer() -> &'static Analyzer {
    static A: OnceLock<Analyzer> = OnceLock::new();
    A.get_or_init(Analyzer::load)
}

/// Analyses a conversation with the shared analyzer.
pub fn analyze(turns: &[Turn]) -> Vec<SegmentAnalysis> {
    analyzer().analyze(turns)
}
