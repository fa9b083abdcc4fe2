//! Note evaluation: ROUGE, the independent evidence checker, fact recall through entity
//! lexicons, the ACI-BENCH reader and a deliberately simple fallback analyzer.
//!
//! # ROUGE
//! ROUGE-1/2/L F1 as Google's `rouge_score` package computes them with its default tokenizer and
//! no stemming (which is what ACI-BENCH's `evaluate.load('rouge')` uses): lower-case, every run
//! of characters other than `a-z0-9` is a separator. ROUGE-L is the LCS over the whole text;
//! ROUGE-Lsum (summary-level union LCS over newline-separated sentences) is reported as well.
//! Scores are averaged over notes (macro), as ACI-BENCH's script does.
//!
//! # Evidence checker
//! The checker lives in [`super::support`] (it runs in the pipeline); it is re-exported here.
//! [`evaluate_aci_bench`] scores the note as written (after the runtime drop) and keeps the
//! checker's report on what the generator produced before the drop, with each failing sentence
//! and its reason (`eval notes --show-failures`).
//!
//! # ACI-BENCH
//! [`read_aci_bench`] reads `<dir>/<split>.json` (dialogue `src`, note `tgt`), the four
//! `<split>_<division>.json` files and `<split>_metadata.csv` (gender → pronouns). A dialogue
//! becomes a [`Conversation`]: one segment per `[doctor]`/`[patient]` turn (`[patient_guest]` is
//! `PATIENT_1`), no times, no insights; the analyzer passed to [`evaluate_aci_bench`] adds
//! sections and insights. Until the clinical stage is wired in, [`FallbackAnalyzer`] does this
//! with cue words and a small built-in term list.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::healthscribe::{
    ClinicalDocumentation, ClinicalInsight, Conversation, EntitySubType, EntityType,
    InsightExtensions, InsightType, MedicalScribeLanguageCode, NoteSectionName, ParticipantDetails,
    ParticipantRole, Pronouns, SectionDetails, Span, Trait, TraitName, TranscriptSectionName,
    TranscriptSegment,
};

pub use super::support::{
    check_sentence, check_support, SupportReport, Unsupported, CHECKER_CONNECTIVES,
};
use super::{generate_with_report, render_text, NoteContext, Template};

// ---------------------------------------------------------------------------------------------
// ROUGE
// ---------------------------------------------------------------------------------------------

/// `rouge_score`'s default tokenizer: lower-case, split on anything but `a-z0-9`.
pub fn rouge_tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Precision, recall and F1 of one score.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

fn prf(hits: usize, pred: usize, reference: usize) -> Prf {
    let precision = if pred == 0 {
        0.0
    } else {
        hits as f64 / pred as f64
    };
    let recall = if reference == 0 {
        0.0
    } else {
        hits as f64 / reference as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Prf {
        precision,
        recall,
        f1,
    }
}

fn ngrams(t: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut m = HashMap::new();
    if t.len() >= n {
        for w in t.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// ROUGE-N of token sequences.
pub fn rouge_n(pred: &[String], reference: &[String], n: usize) -> Prf {
    let p = ngrams(pred, n);
    let r = ngrams(reference, n);
    let hits: usize = p
        .iter()
        .map(|(g, c)| (*c).min(*r.get(g).unwrap_or(&0)))
        .sum();
    prf(
        hits,
        pred.len().saturating_sub(n - 1),
        reference.len().saturating_sub(n - 1),
    )
}

fn lcs_table(a: &[String], b: &[String]) -> Vec<Vec<u32>> {
    let mut t = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i][j] = if a[i - 1] == b[j - 1] {
                t[i - 1][j - 1] + 1
            } else {
                t[i - 1][j].max(t[i][j - 1])
            };
        }
    }
    t
}

/// ROUGE-L (LCS over the whole sequences).
pub fn rouge_l(pred: &[String], reference: &[String]) -> Prf {
    let t = lcs_table(reference, pred);
    prf(
        t[reference.len()][pred.len()] as usize,
        pred.len(),
        reference.len(),
    )
}

/// Indices into `r` of one LCS of `r` and `c` (the backtrack `rouge_score` uses).
fn lcs_indices(r: &[String], c: &[String]) -> Vec<usize> {
    let t = lcs_table(r, c);
    let (mut i, mut j) = (r.len(), c.len());
    let mut out = Vec::new();
    while i > 0 && j > 0 {
        if r[i - 1] == c[j - 1] {
            out.push(i - 1);
            i -= 1;
            j -= 1;
        } else if t[i - 1][j] > t[i][j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    out.reverse();
    out
}

/// ROUGE-Lsum: summary-level union LCS over newline-separated sentences.
pub fn rouge_lsum(pred: &str, reference: &str) -> Prf {
    let split = |s: &str| -> Vec<Vec<String>> {
        s.split('\n')
            .map(rouge_tokens)
            .filter(|t| !t.is_empty())
            .collect()
    };
    let (rs, cs) = (split(reference), split(pred));
    let m: usize = rs.iter().map(Vec::len).sum();
    let n: usize = cs.iter().map(Vec::len).sum();
    let mut cnt_r: HashMap<&str, usize> = HashMap::new();
    let mut cnt_c: HashMap<&str, usize> = HashMap::new();
    for t in rs.iter().flatten() {
        *cnt_r.entry(t).or_insert(0) += 1;
    }
    for t in cs.iter().flatten() {
        *cnt_c.entry(t).or_insert(0) += 1;
    }
    let mut hits = 0;
    for r in &rs {
        let mut union: Vec<usize> = cs.iter().flat_map(|c| lcs_indices(r, c)).collect();
        union.sort_unstable();
        union.dedup();
        for i in union {
            let tok = r[i].as_str();
            let (cr, cc) = (cnt_r.get(tok).copied(), cnt_c.get(tok).copied());
            if cr.unwrap_or(0) > 0 && cc.unwrap_or(0) > 0 {
                hits += 1;
                *cnt_r.get_mut(tok).expect("counted") -= 1;
                *cnt_c.get_mut(tok).expect("counted") -= 1;
            }
        }
    }
    prf(hits, n, m)
}

/// ROUGE-1/2/L/Lsum F1 of one prediction against one reference.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RougeScores {
    pub rouge1: f64,
    pub rouge2: f64,
    pub rouge_l: f64,
    pub rouge_lsum: f64,
}

pub fn rouge(pred: &str, reference: &str) -> RougeScores {
    let (p, r) = (rouge_tokens(pred), rouge_tokens(reference));
    RougeScores {
        rouge1: rouge_n(&p, &r, 1).f1,
        rouge2: rouge_n(&p, &r, 2).f1,
        rouge_l: rouge_l(&p, &r).f1,
        rouge_lsum: rouge_lsum(pred, reference).f1,
    }
}

impl RougeScores {
    fn add(&mut self, o: RougeScores) {
        self.rouge1 += o.rouge1;
        self.rouge2 += o.rouge2;
        self.rouge_l += o.rouge_l;
        self.rouge_lsum += o.rouge_lsum;
    }
    fn scale(self, k: f64) -> Self {
        Self {
            rouge1: self.rouge1 * k,
            rouge2: self.rouge2 * k,
            rouge_l: self.rouge_l * k,
            rouge_lsum: self.rouge_lsum * k,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexicon and fact recall
// ---------------------------------------------------------------------------------------------

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
    /// Ontology labels and symptoms, RxNorm drug synonyms, plus [`BUILTIN_TERMS`]. Missing
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

// ---------------------------------------------------------------------------------------------
// Fallback analyzer
// ---------------------------------------------------------------------------------------------

/// `(category, type, term)` of the built-in list: common conversational clinical terms, written
/// by the team for the fallback analyzer. Not a terminology.
pub fn builtin_terms() -> impl Iterator<Item = (EntityType, EntitySubType, &'static str)> {
    BUILTIN_TERMS.iter().flat_map(|(cat, typ, list)| {
        list.split('|')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(move |t| (*cat, *typ, t))
    })
}

pub const BUILTIN_TERMS: &[(EntityType, EntitySubType, &str)] = &[
    (
        EntityType::MedicalCondition,
        EntitySubType::DxName,
        "pain|aches|ache|aching|headache|headaches|fever|fevers|chills|cough|coughing|nausea|\
         vomiting|diarrhea|constipation|fatigue|tired|tiredness|dizziness|dizzy|lightheaded|\
         lightheadedness|shortness of breath|short of breath|winded|wheezing|chest pain|\
         palpitations|swelling|swollen|rash|itching|itchy|numbness|numb|tingling|weakness|\
         stiffness|stiff|bleeding|bruising|anxiety|depression|insomnia|weight loss|weight gain|\
         sore throat|congestion|runny nose|sneezing|heartburn|reflux|acid reflux|burning|\
         cramping|cramps|bloating|incontinence|hypertension|high blood pressure|diabetes|\
         type 2 diabetes|type two diabetes|diabetes type 2|prediabetes|asthma|copd|emphysema|\
         arthritis|osteoarthritis|rheumatoid arthritis|gout|migraine|migraines|stroke|\
         heart attack|heart failure|congestive heart failure|atrial fibrillation|afib|cancer|\
         breast cancer|prostate cancer|kidney stone|kidney stones|kidney disease|infection|\
         pneumonia|covid|flu|influenza|cold|sinusitis|sinus infection|bronchitis|uti|\
         urinary tract infection|anemia|hypothyroidism|hyperthyroidism|high cholesterol|\
         hyperlipidemia|cholesterol|obesity|sleep apnea|fracture|sprain|strain|tear|injury|\
         edema|effusion|tenderness|tender|crepitus|murmur|murmurs|rhonchi|ronchi|crackles|rales|\
         erythema|redness|warmth|tendonitis|tendinitis|bursitis|neuropathy|seizure|seizures|\
         syncope|fainting|vertigo|tremor|concussion|laceration|abrasion|ulcer|polyps|hernia|\
         appendicitis|gallstones|pancreatitis|hepatitis|cirrhosis|lupus|psoriasis|eczema|acne|\
         allergies|seasonal allergies|viral syndrome|viral infection|upper respiratory infection|\
         sore|soreness|spasm|spasms|sciatica|back pain|knee pain|hip pain|joint pain|\
         muscle aches|body aches|dyspnea|nocturia|blurry vision|blurred vision|hematuria|\
         blood in the stool|blood in my stool|urinary frequency|frequent urination|\
         chest tightness|tightness|pressure|discomfort|irritation|inflammation|lump|mass|\
         nodule|cyst|wound|blister|bump|numbness and tingling|tingling and numbness|\
         osteoporosis|multiple sclerosis|ms|kidney transplant|transplant|rhinoplasty|\
         depressed|anxious|stress|panic attacks|adhd|bipolar|schizophrenia|ptsd|dementia|\
         memory loss|confusion|dehydration|hypoglycemia|hyperglycemia|neck pain|shoulder pain|\
         abdominal pain|stomach pain|belly pain|foot pain|wrist pain|elbow pain|ankle pain|\
         leg pain|arm pain|hand pain|carpal tunnel|plantar fasciitis|meniscus tear|acl tear|\
         rotator cuff tear|herniated disc|degenerative disc disease|spinal stenosis|\
         chronic kidney disease|ckd|coronary artery disease|cad|peripheral artery disease|\
         dvt|blood clot|pulmonary embolism|aneurysm|arrhythmia|bradycardia|tachycardia|\
         heart murmur|valve|kidney failure|liver disease|fatty liver|ibs|crohn's|colitis|\
         diverticulitis|gerd|ulcerative colitis|celiac|lactose intolerance|food poisoning",
    ),
    (
        EntityType::Medication,
        EntitySubType::GenericName,
        "lisinopril|metformin|ibuprofen|tylenol|acetaminophen|advil|motrin|aspirin|naproxen|\
         aleve|prednisone|amoxicillin|augmentin|azithromycin|z-pack|doxycycline|keflex|\
         cephalexin|ciprofloxacin|cipro|bactrim|albuterol|insulin|lantus|atorvastatin|lipitor|\
         simvastatin|crestor|rosuvastatin|pravastatin|statin|amlodipine|norvasc|losartan|\
         hydrochlorothiazide|hctz|metoprolol|carvedilol|lasix|furosemide|spironolactone|\
         omeprazole|prilosec|pantoprazole|protonix|nexium|pepcid|famotidine|gabapentin|\
         neurontin|lyrica|sertraline|zoloft|lexapro|escitalopram|fluoxetine|prozac|wellbutrin|\
         bupropion|celexa|citalopram|effexor|cymbalta|duloxetine|trazodone|xanax|ativan|\
         klonopin|levothyroxine|synthroid|warfarin|coumadin|eliquis|xarelto|plavix|robitussin|\
         mucinex|flonase|claritin|zyrtec|allegra|benadryl|sudafed|tramadol|oxycodone|norco|\
         percocet|hydrocodone|morphine|meloxicam|mobic|celebrex|flexeril|cyclobenzaprine|\
         muscle relaxant|steroid|steroids|antibiotic|antibiotics|inhaler|tiotropium|spiriva|\
         symbicort|advair|nicotine patch|ozempic|trulicity|jardiance|farxiga|januvia|glipizide|\
         humira|methotrexate|plaquenil|imuran|tacrolimus|prograf|cellcept|allopurinol|colchicine|\
         sumatriptan|imitrex|topamax|flomax|tamsulosin|finasteride|viagra|cialis|zofran|\
         ondansetron|miralax|colace|imodium|vitamin d|calcium|iron|b12|fish oil|multivitamin|\
         melatonin|epipen|nitroglycerin|digoxin|diltiazem|cardizem|entresto|jardiance|\
         lidocaine|cortisone|voltaren|diclofenac|antihistamine|nsaid|nsaids|birth control|\
         fosamax|alendronate|prolia|vaccine|flu shot|tetanus shot",
    ),
    (
        EntityType::TestTreatmentProcedure,
        EntitySubType::TestName,
        "x-ray|x-rays|xray|x ray|chest x-ray|mri|ct scan|cat scan|ct|ultrasound|ekg|ecg|\
         echocardiogram|echo|a1c|hemoglobin a1c|lipid panel|blood work|bloodwork|cbc|cmp|\
         urinalysis|urine culture|urine test|covid test|stress test|colonoscopy|mammogram|\
         biopsy|spirometry|blood pressure|heart rate|pulse|temperature|oxygen saturation|\
         oxygen level|vital signs|vitals|glucose|blood sugar|blood sugars|kidney function|\
         creatinine|potassium|sodium|thyroid|tsh|psa|pap smear|bone density|dexa scan|\
         holter monitor|event monitor|sleep study|pulmonary function test|nerve conduction|\
         emg|lab work|labs|strep test|culture|metabolic panel|liver function|troponin|\
         d-dimer|inr|platelets|white count|hemoglobin|cholesterol level",
    ),
    (
        EntityType::TestTreatmentProcedure,
        EntitySubType::ProcedureName,
        "surgery|injection|cortisone shot|steroid injection|knee replacement|hip replacement|\
         arthroscopy|appendectomy|cholecystectomy|hysterectomy|c-section|angioplasty|stent|\
         bypass|ablation|cardioversion|pacemaker|transplant|biopsy|stitches|sutures|\
         physical therapy|occupational therapy|therapy|psychotherapy|counseling|\
         brace|splint|cast|sling|crutches|ice|heat|stretching|exercises|referral",
    ),
    (
        EntityType::Anatomy,
        EntitySubType::SystemOrganSite,
        "head|neck|chest|back|lower back|upper back|abdomen|stomach|belly|arm|arms|elbow|elbows|\
         wrist|wrists|hand|hands|finger|fingers|thumb|shoulder|shoulders|hip|hips|knee|knees|\
         ankle|ankles|foot|feet|toe|toes|leg|legs|heart|lungs|lung|kidney|kidneys|liver|\
         throat|ear|ears|eye|eyes|skin|joint|joints|spine|calf|thigh|groin|pelvis|bladder|\
         colon|sinuses|nose|mouth|teeth|jaw|face|scalp|muscles|muscle|bone|bones|tendon|\
         ligament|ligaments|meniscus|lower extremities|extremities|lymph nodes",
    ),
    (
        EntityType::BehavioralEnvironmentalSocial,
        EntitySubType::TobaccoUse,
        "smoke|smoking|smoked|smoker|cigarettes|cigarette|tobacco|vape|vaping|chew",
    ),
    (
        EntityType::BehavioralEnvironmentalSocial,
        EntitySubType::AlcoholConsumption,
        "alcohol|drink|drinks|drinking|beer|beers|wine|liquor",
    ),
    (
        EntityType::BehavioralEnvironmentalSocial,
        EntitySubType::RecDrugUse,
        "marijuana|cocaine|drugs|recreational drugs",
    ),
];

/// A deliberately simple stand-in for the clinical stage, for evaluating the note stage before
/// the two are wired together: transcript sections by cue words, entities by a term list with
/// longest match, traits by nearby cue words. Report figures made with it as such.
#[derive(Debug, Clone)]
pub struct FallbackAnalyzer {
    terms: HashMap<String, Vec<(Vec<String>, EntityType, EntitySubType)>>,
}

const TO_OBJECTIVE: &[&str] = &[
    "physical exam",
    "exam",
    "examine",
    "vital signs",
    "vitals",
    "listen to your",
    "take a look",
    "let me look",
    "let me see",
    "look at your",
    "show me the",
    "results",
    "x-ray",
    "your labs",
    "reviewed",
    "press on",
    "blood pressure today",
];
const TO_PLAN: &[&str] = &[
    "assessment",
    "my plan",
    "the plan",
    "first problem",
    "diagnosis",
    "impression",
    "let's talk about",
    "so for your",
    "i want to start",
    "prescribe",
    "i'm going to order",
    "recommend",
    "next steps",
    "treatment",
    "what i think",
    "i believe",
    "it sounds like you have",
    "we'll start",
    "i'd like to start",
    "i'm gonna prescribe",
];

impl Default for FallbackAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

/// Word tokens with char offsets (alphanumerics, inner `'` and `-`).
fn words_with_offsets(s: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_alphanumeric() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || ((chars[i] == '\'' || chars[i] == '-')
                        && i + 1 < chars.len()
                        && chars[i + 1].is_alphanumeric()))
            {
                i += 1;
            }
            out.push((
                start,
                i,
                chars[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else {
            i += 1;
        }
    }
    out
}

impl FallbackAnalyzer {
    pub fn new() -> Self {
        let mut terms: HashMap<String, Vec<(Vec<String>, EntityType, EntitySubType)>> =
            HashMap::new();
        for (cat, typ, t) in builtin_terms() {
            let toks: Vec<String> = words_with_offsets(t).into_iter().map(|w| w.2).collect();
            if let Some(first) = toks.first() {
                terms
                    .entry(first.clone())
                    .or_default()
                    .push((toks, cat, typ));
            }
        }
        Self { terms }
    }

    /// Sets every segment's section and replaces the insights.
    pub fn analyze(&self, conv: &mut Conversation) {
        let mut state = TranscriptSectionName::Subjective;
        let n = conv.transcript_segments.len();
        let mut insights = Vec::new();
        let mut next_id = 0usize;
        for (k, seg) in conv.transcript_segments.iter_mut().enumerate() {
            let lower = seg.content.to_lowercase();
            let clinician = seg.participant_details.participant_role.role
                == crate::healthscribe::MedicalScribeParticipantRole::Clinician;
            // Sections move forward only: subjective → objective → assessment and plan.
            if clinician && k > n / 10 {
                if state != TranscriptSectionName::AssessmentAndPlan
                    && TO_PLAN.iter().any(|c| lower.contains(c))
                    && (state == TranscriptSectionName::Objective || k > n / 3)
                {
                    state = TranscriptSectionName::AssessmentAndPlan;
                } else if state == TranscriptSectionName::Subjective
                    && TO_OBJECTIVE.iter().any(|c| lower.contains(c))
                {
                    state = TranscriptSectionName::Objective;
                }
            }
            let words = words_with_offsets(&seg.content);
            let mut found = Vec::new();
            let mut i = 0;
            while i < words.len() {
                let best = self.terms.get(&words[i].2).and_then(|c| {
                    c.iter()
                        .filter(|(t, _, _)| {
                            words.len() - i >= t.len()
                                && t.iter().zip(&words[i..]).all(|(a, b)| *a == b.2)
                        })
                        .max_by_key(|(t, _, _)| t.len())
                });
                match best {
                    Some((t, cat, typ)) => {
                        found.push((i, i + t.len(), *cat, *typ));
                        i += t.len();
                    }
                    None => i += 1,
                }
            }
            let short = words.len() <= 4 && found.is_empty();
            seg.section_details.section_name = if short && k < n / 10 {
                TranscriptSectionName::Other
            } else {
                state
            };
            // Sentence bounds (char offsets) for trait cues.
            let chars: Vec<char> = seg.content.chars().collect();
            let sentence_of = |pos: usize| -> (usize, usize) {
                let mut a = pos;
                while a > 0 && !matches!(chars[a - 1], '.' | '?' | '!') {
                    a -= 1;
                }
                let mut b = pos;
                while b < chars.len() && !matches!(chars[b], '.' | '?' | '!') {
                    b += 1;
                }
                (a, b)
            };
            for (wa, wb, cat, typ) in found {
                let (cs, ce) = (words[wa].0, words[wb - 1].1);
                let Ok(span) = Span::from_char_range(seg.segment_id.clone(), &seg.content, cs, ce)
                else {
                    continue;
                };
                let (sa, sb) = sentence_of(cs);
                let sent_words: Vec<&(usize, usize, String)> =
                    words.iter().filter(|w| w.0 >= sa && w.1 <= sb).collect();
                let before: Vec<&str> = sent_words
                    .iter()
                    .filter(|w| w.1 <= cs)
                    .rev()
                    .take(5)
                    .map(|w| w.2.as_str())
                    .collect();
                let in_sentence =
                    |set: &[&str]| sent_words.iter().any(|w| set.contains(&w.2.as_str()));
                let mut traits = Vec::new();
                let t = |name| Trait { name, score: 0.5 };
                if cat == EntityType::MedicalCondition {
                    if before.iter().any(|w| {
                        crate::words::NEGATION_CUES_CONTRACTED.contains(w) || w.ends_with("n't")
                    }) {
                        traits.push(t(TraitName::Negation));
                    }
                    if in_sentence(crate::words::RELATIVES) {
                        traits.push(t(TraitName::PertainsToFamily));
                    }
                    if before
                        .iter()
                        .any(|w| matches!(*w, "if" | "case" | "whether"))
                    {
                        traits.push(t(TraitName::Hypothetical));
                    }
                    if in_sentence(&["history", "ago", "past"]) {
                        traits.push(t(TraitName::PastHistory));
                    }
                    traits.push(t(
                        if clinician && state == TranscriptSectionName::AssessmentAndPlan {
                            TraitName::Diagnosis
                        } else {
                            TraitName::Symptom
                        },
                    ));
                }
                insights.push(ClinicalInsight {
                    attributes: vec![],
                    category: cat,
                    insight_id: format!("fallback-{next_id}"),
                    insight_type: InsightType::ClinicalEntity,
                    spans: vec![span],
                    entity_type: typ,
                    extensions: Some(InsightExtensions {
                        traits,
                        codes: vec![],
                        score: Some(0.5),
                    }),
                });
                next_id += 1;
            }
        }
        conv.clinical_insights = insights;
    }
}

// ---------------------------------------------------------------------------------------------
// ACI-BENCH
// ---------------------------------------------------------------------------------------------

/// The four note divisions ACI-BENCH scores separately.
pub const DIVISIONS: [&str; 4] = [
    "subjective",
    "objective_exam",
    "objective_results",
    "assessment_and_plan",
];

/// One encounter: dialogue, gold note and gold divisions.
#[derive(Debug, Clone)]
pub struct AciEncounter {
    pub id: String,
    pub dialogue: String,
    pub note: String,
    /// Gold text per [`DIVISIONS`] entry (`#####EMPTY#####` where the note has none).
    pub divisions: [String; 4],
    pub pronouns: Option<Pronouns>,
}

#[derive(Deserialize)]
struct AciFile {
    data: Vec<AciRow>,
}

#[derive(Deserialize)]
struct AciRow {
    src: String,
    tgt: String,
    file: String,
}

/// Minimal CSV: quoted fields with `""` escapes, commas, newlines inside quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Reads one split (`train`, `valid`, `clinicalnlp_taskB_test1`, …) of the ACI-BENCH folder.
pub fn read_aci_bench(dir: &Path, split: &str) -> Result<Vec<AciEncounter>> {
    let read = |name: String| -> Result<AciFile> {
        let p = dir.join(&name);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    };
    let full = read(format!("{split}.json"))?;
    let mut divisions: Vec<HashMap<String, String>> = Vec::new();
    for d in DIVISIONS {
        let f = read(format!("{split}_{d}.json"))?;
        divisions.push(
            f.data
                .into_iter()
                .map(|r| {
                    let id = r.file.split('-').next().unwrap_or_default().to_owned();
                    (id, r.tgt)
                })
                .collect(),
        );
    }
    let mut gender: HashMap<String, String> = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(dir.join(format!("{split}_metadata.csv"))) {
        let rows = parse_csv(&text);
        if let Some(header) = rows.first() {
            let col = |name: &str| header.iter().position(|h| h == name);
            if let (Some(ie), Some(ig)) = (col("encounter_id"), col("patient_gender")) {
                for r in &rows[1..] {
                    if let (Some(e), Some(g)) = (r.get(ie), r.get(ig)) {
                        gender.insert(e.clone(), g.trim().to_lowercase());
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for r in full.data {
        let id = r.file.split('-').next().unwrap_or_default().to_owned();
        let div = |k: usize| {
            divisions[k]
                .get(&id)
                .cloned()
                .unwrap_or_else(|| "#####EMPTY#####".into())
        };
        let pronouns = match gender.get(&id).map(String::as_str) {
            Some("male") => Some(Pronouns::HeHim),
            Some("female") => Some(Pronouns::SheHer),
            _ => None,
        };
        out.push(AciEncounter {
            divisions: [div(0), div(1), div(2), div(3)],
            id,
            dialogue: r.src,
            note: r.tgt,
            pronouns,
        });
    }
    if out.is_empty() {
        bail!("{split}.json in {} has no encounters", dir.display());
    }
    Ok(out)
}

/// A `[doctor]`/`[patient]` dialogue as a transcript: one segment per turn, ids `seg-<n>`, no
/// times, sections `OTHER` and no insights until an analyzer adds them. Untagged lines continue
/// the previous turn.
pub fn dialogue_to_conversation(id: &str, dialogue: &str) -> Conversation {
    let mut turns: Vec<(ParticipantRole, String)> = Vec::new();
    for line in dialogue.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (role, rest) = if let Some(r) = line.strip_prefix("[doctor]") {
            (Some(ParticipantRole::clinician(0)), r)
        } else if let Some(r) = line.strip_prefix("[patient_guest]") {
            (Some(ParticipantRole::patient(1)), r)
        } else if let Some(r) = line.strip_prefix("[patient]") {
            (Some(ParticipantRole::patient(0)), r)
        } else {
            (None, line)
        };
        match (role, turns.last_mut()) {
            (Some(role), _) => turns.push((role, rest.trim().to_owned())),
            (None, Some(last)) => {
                last.1.push(' ');
                last.1.push_str(rest.trim());
            }
            (None, None) => turns.push((ParticipantRole::clinician(0), rest.trim().to_owned())),
        }
    }
    Conversation {
        conversation_id: id.to_owned(),
        job_name: None,
        job_type: None,
        language_code: MedicalScribeLanguageCode::EnUs,
        session_id: None,
        clinical_insights: vec![],
        transcript_items: vec![],
        transcript_segments: turns
            .into_iter()
            .enumerate()
            .map(|(i, (role, content))| TranscriptSegment {
                begin_audio_time: 0.0,
                content,
                end_audio_time: 0.0,
                participant_details: ParticipantDetails {
                    participant_role: role,
                },
                section_details: SectionDetails {
                    section_name: TranscriptSectionName::Other,
                },
                segment_id: format!("seg-{i}"),
                extensions: None,
            })
            .collect(),
        extensions: None,
    }
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
}

impl AciReport {
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
    let encounters = read_aci_bench(dir, split)?;
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
        notes.push(AciNoteResult {
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
    Ok(AciReport {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        rouge_tokens(s)
    }

    #[test]
    fn tokenizer_matches_rouge_score_default() {
        assert_eq!(
            toks("Denies chest-pain; BP 142/88, A1c 8.0!"),
            ["denies", "chest", "pain", "bp", "142", "88", "a1c", "8", "0"]
        );
        assert_eq!(toks("café"), ["caf"]);
    }

    #[test]
    fn rouge_hand_computed() {
        // ref: the cat sat on the mat (6), pred: the cat lay on the mat (6)
        // unigrams: the×2, cat, on, mat match → 5/6; bigrams: "the cat", "on the", "the mat" → 3/5.
        let (p, r) = (
            toks("the cat lay on the mat"),
            toks("the cat sat on the mat"),
        );
        let r1 = rouge_n(&p, &r, 1);
        assert!((r1.f1 - 5.0 / 6.0).abs() < 1e-12);
        let r2 = rouge_n(&p, &r, 2);
        assert!((r2.f1 - 3.0 / 5.0).abs() < 1e-12);
        // LCS: the cat on the mat = 5.
        assert!((rouge_l(&p, &r).f1 - 5.0 / 6.0).abs() < 1e-12);
        // Different lengths: pred "patient denies pain" (3), ref "denies chest pain today" (4).
        // R1 hits: denies, pain = 2 → P 2/3, R 2/4, F = 2·(2/3)(1/2)/(2/3+1/2) = 4/7.
        let s = rouge("Patient denies pain.", "Denies chest pain today.");
        assert!((s.rouge1 - 4.0 / 7.0).abs() < 1e-12);
        assert_eq!(s.rouge2, 0.0);
        // LCS "denies pain" = 2 → same as R1 here.
        assert!((s.rouge_l - 4.0 / 7.0).abs() < 1e-12);
        // Clipped counts: pred "the the the" vs ref "the cat": hits 1, P 1/3, R 1/2, F 0.4.
        assert!((rouge("the the the", "the cat").rouge1 - 0.4).abs() < 1e-12);
        assert_eq!(rouge("", "x").rouge1, 0.0);
    }

    #[test]
    fn rouge_lsum_hand_computed() {
        // rouge_score's own docstring example for summary-level LCS:
        // ref "w1 w2 w3 w4 w5" / cands "w1 w2 w6 w7 w8" and "w1 w3 w8 w9 w5":
        // union LCS = w1 w2 w3 w5 → 4 hits; R = 4/5, P = 4/10.
        let s = rouge_lsum("w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", "w1 w2 w3 w4 w5");
        assert!((s.recall - 0.8).abs() < 1e-12);
        assert!((s.precision - 0.4).abs() < 1e-12);
    }

    #[test]
    fn dialogue_becomes_segments() {
        let c = dialogue_to_conversation(
            "D1",
            "[doctor] hi , how are you ?\n[patient] my knee hurts .\ncontinued line\n[patient_guest] she fell .",
        );
        assert_eq!(c.transcript_segments.len(), 3);
        assert_eq!(
            c.transcript_segments[1].content,
            "my knee hurts . continued line"
        );
        assert_eq!(
            c.transcript_segments[2]
                .participant_details
                .participant_role,
            ParticipantRole::patient(1)
        );
    }

    #[test]
    fn csv_with_quotes() {
        let rows = parse_csv("a,b,c\n1,\"x, \"\"y\"\"\",3\n");
        assert_eq!(rows[1], ["1", "x, \"y\"", "3"]);
    }

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
