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
    // Acknowledgements that end a thought in unpunctuated speech ("… started feeling badly
    // okay now were you having chills"): a break at any length, unless they are a predicate
    // ("doing okay", "if it's okay").
    const STRONG: &[&str] = &["okay", "ok", "alright", "yeah", "all right"];
    const PREDICATE: &[&str] = &[
        "doing", "is", "was", "be", "been", "feel", "feels", "felt", "look", "looks", "it's",
        "that's", "i'm", "he's", "she's", "are", "am", "seems", "seem", "were", "sounds", "pretty",
        "just", "all",
    ];
    let s = &text[r.start..r.end];
    let words: Vec<(usize, &str)> = s
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - s.as_ptr() as usize, w))
        .collect();
    let long = words.len() > 30;
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut count = 0usize;
    let mut prev = String::new();
    for (i, (off, w)) in words.iter().enumerate() {
        let lw = w.to_lowercase();
        let lw = lw.trim_matches(|c: char| !c.is_alphanumeric());
        let two = words
            .get(i + 1)
            .map(|(_, n)| format!("{lw} {}", n.to_lowercase()))
            .unwrap_or_default();
        let strong = (STRONG.contains(&lw) || STRONG.contains(&two.as_str()))
            && count >= 2
            && i + 2 < words.len()
            && !PREDICATE.contains(&prev.as_str());
        let weak = long && count >= 8 && (MARKERS.contains(&lw) || MARKERS.contains(&two.as_str()));
        if strong || weak {
            push_trimmed(text, r.start + start, r.start + off, &mut out);
            start = *off;
            count = 0;
        }
        count += 1;
        prev = lw.to_owned();
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
    // A stutter written as one hyphenated word ("i-i", "we-we") is the word once.
    for t in &mut toks {
        if let Tok::Word(w) = t {
            if let Some((first, _)) = w.split_once('-') {
                if !first.is_empty() && w.split('-').all(|part| part == first) {
                    *w = first.to_owned();
                }
            }
        }
    }
    toks
}

/// Words that carry nothing in a note, removed anywhere ("mm" and "er" only standing alone:
/// elsewhere they are millimetres and the emergency room).
const FILLERS: &[&str] = &[
    "um", "umm", "uh", "uhm", "uh-huh", "hmm", "mm-hmm", "mhm", "ah", "oh", "huh", "kinda",
    "sorta", "thanks", "alrighty", "gotcha", "wow", "gosh", "oops", "oof", "hmmm", "hm", "mmm",
    "uhh", "erm", "hi", "hello", "bye", "goodbye",
];

/// Words dropped at the start of a sentence (discourse markers).
const OPENERS: &[&str] = &[
    "so",
    "okay",
    "ok",
    "alright",
    "well",
    "and",
    "but",
    "now",
    "yeah",
    "yes",
    "right",
    "anyway",
    "also",
    "then",
    "great",
    "good",
    "sure",
    "actually",
    "alrighty",
    "hey",
    "yep",
    "yup",
    "perfect",
    "anyways",
    "like",
    "sorry",
    "understood",
    "cool",
    "awesome",
    "wow",
];

/// Discourse markers and acknowledgements removed where they stand alone between punctuation
/// or the sentence's edges (", okay ,"; "great ."), and kept inside a clause ("doing okay").
const STANDALONE_MARKERS: &[&str] = &[
    "okay",
    "ok",
    "alright",
    "yeah",
    "yep",
    "yup",
    "yes",
    "right",
    "sure",
    "great",
    "good",
    "perfect",
    "well",
    "so",
    "now",
    "anyway",
    "anyways",
    "correct",
    "like",
    "awesome",
    "cool",
    "wow",
    "excellent",
    "fine",
    "mm",
    "er",
];

/// Word sequences that are fillers or politeness wherever they stand; each is removed with the
/// words listed, first match wins.
const FILLER_RUNS: &[&[&str]] = &[
    &["if", "it's", "okay", "with", "you"],
    &["if", "that's", "okay", "with", "you"],
    &["if", "it's", "alright", "with", "you"],
    &["if", "that's", "alright", "with", "you"],
    &["if", "it's", "all", "right", "with", "you"],
    &["if", "that's", "all", "right", "with", "you"],
    &["if", "you", "don't", "mind"],
    &["thank", "you", "so", "much"],
    &["thank", "you", "very", "much"],
    &["thank", "you"],
    &["like", "you", "know"],
    &["i", "mean"],
    &["i", "guess"],
    &["all", "right"],
    &["go", "ahead", "and"],
    &["and", "things", "like", "that"],
    &["and", "stuff", "like", "that"],
    &["or", "anything", "like", "that"],
    &["or", "something", "like", "that"],
    &["things", "like", "that"],
    &["and", "stuff"],
    &["or", "whatever"],
];

/// Adverbs of speech a note leaves out ([`filler_len`]).
const SPOKEN_ADVERBS: &[&str] = &[
    "just",
    "really",
    "actually",
    "basically",
    "honestly",
    "obviously",
    "literally",
    "definitely",
    "certainly",
    "totally",
];
/// Words after which a [`SPOKEN_ADVERBS`] word stays ("not just", "doesn't really").
const NEGATION_BEFORE_ADVERB: &[&str] = &[
    "not", "don't", "doesn't", "didn't", "isn't", "wasn't", "aren't", "weren't", "haven't",
    "hasn't", "can't", "won't", "never", "no", "nothing",
];

/// Words before "you know" that make it a real question or clause ("do you know", "let you
/// know") rather than a filler.
const YOU_KNOW_CLAUSE_BEFORE: &[&str] = &["do", "did", "if", "let", "don't", "to", "would", "you"];
/// Words after "you know" that make it a clause ("you know of", "you know what it is").
const YOU_KNOW_CLAUSE_AFTER: &[&str] = &["of", "about", "what", "how", "whether", "if"];
/// Words before "kind of"/"sort of" that make it a noun phrase ("some kind of rash").
const KIND_OF_NOUN_BEFORE: &[&str] = &[
    "some", "what", "this", "that", "any", "a", "the", "no", "every",
];

/// Words after which "okay"/"alright" is a predicate ("doing okay"), not a filler.
const MARKER_PREDICATES: &[&str] = &[
    "doing", "is", "was", "be", "been", "feel", "feels", "felt", "feeling", "look", "looks",
    "it's", "that's", "i'm", "he's", "she's", "are", "am", "seems", "seem", "were", "sounds",
    "pretty", "just", "all", "fine", "not", "being", "looked", "seemed",
];
/// Words before a hedging "like" ("it was like really bad").
const LIKE_HEDGE_BEFORE: &[&str] = &[
    "is", "was", "are", "were", "it's", "that's", "just", "really", "and", "but", "so", "or", "be",
    "been", "kind", "sort", "i'm", "he's", "she's",
];
/// Words after a hedging "like" ("like maybe", "like a couple").
const LIKE_HEDGE_AFTER: &[&str] = &[
    "really",
    "maybe",
    "about",
    "just",
    "so",
    "very",
    "kind",
    "literally",
    "i",
    "he",
    "she",
    "we",
    "they",
    "you",
    "it's",
    "i'm",
    "almost",
    "probably",
    "every",
];
/// Words before a "like" that is a verb or a comparison ("feels like", "would like").
const LIKE_KEEP_BEFORE: &[&str] = &[
    "feel",
    "feels",
    "felt",
    "feeling",
    "look",
    "looks",
    "looked",
    "looking",
    "seem",
    "seems",
    "seemed",
    "sound",
    "sounds",
    "sounded",
    "would",
    "i'd",
    "he'd",
    "she'd",
    "we'd",
    "they'd",
    "you'd",
    "something",
    "anything",
    "nothing",
    "things",
    "stuff",
    "more",
    "much",
    "exactly",
    "don't",
    "doesn't",
    "didn't",
    "not",
    "i",
    "you",
    "we",
    "they",
    "he",
    "she",
];

fn is_punct_or_edge(t: Option<&Tok>) -> bool {
    matches!(t, None | Some(Tok::Punct(_)))
}

/// How many tokens from `i` form a filler (0: none). `out` is what is kept so far.
fn filler_len(toks: &[Tok], i: usize, out: &[Tok]) -> usize {
    let word = |k: usize| toks.get(k).and_then(Tok::word).unwrap_or("");
    let w = word(i);
    if FILLERS.contains(&w) {
        return 1;
    }
    for run in FILLER_RUNS {
        if run.iter().enumerate().all(|(k, r)| word(i + k) == *r) {
            return run.len();
        }
    }
    let prev = out.last().and_then(Tok::word).unwrap_or("");
    let next = word(i + 1);
    if w == "you"
        && next == "know"
        && !YOU_KNOW_CLAUSE_BEFORE.contains(&prev)
        && !YOU_KNOW_CLAUSE_AFTER.contains(&word(i + 2))
    {
        return 2;
    }
    if (w == "kind" || w == "sort") && next == "of" && !KIND_OF_NOUN_BEFORE.contains(&prev) {
        return 2;
    }
    // An acknowledgement inside an unpunctuated sentence ("… badly okay now …") is a
    // filler unless it is a predicate ("doing okay", "if it is okay").
    if matches!(w, "okay" | "ok" | "alright" | "yeah" | "yep" | "understood")
        && !MARKER_PREDICATES.contains(&prev)
    {
        return 1;
    }
    // "like" as a hedge ("it was like really bad", "I was like, …").
    if w == "like"
        && (LIKE_HEDGE_BEFORE.contains(&prev)
            || (LIKE_HEDGE_AFTER.contains(&next) && !LIKE_KEEP_BEFORE.contains(&prev)))
    {
        return 1;
    }
    // Hedging and emphasis adverbs of speech ("it's just really bad", "I actually think"),
    // kept after a negation ("not just", "not really": there they change the meaning).
    if SPOKEN_ADVERBS.contains(&w) && !NEGATION_BEFORE_ADVERB.contains(&prev) {
        return 1;
    }
    let standalone = is_punct_or_edge(out.last()) && is_punct_or_edge(toks.get(i + 1));
    if standalone && STANDALONE_MARKERS.contains(&w) {
        return 1;
    }
    // "like" as a hedge: after a comma or at the start before a word, or before a number
    // ("like 2 weeks"); "feels like", "things like that" stay.
    if w == "like"
        && (is_punct_or_edge(out.last())
            || matches!(toks.get(i + 1), Some(Tok::Punct(_)))
            || (!matches!(
                prev,
                "feel"
                    | "feels"
                    | "felt"
                    | "look"
                    | "looks"
                    | "seem"
                    | "seems"
                    | "sound"
                    | "sounds"
                    | "would"
                    | "i'd"
                    | "he'd"
                    | "she'd"
                    | "they'd"
            ) && (next.starts_with(|c: char| c.is_ascii_digit())
                || crate::words::number_value(next).is_some())))
    {
        return 1;
    }
    0
}

/// Removes fillers, politeness, false starts, immediate repetitions and leading discourse
/// markers.
pub fn strip_fillers(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if let Tok::Word(w) = &toks[i] {
            let n = filler_len(&toks, i, &out);
            if n > 0 {
                i += n;
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
    // Leading discourse markers, acknowledgements and punctuation.
    loop {
        match out.first() {
            Some(Tok::Punct(_)) => {
                out.remove(0);
            }
            Some(Tok::Word(w)) if OPENERS.contains(&w.as_str()) && out.len() > 2 => {
                out.remove(0);
            }
            _ => match leading_acknowledgement(&out) {
                0 => break,
                n => {
                    out.drain(..n);
                }
            },
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

/// Acknowledgements that open a sentence before what it says ("that's okay, we will monitor
/// it", "sounds good I will order …").
const ACKNOWLEDGEMENTS: &[&str] = &[
    "okay",
    "ok",
    "alright",
    "fine",
    "good",
    "great",
    "perfect",
    "wonderful",
    "awesome",
    "excellent",
    "understandable",
    "fair",
];
/// Words that start a new clause after an opening acknowledgement.
const CLAUSE_OPENERS: &[&str] = &[
    "i", "we", "you", "he", "she", "they", "so", "and", "but", "now", "let's", "let", "are", "is",
    "do", "does", "did", "have", "has", "how", "what", "when", "where", "any", "can", "could",
    "would", "will", "if", "then", "i'm", "i'll", "we'll", "we're", "you're", "it's", "there's",
    "your", "my", "well", "yeah", "okay",
];

/// How many tokens at the start of `toks` are an acknowledgement ("that's okay", "that is
/// fine", "sounds good") followed by a clause of its own (0: none); the clause stays.
fn leading_acknowledgement(toks: &[Tok]) -> usize {
    let w = |i: usize| toks.get(i).and_then(Tok::word).unwrap_or("");
    let n = match (w(0), w(1)) {
        ("that's" | "sounds", _) => 1,
        ("that", "is" | "sounds") => 2,
        _ => return 0,
    };
    if !ACKNOWLEDGEMENTS.contains(&w(n)) {
        return 0;
    }
    let rest = toks.len() - (n + 1);
    match toks.get(n + 1) {
        Some(Tok::Punct(_)) if rest > 3 => n + 2,
        Some(Tok::Word(next)) if rest > 2 && CLAUSE_OPENERS.contains(&next.as_str()) => n + 1,
        _ => 0,
    }
}

/// Verbs after the clinician's "let's" / "let me" that announce the next part of the visit
/// ("let's talk about…", "let me listen"), not an order.
const ANNOUNCING: &[&str] = &[
    "move",
    "talk",
    "go",
    "look",
    "start",
    "switch",
    "turn",
    "focus",
    "review",
    "discuss",
    "chat",
    "see",
    "hop",
    "jump",
    "wrap",
    "finish",
    "listen",
    "examine",
    "touch",
    "circle",
    "check",
    "head",
    "proceed",
    "begin",
    "pull",
    "bring",
    "just",
    "quickly",
    "recap",
    "summarize",
];

/// The clinician's "let's …": an announcement ("let's talk about your knee", "let me take a
/// look") is not note content and is cut to the end of its clause; a proposal ("let's order an
/// x-ray") is the plan, written "we will order an x-ray" when `proposals` (the clinician's
/// speech; a patient's "let's" is only cut when it announces). `None` when nothing is left.
pub fn clinician_register(toks: Vec<Tok>, proposals: bool) -> Option<Vec<Tok>> {
    let Some(pos) = toks
        .iter()
        .position(|t| t.word() == Some("let's"))
        .or_else(|| toks.iter().position(|t| t.word() == Some("let")))
    else {
        return Some(toks);
    };
    let lets = toks[pos].word() == Some("let's");
    let rest: Vec<&str> = toks[pos + 1..].iter().map_while(Tok::word).collect();
    let (w1, w2) = (
        rest.first().copied().unwrap_or(""),
        rest.get(1).copied().unwrap_or(""),
    );
    if !(lets || w1 == "me" || w1 == "us") {
        return Some(toks);
    }
    // After "let me"/"let us" the verb is the word after the pronoun.
    let (verb, next) = if lets {
        (w1, w2)
    } else {
        (w2, rest.get(2).copied().unwrap_or(""))
    };
    let announcing = ANNOUNCING.contains(&verb)
        || (matches!(verb, "take" | "have" | "do" | "get") && matches!(next, "a" | "started"))
        || rest.iter().any(|w| matches!(*w, "exam" | "examination"));
    if !lets && !announcing {
        // "let me know", "let me prescribe…": the clinician's own first person stays.
        return Some(toks);
    }
    if announcing {
        // Cut the clause from "let's" to the next punctuation mark.
        let end = toks[pos..]
            .iter()
            .position(|t| matches!(t, Tok::Punct(_)))
            .map_or(toks.len(), |e| pos + e);
        let mut out: Vec<Tok> = toks[..pos].to_vec();
        out.extend(toks[end..].iter().cloned());
        while matches!(out.first(), Some(Tok::Punct(_))) {
            out.remove(0);
        }
        if out.iter().filter(|t| t.word().is_some()).count() == 0 {
            return None;
        }
        // The next "let's" of a run-on sentence, if any.
        return clinician_register(out, proposals);
    }
    if !proposals {
        // A patient's "let's" proposing what to do is most often the clinician's turn under
        // the patient's label (speech recognition swaps speakers): not attributed.
        return None;
    }
    let mut out: Vec<Tok> = toks[..pos].to_vec();
    out.push(Tok::Word("we".into()));
    out.push(Tok::Word("will".into()));
    out.extend(toks[pos + 1..].iter().cloned());
    clinician_register(out, proposals)
}

/// The words after an announcement of the assessment and plan ("let's talk about my assessment
/// and plan for you, so for your first problem…" → "for your first problem…"); the tokens
/// unchanged when there is none.
pub fn after_announcement(toks: Vec<Tok>) -> Vec<Tok> {
    let w = |i: usize| toks.get(i).and_then(Tok::word).unwrap_or("");
    // "assessment and plan", "assessment and my plan".
    let Some(end) = (0..toks.len()).find_map(|i| {
        let head = matches!(w(i), "assessment" | "impression") && w(i + 1) == "and";
        match (head, w(i + 2), w(i + 3)) {
            (true, "plan", _) => Some(i + 3),
            (true, "my", "plan") => Some(i + 4),
            _ => None,
        }
    }) else {
        return toks;
    };
    let mut i = end;
    while i < toks.len()
        && (matches!(toks[i], Tok::Punct(_))
            || matches!(
                w(i),
                "for" | "you" | "here" | "today" | "is" | "as" | "follows" | "so"
            ))
    {
        i += 1;
    }
    toks[i..].to_vec()
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

/// Whether a sentence without a subject opens with a verb that "the patient" can take as its
/// subject ("quit 10 years ago" → "The patient quit 10 years ago"): an auxiliary, a modal or
/// an unambiguous past tense (not "left", "cut" or "bit", which are also nouns or adjectives).
pub fn opens_with_finite_verb(toks: &[Tok]) -> bool {
    const AUXILIARIES: &[&str] = &[
        "is", "was", "has", "had", "does", "did", "will", "would", "can", "could", "should",
        "might", "may", "isn't", "wasn't", "hasn't", "hadn't", "doesn't", "didn't", "won't",
        "wouldn't", "can't", "cannot", "couldn't", "started", "stopped", "tried", "used",
    ];
    const AMBIGUOUS: &[&str] = &[
        "been", "were", "left", "put", "cut", "hit", "read", "led", "bit", "shot",
    ];
    match toks.first().and_then(Tok::word) {
        Some(w) => {
            AUXILIARIES.contains(&w) || (IRREGULAR_PAST.contains(&w) && !AMBIGUOUS.contains(&w))
        }
        None => false,
    }
}

/// Words that follow a subject but are not verbs; never conjugated.
const FUNCTION_WORDS: &[&str] = &[
    "my", "your", "his", "her", "their", "our", "the", "a", "an", "this", "that", "it", "to",
    "and", "or", "but", "so", "not", "no", "in", "on", "at", "for", "with", "of", "from", "up",
    "down", "out", "about", "like", "as", "if", "then", "there", "here", "me", "you", "him",
    "them", "us", "some", "any", "all", "because", "when", "what", "guess", "mean", "i", "we",
    "he", "she", "they", "too", "yes", "no", "yeah", "okay", "um", "uh",
];

/// Present-tense verbs that end in "ed" like a past tense ("he needs", not "he need").
const ED_BASE_VERBS: &[&str] = &[
    "need", "feed", "bleed", "breed", "heed", "speed", "proceed", "succeed", "exceed", "shed",
    "plead", "weed", "seed",
];

/// Words after "like" that make it the verb "to like" ("she likes to travel").
const LIKE_OBJECTS: &[&str] = &[
    "to", "it", "that", "this", "the", "a", "an", "him", "her", "them", "his", "their", "my",
    "your",
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
    if (v.ends_with("ed") && !ED_BASE_VERBS.contains(&v))
        || v.ends_with('s')
        || !v.chars().all(|c| c.is_ascii_alphabetic())
    {
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
        _ if (v.ends_with("ed") && !ED_BASE_VERBS.contains(&v))
            || v.ends_with("ing")
            || v.ends_with("ly") =>
        {
            None
        }
        _ if v.chars().all(|c| c.is_ascii_alphabetic()) && v.len() > 1 => Some(third_singular(v)),
        _ => None,
    }
}

/// Auxiliaries that make the clinician's next `you` their subject ("are you", "do you").
const AUX_BEFORE_SUBJECT: &[&str] = &[
    "are", "were", "do", "did", "does", "have", "has", "had", "can", "could", "would", "will",
    "should", "don't", "didn't", "aren't", "haven't", "weren't", "may", "might", "must",
];

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
            let next = toks.get(i + 1).and_then(Tok::word).unwrap_or("");
            if w == "like" && p.singular && LIKE_OBJECTS.contains(&next) {
                out.push(Tok::Word("likes".into()));
                i += 1;
                continue;
            }
            if let Some(v) = agree(w, p.singular) {
                out.push(Tok::Word(v));
                i += 1;
                continue;
            }
        }
        // An auxiliary opening a clause before the clinician's "you" makes a question ("are
        // you taking", "do you have"): "you" is its subject, the auxiliary agrees with it.
        if speaker == Speaker::Clinician && w == "you" {
            let n = out.len();
            let opens = n >= 1
                && (n == 1
                    || matches!(out[n - 2], Tok::Punct(_))
                    || matches!(
                        out[n - 2].word(),
                        Some("and" | "so" | "but" | "or" | "now" | "then" | "well")
                    ));
            let aux = out
                .last()
                .and_then(Tok::word)
                .filter(|a| AUX_BEFORE_SUBJECT.contains(a))
                .map(str::to_owned);
            // Inside a run-on sentence too ("… so do you have a family history"), except
            // after "have", whose "you" is often its object ("I have you on lisinopril").
            // Not after the clinician's own subject ("I are you…" is a false start).
            let own_subject = n >= 2 && matches!(out[n - 2].word(), Some("i" | "we"));
            let inverted = !own_subject
                && aux
                    .as_deref()
                    .is_some_and(|a| !matches!(a, "have" | "has" | "had"));
            if let (true, Some(a)) = (opens || inverted, aux) {
                if let Some(v) = agree(&a, p.singular) {
                    out.pop();
                    out.push(Tok::Word(v));
                }
                out.push(Tok::Word(p.subj.to_owned()));
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
    written_numbers(out)
}

fn is_number(w: &str) -> bool {
    !w.is_empty()
        && w.starts_with(|c: char| c.is_ascii_digit())
        && w.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Numbers as notes write them: "142 over 88" → "142/88" (also spoken "one forty two over
/// eighty eight"), "7.2 percent" → "7.2%".
fn written_numbers(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let w = |k: usize| toks.get(k).and_then(Tok::word).unwrap_or("");
        let two_digits = |x: &str| x.len() == 2 && x.chars().all(|c| c.is_ascii_digit());
        // Spoken hundreds before "over": "one forty two over eighty" → "142/80".
        if matches!(w(i), "1" | "2")
            && two_digits(w(i + 1))
            && w(i + 2) == "over"
            && is_number(w(i + 3))
        {
            out.push(Tok::Word(format!("{}{}/{}", w(i), w(i + 1), w(i + 3))));
            i += 4;
            continue;
        }
        if is_number(w(i)) && w(i + 1) == "over" && is_number(w(i + 2)) {
            out.push(Tok::Word(format!("{}/{}", w(i), w(i + 2))));
            i += 3;
            continue;
        }
        if is_number(w(i)) && w(i + 1) == "percent" {
            out.push(Tok::Word(format!("{}%", w(i))));
            i += 2;
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

/// Contractions as notes write them out ("it's" → "it is", "doesn't" → "does not").
const CONTRACTIONS: &[(&str, &str)] = &[
    ("it's", "it is"),
    ("that's", "that is"),
    ("there's", "there is"),
    ("what's", "what is"),
    ("i'm", "i am"),
    ("i've", "i have"),
    ("i'll", "i will"),
    ("i'd", "i would"),
    ("we're", "we are"),
    ("we've", "we have"),
    ("we'll", "we will"),
    ("they're", "they are"),
    ("they've", "they have"),
    ("they'll", "they will"),
    ("he'll", "he will"),
    ("she'll", "she will"),
    ("don't", "do not"),
    ("doesn't", "does not"),
    ("didn't", "did not"),
    ("can't", "cannot"),
    ("won't", "will not"),
    ("isn't", "is not"),
    ("wasn't", "was not"),
    ("aren't", "are not"),
    ("weren't", "were not"),
    ("haven't", "have not"),
    ("hasn't", "has not"),
    ("couldn't", "could not"),
    ("wouldn't", "would not"),
    ("shouldn't", "should not"),
];

/// Written register: contractions spelled out, "be going to" as "will" ("I'm going to order"
/// → "I will order", "she is going to start" → "she will start"), and "just" dropped before
/// verbs of wanting and thinking ("I just want to" → "I want to").
pub fn written_register(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len() + 4);
    let mut i = 0;
    while i < toks.len() {
        let w = |k: usize| toks.get(k).and_then(Tok::word).unwrap_or("");
        let cur = w(i);
        // "am/is/are/'m/'re going to VERB" → "will VERB" (not "going to the store").
        let be_contracted = ["i'm", "we're", "they're", "you're"].contains(&cur);
        let be = matches!(cur, "am" | "is" | "are");
        if (be || be_contracted)
            && w(i + 1) == "going"
            && w(i + 2) == "to"
            && !matches!(
                w(i + 3),
                "" | "the" | "a" | "an" | "be" | "my" | "your" | "his" | "her"
            )
        {
            if be_contracted {
                out.push(Tok::Word(cur.split('\'').next().unwrap_or(cur).to_owned()));
            }
            out.push(Tok::Word("will".into()));
            i += 3;
            continue;
        }
        if cur == "just"
            && matches!(
                w(i + 1),
                "want" | "wanted" | "think" | "thought" | "feel" | "need" | "wanna" | "kind"
            )
        {
            i += 1;
            continue;
        }
        if let Some((_, full)) = CONTRACTIONS.iter().find(|(c, _)| *c == cur) {
            for part in full.split(' ') {
                out.push(Tok::Word(part.to_owned()));
            }
            i += 1;
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
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
            "He started to feel tired, was short of breath."
        );
        assert_eq!(
            pipeline(
                "my elbows hurt quite a bit and i , i just think it's the bags .",
                Speaker::Patient,
                Some(Pronouns::SheHer)
            ),
            "Her elbows hurt quite a bit and she thinks it's the bags."
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
            "I want to increase her metformin to 1000 mg, twice daily."
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
    fn no_broken_agreement_from_fillers() {
        assert_eq!(
            pipeline(
                "no not really i mean i was just like you know i guess i just twisted",
                Speaker::Patient,
                Some(Pronouns::HeHim)
            ),
            "No not really he was he twisted."
        );
        assert_eq!(
            pipeline(
                "thanks , your blood pressure today is one forty two over eighty eight",
                Speaker::Clinician,
                Some(Pronouns::SheHer)
            ),
            "Her blood pressure today is 142/88."
        );
        assert_eq!(
            pipeline("it was like two weeks ago , okay", Speaker::Patient, None),
            "It was 2 weeks ago."
        );
        assert_eq!(
            pipeline("your a1c was 7.2 percent", Speaker::Clinician, None),
            "Their a1c was 7.2%."
        );
        // A clause that only looks like a filler stays.
        assert_eq!(
            pipeline("do you know what it is", Speaker::Patient, None),
            "Do you know what it is."
        );
    }

    #[test]
    fn agreement_after_the_rewritten_subject() {
        let he = Some(Pronouns::HeHim);
        let she = Some(Pronouns::SheHer);
        assert_eq!(
            pipeline("i-i think i need to go clean", Speaker::Patient, he),
            "He thinks he needs to go clean."
        );
        assert_eq!(
            pipeline(
                "i do n't think you need to follow up with the surgeon",
                Speaker::Clinician,
                he
            ),
            "I don't think he needs to follow up with the surgeon."
        );
        assert_eq!(
            pipeline(
                "so i know you said that you like to do a lot of travel",
                Speaker::Clinician,
                she
            ),
            "I know she said that she likes to do a lot of travel."
        );
        assert_eq!(
            pipeline(
                "that's what we expected so do you have a family history of kidney stones",
                Speaker::Clinician,
                she
            ),
            "That's what we expected so does she have a family history of kidney stones."
        );
        // "have you" keeps its object reading.
        assert_eq!(
            pipeline("i have you on lisinopril", Speaker::Clinician, she),
            "I have her on lisinopril."
        );
    }

    #[test]
    fn acknowledgements_politeness_and_spoken_adverbs_go() {
        let he = Some(Pronouns::HeHim);
        assert_eq!(
            pipeline(
                "that's okay we will just continue to monitor that",
                Speaker::Clinician,
                he
            ),
            "We will continue to monitor that."
        );
        assert_eq!(
            pipeline(
                "that's okay . are you taking the lisinopril",
                Speaker::Clinician,
                he
            ),
            "Is he taking the lisinopril."
        );
        assert_eq!(
            pipeline(
                "if it's okay with you i would like to do a quick physical exam",
                Speaker::Clinician,
                he
            ),
            "I would like to do a quick physical exam."
        );
        assert_eq!(
            pipeline("it's just really bad", Speaker::Patient, he),
            "It's bad."
        );
        assert_eq!(
            pipeline(
                "it does n't really hurt , not just now",
                Speaker::Patient,
                he
            ),
            "It doesn't really hurt, not just now."
        );
        // An acknowledgement that is the whole finding stays.
        assert_eq!(
            pipeline("that's fine", Speaker::Clinician, he),
            "That's fine."
        );
    }

    #[test]
    fn a_sentence_without_its_subject_takes_the_patient() {
        assert!(opens_with_finite_verb(&tokenize("quit 10 years ago")));
        assert!(opens_with_finite_verb(&tokenize("had a fever last week")));
        assert!(!opens_with_finite_verb(&tokenize("left knee pain")));
        assert!(!opens_with_finite_verb(&tokenize(
            "a little bit of tingling"
        )));
    }

    #[test]
    fn written_register_spells_out_and_uses_will() {
        let w = |t: &str| render(&written_register(tokenize(t)));
        assert_eq!(
            w("i'm going to order an x-ray , it's broken"),
            "I will order an x-ray, it is broken."
        );
        assert_eq!(w("she is going to the store"), "She is going to the store.");
        assert_eq!(w("he doesn't smoke"), "He does not smoke.");
        assert_eq!(w("i just want to check"), "I want to check.");
    }

    #[test]
    fn lets_is_a_plan_or_an_announcement() {
        let c = |t: &str| clinician_register(strip_fillers(tokenize(t)), true).map(|t| render(&t));
        assert_eq!(
            c("let's go ahead and order an x-ray of your knee").as_deref(),
            Some("We will order an x-ray of your knee.")
        );
        assert_eq!(c("let's talk about your diabetes"), None);
        assert_eq!(
            c("your lungs are clear , let me take a listen to your heart").as_deref(),
            Some("Your lungs are clear.")
        );
        assert_eq!(
            c("let me know if it gets worse").as_deref(),
            Some("Let me know if it gets worse.")
        );
        let a = after_announcement(tokenize(
            "let's move onto assessment and plan , bilateral carpal tunnel syndrome",
        ));
        assert_eq!(render(&a), "Bilateral carpal tunnel syndrome.");
    }

    #[test]
    fn fillers_and_repeats() {
        assert_eq!(
            pipeline(
                "i , i got really winded . it really surprised me",
                Speaker::Patient,
                Some(Pronouns::HeHim)
            ),
            "He got winded. it surprised him."
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
