//! Entity extraction for one turn: lexicon matches (conditions, medications, tests, procedures,
//! treatments, anatomy, social history), pattern matches (medication attributes, test values,
//! time expressions, spoken numbers), attribute linking and coding.
//!
//! [`extract`] runs these steps in order, each a function below: lexicon terms with their
//! codes, medication attributes linked to the nearest drug, RxNorm clinical drugs from a linked
//! strength, test values linked to their test, directions moved onto what they qualify, and last
//! the time expressions nothing else took. The cue words the steps use are the tables at the top.

use regex::Regex;

use super::lexicon::{CondKind, LexEntry, Lexicons, Scd};
use super::text::{byte_to_char_map, char_slice, fold_token, number_value, tokenize, Token};
use super::types::{Attribute, Category, Code, CodeSystem, Entity, EntityType, Trait};
use crate::words;

// ---- cue words ----

/// Number words of the patterns: [`words::UNITS`], [`words::TENS`], scales and fractions.
fn number_words() -> String {
    format!(
        "(?:a half|{}|{}|hundred|thousand|half|point)",
        words::UNITS.join("|"),
        words::TENS.join("|")
    )
}

/// Words before a term that needs context ("*my* back", "the *left* knee"): such a lexicon
/// term counts only right after one of them.
const DETERMINERS: &[&str] = &[
    "my", "your", "his", "her", "their", "the", "our", "lower", "upper", "left", "right", "mid",
];

/// Words allowed between a test name and its value ("your A1c *was* 7.2").
const TEST_GAP_WORDS: &[&str] = &[
    "is",
    "was",
    "were",
    "are",
    "of",
    "at",
    "around",
    "about",
    "came",
    "back",
    "reading",
    "level",
    "levels",
    "been",
    "has",
    "had",
    "showed",
    "shows",
    "to",
    "up",
    "down",
    "went",
    "its",
    "it",
    "s",
    "today",
    "now",
    "still",
    "only",
    "just",
    "over",
    "under",
    "like",
    "approximately",
    "than",
    "higher",
    "lower",
    "the",
    "result",
    "results",
    "number",
    "numbers",
    "reads",
    "read",
];

/// Words that join a list or a clause: an attribute said before a drug never reaches across
/// one (in "lisinopril ten milligrams once a day, and metformin", "once a day" is
/// lisinopril's).
const LIST_JOINERS: &[&str] = &[" and ", " then ", " plus ", " also "];

/// Strength units as written or spoken, with their RxNorm unit; the first one found in the
/// strength wins ("milligram" before "gram").
const STRENGTH_UNITS: [(&str, &str); 12] = [
    ("milligram", "MG"),
    ("mg", "MG"),
    ("microgram", "MCG"),
    ("mcg", "MCG"),
    ("gram", "G"),
    ("milliliter", "ML"),
    ("millilitre", "ML"),
    ("ml", "ML"),
    ("unit", "UNT"),
    ("iu", "UNT"),
    ("meq", "MEQ"),
    ("%", "%"),
];

fn num() -> String {
    let w = number_words();
    format!(r"(?:\d+(?:[.,]\d+)?|{w}(?:[\s-]+(?:and[\s-]+)?{w})*)")
}

/// Compiled patterns.
pub struct Patterns {
    strength: Regex,
    dosage: Regex,
    frequency: Regex,
    route: Regex,
    form: Regex,
    duration: Regex,
    time: Regex,
    test_value: Regex,
    sentence_end: Regex,
}

impl Patterns {
    pub fn new() -> Patterns {
        let n = num();
        let unit_time = r"(?:seconds?|minutes?|hours?|days?|nights?|weeks?|months?|years?)";
        let re = |s: &str| Regex::new(&format!("(?i){s}")).expect("pattern compiles");
        Patterns {
            strength: re(&format!(
                r"\b{n}\s*(?:mgs?|milligrams?|milligram|mcg|mcgs|micrograms?|grams?|g|mls?|milliliters?|millilitres?|cc|units?|iu|meq|%|percent)(?:\s*(?:/|per)\s*(?:ml|milliliter|dose|hour|hr|kg))?\b"
            )),
            dosage: re(&format!(
                r"\b(?:{n}|a|an|one|half a)\s+(?:tablets?|tabs?|pills?|capsules?|caps?|puffs?|drops?|sprays?|patch(?:es)?|injections?|shots?|teaspoons?|tablespoons?|scoops?|gummies|gummy|doses?)\b"
            )),
            frequency: re(&format!(
                r"\b(?:(?:once|twice|thrice|{n}\s+times?|one time)\s+(?:a|per|each|every)\s+(?:day|week|month|night|morning|evening)|(?:once|twice)\s+daily|every\s+(?:{n}\s+(?:to\s+{n}\s+)?)?(?:hours?|days?|morning|night|evening|week|other day|day)|(?:each|every)\s+(?:morning|night|evening)|at\s+(?:bed\s*time|night)|in\s+the\s+(?:morning|evening)|as\s+needed|when\s+needed|if\s+needed|daily|nightly|weekly|prn|bid|tid|qid|qd|qhs|q\s?\d+\s?h(?:ours|rs)?|b\.i\.d\.?|t\.i\.d\.?)\b"
            )),
            route: re(
                r"\b(?:by\s+mouth|orally|oral|p\.?o\.?|sublingual(?:ly)?|under\s+the\s+tongue|intravenous(?:ly)?|iv|intramuscular(?:ly)?|subcutaneous(?:ly)?|inhaled|topical(?:ly)?|on\s+the\s+skin|rectal(?:ly)?|transdermal|in\s+the\s+eyes?|nasal(?:ly)?)\b",
            ),
            form: re(
                r"\b(?:tablets?|pills?|capsules?|inhalers?|creams?|ointments?|solution|syrup|liquid|patch(?:es)?|injections?|shots?|drops|spray|suppositor(?:y|ies)|gel|lotion|pen)\b",
            ),
            duration: re(&format!(
                r"\b(?:for|x)\s+(?:about\s+|another\s+|the\s+next\s+|the\s+past\s+|the\s+last\s+)?(?:{n}|a|an|a\s+couple\s+of|a\s+few|several)\s+(?:more\s+)?{unit_time}\b"
            )),
            time: re(&format!(
                r"\b(?:yesterday|today|tonight|this\s+(?:morning|afternoon|evening|week|month|year)|last\s+(?:night|week|month|year|time|visit|summer|winter|spring|fall)|(?:{n}|a|an|a\s+couple\s+of|a\s+few|couple\s+of|few|several)\s+{unit_time}\s+ago|(?:for|over)\s+(?:the\s+)?(?:past|last)\s+(?:{n}\s+|few\s+|couple\s+(?:of\s+)?)?{unit_time}|since\s+(?:yesterday|last\s+\w+|(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|(?:january|february|march|april|may|june|july|august|september|october|november|december)|\d{{4}}|i\s+was\s+a\s+(?:kid|child|teenager))|in\s+(?:{n}|a|a\s+few|a\s+couple\s+of)\s+{unit_time}|(?:on\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|as\s+a\s+(?:child|kid|teenager|baby)|in\s+(?:19|20)\d\d|\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?|(?:{n}|a|an)\s+{unit_time}|(?:all|every)\s+(?:day|night|morning))\b"
            )),
            test_value: re(&format!(
                r"\b{n}(?:\s*(?:over|/)\s*{n})?(?:\s*(?:%|percent|mg/dl|milligrams per deciliter|degrees|beats per minute|bpm|pounds|lbs|kilos|kg))?"
            )),
            sentence_end: Regex::new(r"[.?!;](?:\s|$)").expect("pattern compiles"),
        }
    }
}

impl Default for Patterns {
    fn default() -> Self {
        Patterns::new()
    }
}

/// An entity plus the internal facts the trait pass needs.
#[derive(Debug, Clone)]
pub struct Found {
    pub entity: Entity,
    pub kind: CondKind,
}

struct Span {
    ty: EntityType,
    b: usize,
    e: usize,
}

/// Sorted, non-overlapping intervals with logarithmic overlap queries.
#[derive(Default)]
struct Intervals(Vec<(usize, usize)>);

impl Intervals {
    fn overlaps_any(&self, b: usize, e: usize) -> bool {
        let i = self.0.partition_point(|x| x.1 <= b);
        self.0.get(i).is_some_and(|x| x.0 < e)
    }
    /// Inserts when it overlaps nothing; returns whether it was inserted.
    fn insert(&mut self, b: usize, e: usize) -> bool {
        if self.overlaps_any(b, e) {
            return false;
        }
        let i = self.0.partition_point(|x| x.1 <= b);
        self.0.insert(i, (b, e));
        true
    }
}

/// Possibly overlapping intervals (sorted by begin) with a bounded-length overlap query.
struct SortedSpans {
    v: Vec<(usize, usize)>,
    max_len: usize,
}

impl SortedSpans {
    fn new(mut v: Vec<(usize, usize)>) -> SortedSpans {
        v.sort_unstable();
        let max_len = v.iter().map(|x| x.1 - x.0).max().unwrap_or(0);
        SortedSpans { v, max_len }
    }
    fn overlaps_any(&self, b: usize, e: usize) -> bool {
        let lo = self.v.partition_point(|x| x.0 + self.max_len <= b);
        self.v[lo..].iter().take_while(|x| x.0 < e).any(|x| x.1 > b)
    }
}

/// Extracts entities from one turn's text (offsets in chars, end exclusive).
pub fn extract(lex: &Lexicons, pat: &Patterns, text: &str) -> Vec<Found> {
    let toks = tokenize(text);
    if toks.is_empty() {
        return Vec::new();
    }
    let mut found = lexicon_terms(lex, text, &toks);
    let turn = TurnText::new(pat, text, &toks, &found);
    let attributes = turn.attribute_spans(pat);
    let mut times = TimeSpans::new(turn.spans_of(&pat.time, EntityType::TIME_EXPRESSION));
    let loose_durations = link_medication_attributes(&turn, &attributes, &mut found, &mut times);
    for mi in medication_indices(&found) {
        if let Some(code) = clinical_drug_code(lex, &found[mi].entity) {
            found[mi].entity.codes.push(code);
        }
    }
    link_test_values(pat, &turn, &mut found, &mut times);
    let drop = link_directions(&mut found);
    let mut out = drop_absorbed(found, drop);
    add_time_expressions(text, &times, &loose_durations, &mut out);
    out.sort_by_key(|f| (f.entity.begin_char, f.entity.end_char));
    out
}

/// The tokens' matching keys, with one-edit speech-recognition slips corrected toward the
/// lexicon; the flags say which tokens were corrected fuzzily (their terms are less sure).
fn fold_tokens(lex: &Lexicons, toks: &[Token]) -> (Vec<String>, Vec<bool>) {
    let mut folded = Vec::with_capacity(toks.len());
    let mut fuzzy = vec![false; toks.len()];
    for (i, t) in toks.iter().enumerate() {
        let f = fold_token(&t.lower);
        match lex.correct(&f) {
            Some((r, fz)) => {
                fuzzy[i] = fz;
                folded.push(r);
            }
            None => folded.push(f),
        }
    }
    (folded, fuzzy)
}

/// The lexicon terms of the turn, in text order, each with its code. A term that needs context
/// counts only after one of the [`DETERMINERS`], and a short derived key ("cad", "hes") only
/// when written in capitals; a fuzzily corrected term scores lower and is LOW_CONFIDENCE.
fn lexicon_terms(lex: &Lexicons, text: &str, toks: &[Token]) -> Vec<Found> {
    let (folded, fuzzy) = fold_tokens(lex, toks);
    let mut found: Vec<Found> = Vec::new();
    for (b, e, k) in lex.matcher.find(&folded) {
        let entry = &lex.entries[k];
        if entry.needs_context && (b == 0 || !DETERMINERS.contains(&toks[b - 1].lower.as_str())) {
            continue;
        }
        let surface = &text[toks[b].begin_byte..toks[e - 1].end_byte];
        // short derived keys ("cad", "hes") only when written in capitals
        if entry.score < 0.95
            && surface.chars().filter(|c| c.is_alphanumeric()).count() <= 4
            && !surface
                .chars()
                .all(|c| c.is_uppercase() || c.is_ascii_digit())
        {
            continue;
        }
        let is_fuzzy = fuzzy[b..e].iter().any(|x| *x);
        let mut score = entry.score;
        let mut traits = Vec::new();
        if is_fuzzy {
            score *= 0.7;
            traits.push((Trait::LOW_CONFIDENCE, 0.7));
        }
        found.push(Found {
            entity: Entity {
                category: entry.category,
                entity_type: entry.entity_type,
                begin_char: toks[b].begin_char,
                end_char: toks[e - 1].end_char,
                text: surface.to_string(),
                score,
                traits,
                attributes: Vec::new(),
                codes: term_codes(lex, entry, score),
            },
            kind: entry.kind,
        });
    }
    found
}

/// The code a lexicon entry carries, named: ICD-10-CM for a condition (the code's name, else
/// its category's), RxNorm for a medication (an ingredient unless the names file says
/// otherwise). Other categories are not coded.
fn term_codes(lex: &Lexicons, entry: &LexEntry, score: f32) -> Vec<Code> {
    let mut codes = Vec::new();
    if let Some(c) = &entry.code {
        match entry.category {
            Category::MEDICAL_CONDITION => codes.push(Code {
                system: CodeSystem::ICD10CM,
                code: c.clone(),
                display: lex
                    .icd_names
                    .get(c)
                    .or_else(|| lex.icd_names.get(c.split('.').next().unwrap_or("")))
                    .cloned()
                    .unwrap_or_default(),
                tty: None,
                score: score * 0.9,
            }),
            Category::MEDICATION => {
                let (tty, name) = lex.rx_names.get(c).cloned().unwrap_or_default();
                codes.push(Code {
                    system: CodeSystem::RXNORM,
                    code: c.clone(),
                    display: name,
                    tty: Some(if tty.is_empty() { "IN".into() } else { tty }),
                    score: score * 0.95,
                })
            }
            _ => {}
        }
    }
    codes
}

/// One turn's text with what the linking steps share: a pattern match never overlaps a
/// medication, condition or test term, and attributes link only within a sentence.
struct TurnText<'a> {
    text: &'a str,
    toks: &'a [Token],
    /// Char offset of each byte offset.
    b2c: Vec<usize>,
    /// Spans of the medication, condition and test terms.
    lex_spans: SortedSpans,
    /// Char offsets of the sentence ends, sorted.
    ends: Vec<usize>,
}

impl<'a> TurnText<'a> {
    fn new(pat: &Patterns, text: &'a str, toks: &'a [Token], found: &[Found]) -> TurnText<'a> {
        let b2c = byte_to_char_map(text);
        let lex_spans = SortedSpans::new(
            found
                .iter()
                .filter(|f| {
                    matches!(
                        f.entity.category,
                        Category::MEDICATION
                            | Category::MEDICAL_CONDITION
                            | Category::TEST_TREATMENT_PROCEDURE
                    )
                })
                .map(|f| (f.entity.begin_char, f.entity.end_char))
                .collect(),
        );
        let ends = pat
            .sentence_end
            .find_iter(text)
            .map(|m| b2c[m.start()])
            .collect();
        TurnText {
            text,
            toks,
            b2c,
            lex_spans,
            ends,
        }
    }

    /// The non-empty matches of `re` that overlap no term, typed `ty`.
    fn spans_of(&self, re: &Regex, ty: EntityType) -> Vec<Span> {
        re.find_iter(self.text)
            .map(|m| Span {
                ty,
                b: self.b2c[m.start()],
                e: self.b2c[m.end()],
            })
            .filter(|s| s.e > s.b && !self.lex_spans.overlaps_any(s.b, s.e))
            .collect()
    }

    fn same_sentence(&self, a: usize, b: usize) -> bool {
        let (lo, hi) = (a.min(b), a.max(b));
        let i = self.ends.partition_point(|x| *x < lo);
        self.ends.get(i).is_none_or(|x| *x >= hi)
    }

    /// Candidate medication attributes, disjoint: where two patterns overlap, the one tried
    /// first (strength, dosage, frequency, duration, route, form) keeps the words.
    fn attribute_spans(&self, pat: &Patterns) -> Vec<Span> {
        let mut attr_spans: Vec<Span> = Vec::new();
        let mut attr_set = Intervals::default();
        for (re, ty) in [
            (&pat.strength, EntityType::STRENGTH),
            (&pat.dosage, EntityType::DOSAGE),
            (&pat.frequency, EntityType::FREQUENCY),
            (&pat.duration, EntityType::DURATION),
            (&pat.route, EntityType::ROUTE_OR_MODE),
            (&pat.form, EntityType::FORM),
        ] {
            for s in self.spans_of(re, ty) {
                if attr_set.insert(s.b, s.e) {
                    attr_spans.push(s);
                }
            }
        }
        attr_spans
    }
}

/// The time expressions the pattern found, and which of them an attribute or a test value
/// already holds: those are not reported again.
struct TimeSpans {
    spans: Vec<Span>,
    used: Vec<bool>,
}

impl TimeSpans {
    fn new(spans: Vec<Span>) -> TimeSpans {
        let used = vec![false; spans.len()];
        TimeSpans { spans, used }
    }

    /// Marks the time expressions inside the attribute at `[b, e)` as used.
    fn mark_used(&mut self, b: usize, e: usize) {
        let i = self.spans.partition_point(|t| t.e <= b);
        for (k, t) in self.spans.iter().enumerate().skip(i) {
            if t.b >= e {
                break;
            }
            self.used[k] = true;
        }
    }
}

fn medication_indices(found: &[Found]) -> Vec<usize> {
    (0..found.len())
        .filter(|&i| found[i].entity.category == Category::MEDICATION)
        .collect()
}

/// Links each medication attribute to the nearest medication of its sentence (see
/// [`nearest_medication`]). Returns the durations no medication took: they are still time
/// expressions ("for two weeks").
fn link_medication_attributes(
    turn: &TurnText,
    attributes: &[Span],
    found: &mut [Found],
    times: &mut TimeSpans,
) -> Vec<Span> {
    let med_idx = medication_indices(found);
    let mut loose_durations: Vec<Span> = Vec::new();
    for a in attributes {
        match nearest_medication(turn, found, &med_idx, a) {
            Some((d, mi)) => {
                let rel = (0.95 - d as f32 / 200.0).max(0.5);
                found[mi].entity.attributes.push(Attribute {
                    entity_type: a.ty,
                    begin_char: a.b,
                    end_char: a.e,
                    text: char_slice(turn.text, a.b, a.e),
                    score: 0.9,
                    relationship_score: rel,
                });
                // a time expression inside a linked attribute is not reported again
                times.mark_used(a.b, a.e);
            }
            None if a.ty == EntityType::DURATION => loose_durations.push(Span {
                ty: EntityType::TIME_EXPRESSION,
                b: a.b,
                e: a.e,
            }),
            None => {}
        }
    }
    loose_durations
}

/// The medication attribute `a` belongs to, as (distance, index into `found`): the nearest
/// medication of the same sentence after which it comes (≤ 80 chars) or before which it comes
/// (≤ 40, counted double, never across a list or clause: see [`LIST_JOINERS`]). Medications are
/// sorted and disjoint, so only the neighbours on each side matter.
fn nearest_medication(
    turn: &TurnText,
    found: &[Found],
    med_idx: &[usize],
    a: &Span,
) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let split = med_idx.partition_point(|&mi| found[mi].entity.end_char <= a.b);
    let neighbours = [split.checked_sub(1), Some(split)];
    for mi in neighbours
        .into_iter()
        .flatten()
        .filter_map(|i| med_idx.get(i).copied())
    {
        let m = &found[mi].entity;
        let d = if a.b >= m.end_char {
            let d = a.b - m.end_char;
            (d <= 80).then_some(d)
        } else if a.e <= m.begin_char {
            // An attribute before a drug ("twenty of the lisinopril") never reaches across
            // a list or clause boundary: in "lisinopril ten milligrams once a day, and
            // metformin", "once a day" is lisinopril's.
            let gap = char_slice(turn.text, a.e, m.begin_char).to_lowercase();
            let crosses = gap.contains([',', ';'])
                || LIST_JOINERS.iter().any(|w| format!(" {gap} ").contains(w));
            let d = m.begin_char - a.e;
            (d <= 40 && !crosses).then_some(d * 2)
        } else {
            None
        };
        if let Some(d) = d {
            let anchor = if a.b >= m.end_char {
                m.end_char
            } else {
                m.begin_char
            };
            if turn.same_sentence(anchor, a.b) && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, mi));
            }
        }
    }
    best
}

/// The RxNorm clinical drug (SCD) of a coded medication whose linked strength matches one of
/// its ingredient's SCDs. A form said with it ("tablets") picks among them (score 0.85), else
/// the likeliest form does (see [`form_rank`], score 0.6).
fn clinical_drug_code(lex: &Lexicons, ent: &Entity) -> Option<Code> {
    let in_code = ent.codes.first().map(|c| c.code.clone())?;
    let scds = lex.scd.get(&in_code)?;
    let st = ent
        .attributes
        .iter()
        .find(|a| a.entity_type == EntityType::STRENGTH)?;
    let (val, unit) = parse_strength(&st.text)?;
    let form_hint = ent
        .attributes
        .iter()
        .find(|a| a.entity_type == EntityType::FORM)
        .map(|a| a.text.to_lowercase());
    let mut cands: Vec<&Scd> = scds
        .iter()
        .filter(|s| (s.strength - val).abs() < 1e-6 && s.unit == unit)
        .collect();
    if cands.is_empty() {
        return None;
    }
    let hint = form_hint.as_deref();
    cands.sort_by_key(|s| (form_rank(&s.form, hint), s.rxcui.len(), s.rxcui.clone()));
    let c = cands[0];
    let known_form = form_hint.is_some() && form_rank(&c.form, hint) == 0;
    let display = lex
        .rx_names
        .get(&c.rxcui)
        .map(|x| x.1.clone())
        .unwrap_or_default();
    let score = if known_form { 0.85 } else { 0.6 };
    Some(Code {
        system: CodeSystem::RXNORM,
        code: c.rxcui.clone(),
        display,
        tty: Some("SCD".into()),
        score,
    })
}

/// Rank of an SCD's dose form, lowest first: the form said in the turn (`hint`), then oral
/// tablet, oral capsule, other oral forms, the rest.
fn form_rank(form: &str, hint: Option<&str>) -> usize {
    let fl = form.to_lowercase();
    if let Some(h) = hint {
        let stem: String = h.trim_end_matches('s').chars().take(5).collect();
        if fl.contains(&stem) {
            return 0;
        }
    }
    match fl.as_str() {
        "oral tablet" => 1,
        "oral capsule" => 2,
        _ if fl.starts_with("oral") => 3,
        _ => 4,
    }
}

/// Links the value after each test name ("your A1c was 7.2"): within 30 chars of it, in the
/// same sentence, with only [`TEST_GAP_WORDS`] between, over no other term, and opening with a
/// number.
fn link_test_values(pat: &Patterns, turn: &TurnText, found: &mut [Found], times: &mut TimeSpans) {
    let (text, toks) = (turn.text, turn.toks);
    let test_idx: Vec<usize> = (0..found.len())
        .filter(|&i| found[i].entity.entity_type == EntityType::TEST_NAME)
        .collect();
    for ti in test_idx {
        let end = found[ti].entity.end_char;
        // byte offset of end
        let Some(eb) = toks
            .get(toks.partition_point(|t| t.end_char < end))
            .filter(|t| t.end_char == end)
            .map(|t| t.end_byte)
        else {
            continue;
        };
        if let Some(m) = pat.test_value.find_at(text, eb) {
            let (vb, ve) = (turn.b2c[m.start()], turn.b2c[m.end()]);
            if vb < end || vb - end > 30 {
                continue;
            }
            let gap = text[eb..m.start()].to_lowercase();
            let gap_ok = tokenize(&gap)
                .iter()
                .all(|t| TEST_GAP_WORDS.contains(&t.lower.as_str()));
            if vb >= end
                && vb - end <= 30
                && gap_ok
                && turn.same_sentence(end, vb)
                && !turn.lex_spans.overlaps_any(vb, ve)
                && number_value(m.as_str().split_whitespace().next().unwrap_or("")).is_some()
            {
                found[ti].entity.attributes.push(Attribute {
                    entity_type: EntityType::TEST_VALUE,
                    begin_char: vb,
                    end_char: ve,
                    text: m.as_str().to_string(),
                    score: 0.85,
                    relationship_score: 0.8,
                });
                times.mark_used(vb, ve);
            }
        }
    }
}

/// Moves each direction ("left", "upper") onto the anatomy or condition right after it (within
/// 12 chars) as a DIRECTION attribute. Returns the entities to drop: the directions themselves.
fn link_directions(found: &mut [Found]) -> Vec<bool> {
    let dir_idx: Vec<usize> = (0..found.len())
        .filter(|&i| found[i].entity.entity_type == EntityType::DIRECTION)
        .collect();
    let mut drop = vec![false; found.len()];
    for di in dir_idx {
        let d = found[di].entity.clone();
        let from = found.partition_point(|f| f.entity.begin_char < d.end_char);
        let target = (from..found.len())
            .take_while(|&j| found[j].entity.begin_char <= d.end_char + 12)
            .find(|&j| {
                matches!(
                    found[j].entity.category,
                    Category::ANATOMY | Category::MEDICAL_CONDITION
                ) && found[j].entity.entity_type != EntityType::DIRECTION
            });
        if let Some(j) = target {
            found[j].entity.attributes.push(Attribute {
                entity_type: EntityType::DIRECTION,
                begin_char: d.begin_char,
                end_char: d.end_char,
                text: d.text.clone(),
                score: d.score,
                relationship_score: 0.9,
            });
        }
        drop[di] = true;
    }
    drop
}

/// Drops the entities flagged in `drop`, and the anatomy and social words that lie inside an
/// attribute: they are part of it ("by mouth" is a route, not the mouth).
fn drop_absorbed(found: Vec<Found>, mut drop: Vec<bool>) -> Vec<Found> {
    let attr_ranges = SortedSpans::new(
        found
            .iter()
            .flat_map(|f| {
                f.entity
                    .attributes
                    .iter()
                    .map(|a| (a.begin_char, a.end_char))
            })
            .collect(),
    );
    for (i, f) in found.iter().enumerate() {
        if matches!(
            f.entity.category,
            Category::ANATOMY | Category::BEHAVIORAL_ENVIRONMENTAL_SOCIAL
        ) && attr_ranges.overlaps_any(f.entity.begin_char, f.entity.end_char)
        {
            drop[i] = true;
        }
    }
    found
        .into_iter()
        .zip(drop)
        .filter(|(_, d)| !d)
        .map(|(f, _)| f)
        .collect()
}

/// Reports as TIME_EXPRESSION entities the time expressions and loose durations that no
/// entity or attribute holds; where two overlap, the first kept wins.
fn add_time_expressions(
    text: &str,
    times: &TimeSpans,
    loose_durations: &[Span],
    out: &mut Vec<Found>,
) {
    let taken = SortedSpans::new(
        out.iter()
            .flat_map(|f| {
                std::iter::once((f.entity.begin_char, f.entity.end_char)).chain(
                    f.entity
                        .attributes
                        .iter()
                        .map(|a| (a.begin_char, a.end_char)),
                )
            })
            .collect(),
    );
    let mut kept_time = Intervals::default();
    let candidates = times
        .spans
        .iter()
        .enumerate()
        .filter(|(k, _)| !times.used[*k])
        .map(|(_, t)| t)
        .chain(loose_durations.iter());
    for t in candidates {
        if taken.overlaps_any(t.b, t.e) || !kept_time.insert(t.b, t.e) {
            continue;
        }
        out.push(Found {
            entity: Entity {
                category: Category::TIME_EXPRESSION,
                entity_type: t.ty,
                begin_char: t.b,
                end_char: t.e,
                text: char_slice(text, t.b, t.e),
                score: 0.8,
                traits: Vec::new(),
                attributes: Vec::new(),
                codes: Vec::new(),
            },
            kind: CondKind::NotACondition,
        });
    }
}

/// Parses a strength like "ten milligrams", "500 mg", "2.5mg" into (value, RxNorm unit).
pub fn parse_strength(s: &str) -> Option<(f64, String)> {
    let l = s.to_lowercase();
    // split into number words and unit word(s)
    for (u, code) in STRENGTH_UNITS {
        if let Some(p) = l.find(u) {
            let numtxt = l[..p].trim();
            let v = number_value(numtxt)?;
            let code = if u == "gram" && l[..p].ends_with("milli") {
                "MG"
            } else {
                code
            };
            return Some((v, code.to_string()));
        }
    }
    if let Some(p) = l.rfind(|c: char| c.is_ascii_digit()) {
        let v = number_value(l[..=p].trim())?;
        if l[p + 1..].trim() == "g" {
            return Some((v, "G".into()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strengths() {
        assert_eq!(parse_strength("ten milligrams"), Some((10.0, "MG".into())));
        assert_eq!(parse_strength("500 mg"), Some((500.0, "MG".into())));
        assert_eq!(parse_strength("2.5mg"), Some((2.5, "MG".into())));
        assert_eq!(parse_strength("25 mcg"), Some((25.0, "MCG".into())));
    }
}
