//! `eval notes`: the note stage on ACI-BENCH. Each encounter's dialogue goes through an analyzer
//! (the clinical stage, or the [`super::fallback`] baseline) and [`crate::note`]'s generator;
//! the note as written (after the runtime evidence drop) is scored with ROUGE against the gold
//! note and its four divisions, with fact recall, and the checker's report on what the generator
//! produced before the drop is kept, with each failing sentence and its reason
//! (`eval notes --show-failures`). The checker itself is the product's [`crate::note::support`].

use std::path::Path;

use anyhow::Result;

use super::aci::{dialogue_to_conversation, read_aci_bench, DIVISIONS};
use super::facts::{fact_recall, Lexicon};
use super::register::{either_count, flagged_sentences, RegisterCounts};
use super::rouge::{rouge, rouge_n, rouge_tokens, RougeScores};
use crate::healthscribe::{ClinicalDocumentation, Conversation, NoteSectionName};
use crate::note::support::{check_support, SupportReport};
use crate::note::{generate_with_report, render_markdown, render_text, NoteContext, Template};

/// Held-out part of ACI-BENCH train: every fifth encounter in file order (the 5th, 10th, …),
/// kept for measurement only while the note generator is tuned on the rest (`train-dev`),
/// valid and test-1 never being tuned on per item either. Named `train-heldout` on the command
/// line.
pub const HELD_OUT_SPLIT: &str = "train-heldout";
/// The rest of ACI-BENCH train, for development.
pub const DEV_SPLIT: &str = "train-dev";

/// Reads a split, `train-heldout` and `train-dev` being the two parts of train.
fn read_split(dir: &Path, split: &str) -> Result<Vec<super::aci::AciEncounter>> {
    let part = match split {
        HELD_OUT_SPLIT => Some(true),
        DEV_SPLIT => Some(false),
        _ => None,
    };
    let all = read_aci_bench(dir, if part.is_some() { "train" } else { split })?;
    Ok(match part {
        None => all,
        Some(held) => all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| (i % 5 == 4) == held)
            .map(|(_, e)| e)
            .collect(),
    })
}

/// Which ACI-BENCH division a note section counts towards (H&P and SOAP section names).
pub fn division_of(section: &NoteSectionName) -> Option<usize> {
    use NoteSectionName as N;
    match section {
        N::ChiefComplaint
        | N::HistoryOfPresentIllness
        | N::ReviewOfSystems
        | N::PastMedicalHistory
        | N::PastFamilyHistory
        | N::PastSocialHistory
        | N::Subjective => Some(0),
        N::PhysicalExamination => Some(1),
        N::DiagnosticTesting => Some(2),
        N::Assessment | N::Plan => Some(3),
        _ => None,
    }
}

/// Per-encounter figures.
#[derive(Debug, Clone)]
pub struct AciNoteResult {
    pub id: String,
    pub full: RougeScores,
    pub divisions: [RougeScores; 4],
    /// The checker on the note as written (after the runtime drop).
    pub support: SupportReport,
    /// The checker on what the generator produced; its failures are the dropped sentences.
    pub generated: SupportReport,
    pub fact_recall: Option<f64>,
    pub sentences: usize,
    pub generate_micros: u128,
    /// The generated note as plain text.
    pub text: String,
    /// The generated note as Markdown, and as written (documentation JSON).
    pub markdown: String,
    pub doc: ClinicalDocumentation,
    /// Register figures of the generated note and of the gold note.
    pub register: RegisterCounts,
    pub register_either: usize,
    pub gold_register: RegisterCounts,
    pub gold_register_either: usize,
    /// ROUGE-1 precision and recall, and the note's and the gold note's length in ROUGE
    /// tokens (what a change in ROUGE-1 F1 comes from).
    pub rouge1_pr: (f64, f64),
    pub tokens: (usize, usize),
}

/// Averages over a split.
#[derive(Debug, Clone)]
pub struct AciReport {
    pub split: String,
    pub notes: Vec<AciNoteResult>,
    pub full: RougeScores,
    pub divisions: [RougeScores; 4],
    /// Support rate of the written notes (100% with the runtime check).
    pub support_rate: f64,
    pub sentences: usize,
    pub supported: usize,
    /// Sentences the generator produced, and how many of them the runtime check dropped.
    pub generated_sentences: usize,
    pub dropped: usize,
    pub fact_recall: Option<f64>,
    /// Register figures summed over the split, ours and the gold notes'.
    pub register: RegisterCounts,
    pub register_either: usize,
    pub gold_register: RegisterCounts,
    pub gold_register_either: usize,
}

impl AciReport {
    /// Writes each note as `ID.md` (Markdown, the EHR rendering) and `ID.json` (the
    /// documentation as written, with its evidence links) into `dir`.
    pub fn write_notes(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        for n in &self.notes {
            std::fs::write(dir.join(format!("{}.md", n.id)), &n.markdown)?;
            std::fs::write(
                dir.join(format!("{}.json", n.id)),
                serde_json::to_string_pretty(&n.doc)? + "\n",
            )?;
        }
        Ok(())
    }

    /// Each sentence the generator produced that the checker rejected (and the runtime check
    /// dropped), with its encounter, section and reason; then the totals.
    pub fn failures_text(&self) -> String {
        let mut s = String::new();
        for n in &self.notes {
            for f in &n.generated.failures {
                s += &format!(
                    "{} [{}] {:?} -- {}\n",
                    n.id, f.section, f.sentence, f.reason
                );
            }
        }
        s += &format!(
            "{} of {} generated sentences failed the evidence check and were dropped\n",
            self.dropped, self.generated_sentences
        );
        s
    }

    /// Each sentence of our notes that the register rules flag (filler, broken agreement),
    /// with its encounter; for development sets only (it prints the notes' text).
    pub fn register_text(&self) -> String {
        let mut s = String::new();
        for n in &self.notes {
            for (sentence, filler, agreement) in flagged_sentences(&n.text) {
                let what = match (filler, agreement) {
                    (true, true) => "filler+agreement",
                    (true, false) => "filler",
                    _ => "agreement",
                };
                s += &format!("{} [{what}] {sentence}\n", n.id);
            }
        }
        s
    }

    /// A table for humans, ROUGE as percentages like the paper.
    pub fn to_text(&self, analyzer_label: &str) -> String {
        let row = |name: &str, r: &RougeScores| {
            format!(
                "{name:<22} {:>7.2} {:>7.2} {:>7.2} {:>9.2}\n",
                100.0 * r.rouge1,
                100.0 * r.rouge2,
                100.0 * r.rouge_l,
                100.0 * r.rouge_lsum
            )
        };
        let mut s = format!(
            "ACI-BENCH {} ({} encounters), analyzer: {analyzer_label}\n{:<22} {:>7} {:>7} {:>7} {:>9}\n",
            self.split,
            self.notes.len(),
            "",
            "ROUGE-1",
            "ROUGE-2",
            "ROUGE-L",
            "ROUGE-Lsum"
        );
        s += &row("full note", &self.full);
        let n = self.notes.len().max(1) as f64;
        let mean = |f: &dyn Fn(&AciNoteResult) -> f64| self.notes.iter().map(f).sum::<f64>() / n;
        s += &format!(
            "ROUGE-1 precision {:.2}, recall {:.2}; words per note {:.0} (gold notes {:.0})\n",
            100.0 * mean(&|x| x.rouge1_pr.0),
            100.0 * mean(&|x| x.rouge1_pr.1),
            mean(&|x| x.tokens.0 as f64),
            mean(&|x| x.tokens.1 as f64),
        );
        for (k, d) in DIVISIONS.iter().enumerate() {
            s += &row(d, &self.divisions[k]);
        }
        s += &format!(
            "evidence support rate  {:.2}% ({} of {} sentences written, independent checker)\n",
            100.0 * self.support_rate,
            self.supported,
            self.sentences
        );
        s += &format!(
            "generator support      {:.2}% ({} of {} generated sentences dropped by the runtime check)\n",
            100.0 * (self.generated_sentences - self.dropped) as f64
                / self.generated_sentences.max(1) as f64,
            self.dropped,
            self.generated_sentences
        );
        match self.fact_recall {
            Some(f) => {
                s += &format!(
                "fact recall            {:.2}% (gold-note lexicon concepts found in our note)\n",
                100.0 * f
            )
            }
            None => s += "fact recall            n/a (no lexicon)\n",
        }
        s += &format!(
            "register (ours)        {}\n",
            self.register.line(self.register_either)
        );
        s += &format!(
            "register (gold notes)  {}\n",
            self.gold_register.line(self.gold_register_either)
        );
        s
    }
}

/// Generates a note for every encounter of `split`, after `analyzer` has added sections and
/// insights, and scores it. `lexicon` enables fact recall.
pub fn evaluate_aci_bench(
    dir: &Path,
    split: &str,
    template: &Template,
    analyzer: &dyn Fn(&mut Conversation),
    lexicon: Option<&Lexicon>,
) -> Result<AciReport> {
    let encounters = read_split(dir, split)?;
    let mut notes = Vec::new();
    for e in &encounters {
        let mut conv = dialogue_to_conversation(&e.id, &e.dialogue);
        analyzer(&mut conv);
        let ctx = NoteContext {
            pronouns: e.pronouns,
        };
        let t0 = std::time::Instant::now();
        let (doc, generated) = generate_with_report(&conv, template, &ctx);
        let generate_micros = t0.elapsed().as_micros();
        let text = render_text(&doc, template);
        let mut div_text: [String; 4] = Default::default();
        for s in &doc.sections {
            if let Some(k) = division_of(&s.section_name) {
                let one = ClinicalDocumentation {
                    sections: vec![s.clone()],
                    session_id: None,
                    extensions: None,
                };
                div_text[k].push_str(&render_text(&one, template));
            }
        }
        let mut divisions = [RougeScores::default(); 4];
        for k in 0..4 {
            let pred = if div_text[k].trim().is_empty() {
                "#####EMPTY#####"
            } else {
                div_text[k].as_str()
            };
            divisions[k] = rouge(pred, &e.divisions[k]);
        }
        let support = check_support(&doc, &conv);
        let (ours, gold) = (rouge_tokens(&text), rouge_tokens(&e.note));
        let r1 = rouge_n(&ours, &gold, 1);
        notes.push(AciNoteResult {
            rouge1_pr: (r1.precision, r1.recall),
            tokens: (ours.len(), gold.len()),
            markdown: render_markdown(&doc, template),
            register: RegisterCounts::of_note(&text),
            register_either: either_count(&text),
            gold_register: RegisterCounts::of_note(&e.note),
            gold_register_either: either_count(&e.note),
            doc,
            id: e.id.clone(),
            full: rouge(&text, &e.note),
            divisions,
            fact_recall: lexicon.and_then(|l| fact_recall(l, &text, &e.note)),
            sentences: support.sentences,
            support,
            generated,
            generate_micros,
            text,
        });
    }
    let k = 1.0 / notes.len() as f64;
    let mut full = RougeScores::default();
    let mut divisions = [RougeScores::default(); 4];
    for n in &notes {
        full.add(n.full);
        for (d, s) in divisions.iter_mut().zip(n.divisions) {
            d.add(s);
        }
    }
    let sentences: usize = notes.iter().map(|n| n.support.sentences).sum();
    let supported: usize = notes.iter().map(|n| n.support.supported).sum();
    let generated_sentences: usize = notes.iter().map(|n| n.generated.sentences).sum();
    let dropped: usize = notes
        .iter()
        .map(|n| n.generated.sentences - n.generated.supported)
        .sum();
    let recalls: Vec<f64> = notes.iter().filter_map(|n| n.fact_recall).collect();
    let mut register = RegisterCounts::default();
    let mut gold_register = RegisterCounts::default();
    for n in &notes {
        register.add(n.register);
        gold_register.add(n.gold_register);
    }
    Ok(AciReport {
        register,
        register_either: notes.iter().map(|n| n.register_either).sum(),
        gold_register,
        gold_register_either: notes.iter().map(|n| n.gold_register_either).sum(),
        split: split.to_owned(),
        full: full.scale(k),
        divisions: divisions.map(|d| d.scale(k)),
        support_rate: if sentences == 0 {
            1.0
        } else {
            supported as f64 / sentences as f64
        },
        sentences,
        supported,
        generated_sentences,
        dropped,
        fact_recall: (!recalls.is_empty())
            .then(|| recalls.iter().sum::<f64>() / recalls.len() as f64),
        notes,
    })
}
