//! How a note phrases what was said: rule-based handling of note sentences — sentence splitting
//! with offsets, word tokens, filler and disfluency removal, first/second → third person,
//! number words → digits, and rendering back to a clinical-style sentence.
//!
//! Its tokens are words and punctuation marks as a sentence is written back (contractions kept
//! and re-attached, "gonna" → "going to"); the clinical stage's [`crate::clinical::text`]
//! tokenizer gives offset-carrying matching keys (apostrophes dropped) instead, so the two do
//! not share code.
//!
//! Every transformation here only deletes words, maps pronouns/auxiliaries to their third-person
//! forms, or maps a word to a fixed equivalent (number words, `milligrams` → `mg`); it never
//! introduces a content word. The independent checker in [`super::support`] enforces that.

use crate::healthscribe::Pronouns;

/// A sentence of a segment: byte range into the segment's `Content`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentenceRange {
    pub start: usize,
    pub end: usize,
}

/// Splits `text` into sentences at `.`, `?`, `!` followed by whitespace or the end (a `.` between
/// digits, as in `1.5`, does not split). Returns trimmed byte ranges, never empty ones.
pub fn split_sentences(text: &str) -> Vec<SentenceRange> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if matches!(b, b'.' | b'?' | b'!') {
            // Take a run of terminators ("?!", "...").
            let mut j = i + 1;
            while j < bytes.len() && matches!(bytes[j], b'.' | b'?' | b'!') {
                j += 1;
            }
            let at_boundary = j >= bytes.len() || bytes[j].is_ascii_whitespace();
            let decimal = b == b'.'
                && i > 0
                && bytes[i - 1].is_ascii_digit()
                && j < bytes.len()
                && bytes[j].is_ascii_digit();
            if at_boundary && !decimal {
                push_trimmed(text, start, j, &mut out);
                start = j;
            }
            i = j;
        } else if b == b'\n' {
            push_trimmed(text, start, i, &mut out);
            start = i + 1;
            i += 1;
        } else {
            i += 1;
        }
    }
    push_trimmed(text, start, bytes.len(), &mut out);
    out
}

/// Breaks an unpunctuated run (over 30 words) before discourse markers ("okay", "so", "now", …)
/// into pieces of at least 8 words; transcripts without punctuation otherwise give one sentence
/// per turn.
pub fn split_long(text: &str, r: SentenceRange) -> Vec<SentenceRange> {
    const MARKERS: &[&str] = &[
        "okay", "ok", "alright", "so", "now", "well", "yeah", "and then",
    ];
    let s = &text[r.start..r.end];
    let words: Vec<(usize, &str)> = s
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - s.as_ptr() as usize, w))
        .collect();
    if words.len() <= 30 {
        return vec![r];
    }
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut count = 0usize;
    for (i, (off, w)) in words.iter().enumerate() {
        let lw = w.to_lowercase();
        let lw = lw.trim_matches(|c: char| !c.is_alphanumeric());
        let two = words
            .get(i + 1)
            .map(|(_, n)| format!("{lw} {}", n.to_lowercase()))
            .unwrap_or_default();
        if count >= 8 && (MARKERS.contains(&lw) || MARKERS.contains(&two.as_str())) {
            push_trimmed(text, r.start + start, r.start + off, &mut out);
            start = *off;
            count = 0;
        }
        count += 1;
    }
    push_trimmed(text, r.start + start, r.end, &mut out);
    out
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<SentenceRange>) {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    let (a, b) = (start + lead, end - trail);
    if a < b && text[a..b].chars().any(|c| c.is_alphanumeric()) {
        out.push(SentenceRange { start: a, end: b });
    }
}

/// A word or a punctuation mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(String),
    Punct(char),
}

impl Tok {
    pub fn word(&self) -> Option<&str> {
        match self {
            Tok::Word(w) => Some(w),
            Tok::Punct(_) => None,
        }
    }
}

const PUNCT: &[char] = &[
    ',', '.', '?', '!', ';', ':', '(', ')', '"', '[', ']', '…', '“', '”',
];

/// Lower-cases and tokenises; re-attaches the split contractions of ACI-style text
/// (`do n't` → `don't`, `gon na` → `gonna`) and removes the truncated words of disfluencies
/// (`l-`, `we-`).
pub fn tokenize(text: &str) -> Vec<Tok> {
    let mut toks: Vec<Tok> = Vec::new();
    for raw in text.split_whitespace() {
        let raw = raw.replace('’', "'");
        let mut word = String::new();
        let mut trailing = Vec::new();
        let mut chars = raw.chars().peekable();
        // Leading punctuation.
        while let Some(&c) = chars.peek() {
            if PUNCT.contains(&c) {
                toks.push(Tok::Punct(c));
                chars.next();
            } else {
                break;
            }
        }
        for c in chars {
            word.push(c);
        }
        while let Some(c) = word.chars().last() {
            if PUNCT.contains(&c) {
                // A decimal number keeps its dot only inside, never at the end.
                trailing.push(c);
                word.pop();
            } else {
                break;
            }
        }
        if !word.is_empty() {
            let lw = word.to_lowercase();
            let merged = matches!(
                (toks.last().and_then(Tok::word), lw.as_str()),
                (Some(_), "n't" | "'s" | "'re" | "'ve" | "'ll" | "'m" | "'d")
                    | (Some("gon"), "na")
                    | (Some("wan"), "na")
                    | (Some("got"), "ta")
            );
            if merged {
                if let Some(Tok::Word(prev)) = toks.last_mut() {
                    prev.push_str(&lw);
                }
            } else if let Some((a, b)) = match lw.as_str() {
                "gonna" => Some(("going", "to")),
                "wanna" => Some(("want", "to")),
                "gotta" => Some(("have", "to")),
                _ => None,
            } {
                toks.push(Tok::Word(a.into()));
                toks.push(Tok::Word(b.into()));
            } else {
                toks.push(Tok::Word(lw));
            }
        }
        for c in trailing.into_iter().rev() {
            toks.push(Tok::Punct(c));
        }
    }
    // Merged "gon na" → "going to".
    let mut split: Vec<Tok> = Vec::with_capacity(toks.len());
    for t in toks {
        match t.word() {
            Some("gonna") => {
                split.push(Tok::Word("going".into()));
                split.push(Tok::Word("to".into()));
            }
            Some("wanna") => {
                split.push(Tok::Word("want".into()));
                split.push(Tok::Word("to".into()));
            }
            Some("gotta") => {
                split.push(Tok::Word("have".into()));
                split.push(Tok::Word("to".into()));
            }
            _ => split.push(t),
        }
    }
    let mut toks = split;
    // Truncated words ("l-", "i-") are false starts.
    toks.retain(|t| !matches!(t, Tok::Word(w) if w.ends_with('-') || w == "-"));
    toks
}

/// Words that carry nothing in a note.
const FILLERS: &[&str] = &[
    "um", "umm", "uh", "uhm", "uh-huh", "hmm", "mm", "mm-hmm", "mhm", "er", "ah", "oh", "huh",
];

/// Words dropped at the start of a sentence (discourse markers).
const OPENERS: &[&str] = &[
    "so", "okay", "ok", "alright", "well", "and", "but", "now", "yeah", "yes", "right", "anyway",
    "also", "then", "great", "good", "sure", "actually", "alrighty", "hey", "yep", "yup",
];

/// Two-word fillers, removed anywhere.
const FILLER_PAIRS: &[(&str, &str)] = &[
    ("you", "know"),
    ("i", "mean"),
    ("all", "right"),
    ("you", "see"),
];

/// Removes fillers, false starts, immediate repetitions and leading discourse markers.
pub fn strip_fillers(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if let Tok::Word(w) = &toks[i] {
            if FILLERS.contains(&w.as_str()) {
                i += 1;
                continue;
            }
            if let Some(Tok::Word(next)) = toks.get(i + 1) {
                // A filler pair stands between commas or at an edge ("so , you know , my
                // knee"), not inside a clause ("that you know of").
                let at_edge = matches!(out.last(), None | Some(Tok::Punct(_)))
                    || matches!(toks.get(i + 2), None | Some(Tok::Punct(_)));
                if at_edge && FILLER_PAIRS.iter().any(|(a, b)| a == w && b == next) {
                    i += 2;
                    continue;
                }
            }
            // ", like ," is a filler; "like" elsewhere is a word.
            if w == "like"
                && matches!(out.last(), Some(Tok::Punct(',')) | None)
                && matches!(toks.get(i + 1), Some(Tok::Punct(',')))
            {
                i += 2;
                continue;
            }
            // Immediate repetition, with or without a comma between ("i , i", "been been").
            let prev_word = match out.last() {
                Some(Tok::Word(p)) => Some(p.clone()),
                Some(Tok::Punct(',')) => match out.get(out.len().wrapping_sub(2)) {
                    Some(Tok::Word(p)) => Some(p.clone()),
                    _ => None,
                },
                _ => None,
            };
            if prev_word.as_deref() == Some(w.as_str()) && !w.chars().all(|c| c.is_ascii_digit()) {
                if matches!(out.last(), Some(Tok::Punct(','))) {
                    out.pop();
                }
                i += 1;
                continue;
            }
        }
        out.push(toks[i].clone());
        i += 1;
    }
    // Leading discourse markers and punctuation.
    loop {
        match out.first() {
            Some(Tok::Punct(_)) => {
                out.remove(0);
            }
            Some(Tok::Word(w)) if OPENERS.contains(&w.as_str()) && out.len() > 2 => {
                out.remove(0);
            }
            _ => break,
        }
    }
    // Collapse punctuation runs (", ," → ",") and drop commas before the end.
    let mut cleaned: Vec<Tok> = Vec::with_capacity(out.len());
    for t in out {
        if let (Tok::Punct(c), Some(Tok::Punct(p))) = (&t, cleaned.last()) {
            if *c == ',' || *p == ',' {
                if *p == ',' && *c != ',' {
                    cleaned.pop();
                    cleaned.push(t);
                }
                continue;
            }
        }
        cleaned.push(t);
    }
    while matches!(cleaned.last(), Some(Tok::Punct(','))) {
        cleaned.pop();
    }
    cleaned
}

/// Who is speaking, for the person rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Patient,
    Clinician,
}

/// Third-person forms for the patient.
#[derive(Debug, Clone, Copy)]
pub struct PronounSet {
    pub subj: &'static str,
    pub obj: &'static str,
    pub poss: &'static str,
    pub poss_pronoun: &'static str,
    pub refl: &'static str,
    /// Singular agreement ("he has") or plural ("they have").
    pub singular: bool,
}

impl PronounSet {
    pub fn for_pronouns(p: Option<Pronouns>) -> Self {
        match p {
            Some(Pronouns::HeHim) => Self {
                subj: "he",
                obj: "him",
                poss: "his",
                poss_pronoun: "his",
                refl: "himself",
                singular: true,
            },
            Some(Pronouns::SheHer) => Self {
                subj: "she",
                obj: "her",
                poss: "her",
                poss_pronoun: "hers",
                refl: "herself",
                singular: true,
            },
            Some(Pronouns::TheyThem) | None => Self {
                subj: "they",
                obj: "them",
                poss: "their",
                poss_pronoun: "theirs",
                refl: "themselves",
                singular: false,
            },
        }
    }
}

const MODALS: &[&str] = &[
    "can",
    "could",
    "will",
    "would",
    "should",
    "might",
    "may",
    "must",
    "can't",
    "couldn't",
    "won't",
    "wouldn't",
    "shouldn't",
    "did",
    "didn't",
    "had",
    "hadn't",
    "used",
];

const ADVERBS: &[&str] = &[
    "just",
    "really",
    "also",
    "still",
    "usually",
    "always",
    "never",
    "sometimes",
    "only",
    "actually",
    "definitely",
    "probably",
    "already",
    "even",
    "often",
    "mostly",
    "generally",
    "normally",
    "occasionally",
    "certainly",
    "kinda",
    "recently",
    "typically",
    "finally",
];

const IRREGULAR_PAST: &[&str] = &[
    "felt",
    "thought",
    "went",
    "had",
    "did",
    "was",
    "were",
    "got",
    "came",
    "took",
    "saw",
    "said",
    "told",
    "made",
    "ran",
    "fell",
    "caught",
    "began",
    "kept",
    "left",
    "lost",
    "found",
    "knew",
    "gave",
    "wore",
    "ate",
    "drank",
    "slept",
    "woke",
    "broke",
    "bought",
    "brought",
    "sat",
    "stood",
    "spent",
    "heard",
    "meant",
    "put",
    "quit",
    "hit",
    "cut",
    "read",
    "became",
    "forgot",
    "threw",
    "drove",
    "rode",
    "wrote",
    "swam",
    "understood",
    "tore",
    "bit",
    "led",
    "paid",
    "sent",
    "built",
    "shot",
    "slipped",
    "tripped",
    "noticed",
    "been",
];

/// Words that follow a subject but are not verbs; never conjugated.
const FUNCTION_WORDS: &[&str] = &[
    "my", "your", "his", "her", "their", "our", "the", "a", "an", "this", "that", "it", "to",
    "and", "or", "but", "so", "not", "no", "in", "on", "at", "for", "with", "of", "from", "up",
    "down", "out", "about", "like", "as", "if", "then", "there", "here", "me", "you", "him",
    "them", "us", "some", "any", "all", "because", "when", "what", "guess", "mean", "i", "we",
    "he", "she", "they", "too", "yes", "no", "yeah", "okay", "um", "uh",
];

/// Third-person singular of a present-tense verb (`take` → `takes`, `try` → `tries`).
fn third_singular(v: &str) -> String {
    match v {
        "have" => return "has".into(),
        "do" => return "does".into(),
        "go" => return "goes".into(),
        "am" | "are" => return "is".into(),
        "don't" => return "doesn't".into(),
        "haven't" => return "hasn't".into(),
        "aren't" => return "isn't".into(),
        "'m" | "'re" => return "is".into(),
        "'ve" => return "has".into(),
        _ => {}
    }
    if v.ends_with("ss") {
        return format!("{v}es");
    }
    if v.ends_with("ed") || v.ends_with('s') || !v.chars().all(|c| c.is_ascii_alphabetic()) {
        return v.into();
    }
    let b = v.as_bytes();
    if v.ends_with('y') && b.len() > 1 && !b"aeiou".contains(&b[b.len() - 2]) {
        return format!("{}ies", &v[..v.len() - 1]);
    }
    if v.ends_with("sh")
        || v.ends_with("ch")
        || v.ends_with('x')
        || v.ends_with('z')
        || v.ends_with('o')
    {
        return format!("{v}es");
    }
    format!("{v}s")
}

/// Agreement of the verb that follows a rewritten subject. `singular` says whether the new
/// subject is he/she; `was_plural_subject` whether the old one was `we`/`you` (whose `were`
/// becomes `was`).
fn agree(verb: &str, singular: bool) -> Option<String> {
    let v = verb;
    if FUNCTION_WORDS.contains(&v) || v == "be" {
        return None;
    }
    if !singular {
        return match v {
            "am" | "'m" => Some("are".into()),
            "was" => Some("were".into()),
            "wasn't" => Some("weren't".into()),
            _ => None,
        };
    }
    match v {
        "am" | "are" | "'m" | "'re" => Some("is".into()),
        "were" => Some("was".into()),
        "weren't" => Some("wasn't".into()),
        "aren't" => Some("isn't".into()),
        "have" | "'ve" => Some("has".into()),
        "haven't" => Some("hasn't".into()),
        "do" => Some("does".into()),
        "don't" => Some("doesn't".into()),
        _ if MODALS.contains(&v) || IRREGULAR_PAST.contains(&v) || ADVERBS.contains(&v) => None,
        _ if v.ends_with("ed") || v.ends_with("ing") || v.ends_with("ly") => None,
        _ if v.chars().all(|c| c.is_ascii_alphabetic()) && v.len() > 1 => Some(third_singular(v)),
        _ => None,
    }
}

/// Words after which a clinician's `you` is the subject of what follows.
const AUX_AFTER_SUBJECT: &[&str] = &[
    "are",
    "were",
    "have",
    "had",
    "do",
    "did",
    "don't",
    "didn't",
    "can",
    "could",
    "will",
    "would",
    "should",
    "need",
    "feel",
    "felt",
    "said",
    "mentioned",
    "take",
    "get",
    "got",
    "still",
    "also",
    "just",
    "really",
    "might",
    "may",
    "must",
    "went",
    "haven't",
    "aren't",
    "weren't",
    "seem",
    "look",
    "sound",
    "described",
    "told",
    "reported",
    "started",
    "noticed",
    "tried",
    "used",
    "continue",
    "stopped",
    "already",
    "never",
    "probably",
    "definitely",
    "undergo",
    "underwent",
    "can't",
    "won't",
    "wouldn't",
    "shouldn't",
    "want",
    "wanted",
    "go",
    "come",
    "came",
    "see",
    "saw",
    "hurt",
    "injured",
    "fell",
    "take",
    "took",
    "describe",
    "state",
    "stated",
    "endorse",
    "deny",
    "denied",
    "experience",
    "experienced",
    "developed",
    "complain",
    "complained",
    "likely",
    "appear",
    "appeared",
    "indicated",
    "agree",
    "agreed",
    "understand",
    "work",
    "worked",
    "live",
    "lived",
    "smoke",
    "drink",
    "exercise",
    "eat",
];

/// Rewrites the tokens of one sentence into the third person for the patient.
///
/// Patient speech: `i`/`we` → subject, `me`/`us` → object, `my`/`our` → possessive, with verb
/// agreement. Clinician speech: `you` → subject or object, `your` → possessive; the clinician's
/// own `i`/`we` stay (notes write "I recommend", "We will").
pub fn to_third_person(toks: Vec<Tok>, speaker: Speaker, p: PronounSet) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len() + 2);
    let mut i = 0;
    let mut pending_agreement = false;
    while i < toks.len() {
        let t = &toks[i];
        let Tok::Word(w) = t else {
            out.push(t.clone());
            pending_agreement = false;
            i += 1;
            continue;
        };
        if pending_agreement {
            pending_agreement = false;
            if ADVERBS.contains(&w.as_str()) {
                out.push(t.clone());
                pending_agreement = true;
                i += 1;
                continue;
            }
            if let Some(v) = agree(w, p.singular) {
                out.push(Tok::Word(v));
                i += 1;
                continue;
            }
        }
        let prev_is_boundary = matches!(out.last(), None | Some(Tok::Punct(_)))
            || matches!(
                out.last().and_then(Tok::word),
                Some(
                    "and"
                        | "but"
                        | "that"
                        | "if"
                        | "because"
                        | "since"
                        | "when"
                        | "as"
                        | "think"
                        | "believe"
                        | "where"
                        | "while"
                        | "until"
                        | "or"
                        | "then"
                        | "so"
                        | "once"
                        | "unless"
                        | "whether"
                        | "before"
                        | "after"
                )
            );
        let mut push = |s: &str| out.push(Tok::Word(s.to_owned()));
        match (speaker, w.as_str()) {
            (Speaker::Patient, "i" | "we") => {
                push(p.subj);
                pending_agreement = true;
            }
            (Speaker::Patient, "i'm" | "we're") => {
                push(p.subj);
                push(if p.singular { "is" } else { "are" });
            }
            (Speaker::Patient, "i've" | "we've") => {
                push(p.subj);
                push(if p.singular { "has" } else { "have" });
            }
            (Speaker::Patient, "i'd" | "we'd") => {
                push(p.subj);
                push("would");
            }
            (Speaker::Patient, "i'll" | "we'll") => {
                push(p.subj);
                push("will");
            }
            (Speaker::Patient, "me" | "us") => push(p.obj),
            (Speaker::Patient, "my" | "our") => push(p.poss),
            (Speaker::Patient, "mine" | "ours") => push(p.poss_pronoun),
            (Speaker::Patient, "myself" | "ourselves") => push(p.refl),
            (Speaker::Clinician, "you're") => {
                push(p.subj);
                push(if p.singular { "is" } else { "are" });
            }
            (Speaker::Clinician, "you've") => {
                push(p.subj);
                push(if p.singular { "has" } else { "have" });
            }
            (Speaker::Clinician, "you'll") => {
                push(p.subj);
                push("will");
            }
            (Speaker::Clinician, "you'd") => {
                push(p.subj);
                push("would");
            }
            (Speaker::Clinician, "you") => {
                let next = toks.get(i + 1).and_then(Tok::word).unwrap_or("");
                let subject = AUX_AFTER_SUBJECT.contains(&next)
                    || (prev_is_boundary && !next.is_empty() && next != "to");
                if subject {
                    push(p.subj);
                    pending_agreement = true;
                } else {
                    push(p.obj);
                }
            }
            (Speaker::Clinician, "your") => push(p.poss),
            (Speaker::Clinician, "yours") => push(p.poss_pronoun),
            (Speaker::Clinician, "yourself") => push(p.refl),
            _ => push(w),
        }
        i += 1;
    }
    out
}

/// Fixed spellings a note uses for spoken forms (the checker knows the same equivalences).
const NORMAL_FORMS: &[(&str, &str)] = &[
    ("milligrams", "mg"),
    ("milligram", "mg"),
    ("micrograms", "mcg"),
    ("microgram", "mcg"),
    ("milliliters", "ml"),
    ("gonna", "going to"),
    ("wanna", "want to"),
    ("gotta", "have to"),
    ("ronchi", "rhonchi"),
];

/// Digits for a number word from [`crate::words`] ("zero" stays a word, as it always has).
fn number_digits(w: &str) -> Option<String> {
    crate::words::number_value(w)
        .filter(|&n| n > 0)
        .map(|n| n.to_string())
}

/// Number words to digits for counts and doses ("four months" → "4 months"); "one" stays a word
/// where it is a pronoun ("the left one"). Also the fixed [`NORMAL_FORMS`].
pub fn normalise_terms(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    for (i, t) in toks.iter().enumerate() {
        let Tok::Word(w) = t else {
            out.push(t.clone());
            continue;
        };
        let prev = i.checked_sub(1).and_then(|j| toks[j].word());
        let next = toks.get(i + 1).and_then(Tok::word);
        if let Some(d) = number_digits(w) {
            let pronoun_one = w == "one"
                && (matches!(
                    prev,
                    Some(
                        "the"
                            | "this"
                            | "that"
                            | "which"
                            | "no"
                            | "every"
                            | "any"
                            | "each"
                            | "another"
                            | "other"
                            | "a"
                    )
                ) || next.is_none()
                    || matches!(
                        next,
                        Some(
                            "of" | "is"
                                | "was"
                                | "are"
                                | "were"
                                | "has"
                                | "had"
                                | "that"
                                | "which"
                                | "who"
                                | "and"
                                | "or"
                                | "but"
                                | "too"
                                | "more"
                                | "thing"
                                | "another"
                                | "at"
                        )
                    ));
            // "twenty five" → "25".
            if let (Some(n), Some(Tok::Word(prev_digits))) = (
                crate::words::number_value(w).filter(|n| (1..=9).contains(n)),
                out.last(),
            ) {
                if prev_digits.len() == 2
                    && prev_digits.ends_with('0')
                    && prev_digits != "10"
                    && prev.is_some_and(|p| number_digits(p).is_some())
                {
                    let tens: u32 = prev_digits.parse().unwrap_or(0);
                    out.pop();
                    out.push(Tok::Word((tens + n).to_string()));
                    continue;
                }
            }
            if !pronoun_one {
                out.push(Tok::Word((*d).to_owned()));
                continue;
            }
        }
        if let Some((_, n)) = NORMAL_FORMS.iter().find(|(s, _)| s == w) {
            for part in n.split(' ') {
                out.push(Tok::Word(part.to_owned()));
            }
            continue;
        }
        out.push(t.clone());
    }
    out
}

/// Joins tokens into a sentence: spacing around punctuation, first letter capitalised, `i` as
/// `I`, a final period.
pub fn render(toks: &[Tok]) -> String {
    let mut s = String::new();
    for t in toks {
        match t {
            Tok::Word(w) => {
                if !s.is_empty() && !s.ends_with('(') {
                    s.push(' ');
                }
                if w == "i" {
                    s.push('I');
                } else if let Some(rest) = w.strip_prefix("i'") {
                    s.push_str("I'");
                    s.push_str(rest);
                } else {
                    s.push_str(w);
                }
            }
            Tok::Punct(c) => {
                if *c == '(' {
                    s.push(' ');
                }
                s.push(*c);
            }
        }
    }
    let s = s.trim().trim_end_matches([',', ';', ':']).trim().to_owned();
    let mut chars = s.chars();
    let mut out = match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '?', '!']) {
        out.push('.');
    }
    // One terminal mark.
    while out.len() > 1 && out[..out.len() - 1].ends_with(['.', '?', '!']) {
        let last = out.pop();
        out.pop();
        out.push(last.unwrap_or('.'));
    }
    out
}

/// Content words of tokens (no punctuation).
pub fn words(toks: &[Tok]) -> impl Iterator<Item = &str> {
    toks.iter().filter_map(Tok::word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(text: &str, speaker: Speaker, p: Option<Pronouns>) -> String {
        let t = strip_fillers(tokenize(text));
        let t = to_third_person(t, speaker, PronounSet::for_pronouns(p));
        render(&normalise_terms(t))
    }

    #[test]
    fn splits_sentences_with_offsets() {
        let text = "I have pain. It is 1.5 cm? Yes!  No";
        let r: Vec<&str> = split_sentences(text)
            .iter()
            .map(|r| &text[r.start..r.end])
            .collect();
        assert_eq!(r, ["I have pain.", "It is 1.5 cm?", "Yes!", "No"]);
        let aci = "okay . all right . um , now , have you had your covid vaccines ?";
        let r: Vec<&str> = split_sentences(aci)
            .iter()
            .map(|r| &aci[r.start..r.end])
            .collect();
        assert_eq!(
            r,
            [
                "okay .",
                "all right .",
                "um , now , have you had your covid vaccines ?"
            ]
        );
    }

    #[test]
    fn patient_speech_becomes_third_person() {
        assert_eq!(
            pipeline(
                "um , i started to feel really tired , was short of breath .",
                Speaker::Patient,
                Some(Pronouns::HeHim)
            ),
            "He started to feel really tired, was short of breath."
        );
        assert_eq!(
            pipeline(
                "my elbows hurt quite a bit and i , i just think it's the bags .",
                Speaker::Patient,
                Some(Pronouns::SheHer)
            ),
            "Her elbows hurt quite a bit and she just thinks it's the bags."
        );
        assert_eq!(
            pipeline("i've been taking it and i am tired", Speaker::Patient, None),
            "They have been taking it and they are tired."
        );
        assert_eq!(
            pipeline(
                "i do n't smoke , you know , at all",
                Speaker::Patient,
                Some(Pronouns::HeHim)
            ),
            "He doesn't smoke, at all."
        );
    }

    #[test]
    fn clinician_speech_about_the_patient() {
        assert_eq!(
            pipeline(
                "so , on your physical exam , you know , your heart sounds nice and strong .",
                Speaker::Clinician,
                Some(Pronouns::HeHim)
            ),
            "On his physical exam, his heart sounds nice and strong."
        );
        assert_eq!(
            pipeline(
                "i want to go ahead and increase your metformin to 1000 milligrams , twice daily .",
                Speaker::Clinician,
                Some(Pronouns::SheHer)
            ),
            "I want to go ahead and increase her metformin to 1000 mg, twice daily."
        );
        assert_eq!(
            pipeline(
                "i'll give you some robitussin for your cough",
                Speaker::Clinician,
                Some(Pronouns::HeHim)
            ),
            "I'll give him some robitussin for his cough."
        );
        assert_eq!(
            pipeline(
                "you have a viral syndrome and you're doing well",
                Speaker::Clinician,
                Some(Pronouns::HeHim)
            ),
            "He has a viral syndrome and he is doing well."
        );
    }

    #[test]
    fn numbers_and_units() {
        assert_eq!(
            pipeline(
                "type two diabetes for twenty five years , see you in four months",
                Speaker::Clinician,
                None
            ),
            "Type 2 diabetes for 25 years, see them in 4 months."
        );
        assert_eq!(
            pipeline("the left one is worse", Speaker::Patient, None),
            "The left one is worse."
        );
    }

    #[test]
    fn fillers_and_repeats() {
        assert_eq!(
            pipeline(
                "i , i got really winded . it really surprised me",
                Speaker::Patient,
                Some(Pronouns::HeHim)
            ),
            "He got really winded. it really surprised him."
        );
        assert_eq!(
            pipeline(
                "we- we're not wearing masks as much",
                Speaker::Patient,
                Some(Pronouns::HeHim)
            ),
            "He is not wearing masks as much."
        );
    }
}
