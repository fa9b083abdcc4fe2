//! Word error rate with a normaliser in the spirit of Whisper's English normaliser: case,
//! punctuation, hyphens, spoken numbers ("one hundred forty two" → 142, "seven point two" → 7.2),
//! contractions and their Penn-Treebank splits ("wasn't" / "was n't" → was not, "wanna" → want
//! to), disfluency fillers dropped, and a few spelling variants (mg/milligrams, percent/%,
//! alright/all right), applied to both sides.

/// Edit counts of a hypothesis against a reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WerCounts {
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
    pub reference_words: usize,
}

impl WerCounts {
    pub fn wer(&self) -> f64 {
        if self.reference_words == 0 {
            return if self.insertions == 0 { 0.0 } else { 1.0 };
        }
        (self.substitutions + self.deletions + self.insertions) as f64 / self.reference_words as f64
    }
    pub fn add(&mut self, o: WerCounts) {
        self.substitutions += o.substitutions;
        self.deletions += o.deletions;
        self.insertions += o.insertions;
        self.reference_words += o.reference_words;
    }
}

fn small_number(w: &str) -> Option<u64> {
    crate::words::number_value(w)
        .filter(|&n| n < 100)
        .map(u64::from)
}

/// Collapses runs of number words into digits ("one hundred forty two" → 142, "two three" →
/// 2 3, "seven point two" → 7.2).
fn numbers(words: Vec<String>) -> Vec<String> {
    #[derive(PartialEq, Clone, Copy)]
    enum Last {
        None,
        Unit,
        Tens,
        Scale,
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let (mut total, mut cur, mut last, mut j) = (0u64, 0u64, Last::None, i);
        while j < words.len() {
            let w = words[j].as_str();
            match (small_number(w), w) {
                (Some(n), _) if n >= 20 => {
                    if matches!(last, Last::Unit | Last::Tens) {
                        break;
                    }
                    cur += n;
                    last = Last::Tens;
                }
                (Some(n), _) => {
                    let joins_tens = last == Last::Tens && n < 10 && n > 0;
                    if last == Last::Unit || (last == Last::Tens && !joins_tens) {
                        break;
                    }
                    cur += n;
                    last = Last::Unit;
                }
                (None, "hundred") if matches!(last, Last::Unit | Last::Tens) => {
                    cur *= 100;
                    last = Last::Scale;
                }
                (None, "thousand") if last != Last::None => {
                    total += cur.max(1) * 1000;
                    cur = 0;
                    last = Last::Scale;
                }
                (None, "and")
                    if last == Last::Scale
                        && words.get(j + 1).and_then(|w| small_number(w)).is_some() => {}
                _ => break,
            }
            j += 1;
        }
        if last == Last::None {
            out.push(words[i].clone());
            i += 1;
            continue;
        }
        let mut s = (total + cur).to_string();
        if words.get(j).map(String::as_str) == Some("point") {
            if let Some(d) = words
                .get(j + 1)
                .and_then(|w| small_number(w))
                .filter(|d| *d < 10)
            {
                s = format!("{s}.{d}");
                j += 2;
            }
        }
        out.push(s);
        i = j;
    }
    out
}

/// Expands contractions the way Whisper's English normaliser does, so a recogniser may write
/// them either way ("they're" / "they are"): the irregular ones first, then the clitic suffixes
/// ("n't" → not, "'re" → are, "'s" → is, "'d" → would, "'ll" → will, "'ve" → have, "'m" → am).
/// Penn-Treebank-split text (ACI-BENCH writes "was n't", "wan na") gives the same words.
fn expand_contraction(w: &str) -> Vec<String> {
    let bare = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
    let whole = |ws: &[&str]| ws.iter().map(|s| s.to_string()).collect();
    match bare {
        "won't" => return whole(&["will", "not"]),
        "can't" => return whole(&["can", "not"]),
        "let's" => return whole(&["let", "us"]),
        "wanna" => return whole(&["want", "to"]),
        "gonna" => return whole(&["going", "to"]),
        "gotta" => return whole(&["got", "to"]),
        "alright" => return whole(&["all", "right"]),
        _ => {}
    }
    const SUFFIXES: [(&str, &str); 7] = [
        ("n't", "not"),
        ("'re", "are"),
        ("'s", "is"),
        ("'d", "would"),
        ("'ll", "will"),
        ("'ve", "have"),
        ("'m", "am"),
    ];
    for (suffix, full) in SUFFIXES {
        if let Some(stem) = bare.strip_suffix(suffix) {
            let mut out = Vec::new();
            if !stem.is_empty() {
                out.push(stem.to_string());
            }
            out.push(full.to_string());
            return out;
        }
    }
    vec![w.to_string()]
}

/// Joins the Penn Treebank splits of "wanna" / "gonna" / "gotta" ("wan na") back into one word.
fn join_treebank_splits(words: Vec<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        let joined = match (out.last().map(String::as_str), w) {
            (Some("wan"), "na") => Some("wanna"),
            (Some("gon"), "na") => Some("gonna"),
            (Some("got"), "ta") => Some("gotta"),
            _ => None,
        };
        match joined {
            Some(j) => *out.last_mut().expect("matched a previous word") = j.to_string(),
            None => out.push(w.to_string()),
        }
    }
    out
}

/// Normalises text into comparable words.
pub fn normalize(text: &str) -> Vec<String> {
    let lower = text
        .to_lowercase()
        .replace('%', " percent ")
        .replace(['-', '/', '—', '–'], " ")
        .replace('’', "'");
    // "20mg" → "20 mg": units glued to a number (but "a1c" stays one word).
    let spaced: Vec<String> = lower
        .split_whitespace()
        .map(|w| {
            let digits = w
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(w.len());
            let unit = w[digits..].trim_end_matches(|c: char| c.is_ascii_punctuation());
            if digits > 0 && !unit.is_empty() && unit.chars().all(char::is_alphabetic) {
                format!("{} {}", &w[..digits], &w[digits..])
            } else {
                w.to_string()
            }
        })
        .collect();
    let spaced = spaced.join(" ");
    let mut words: Vec<String> = Vec::new();
    let joined = join_treebank_splits(spaced.split_whitespace().collect());
    for raw in joined.iter().flat_map(|w| expand_contraction(w)) {
        let mut w: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '\'' || *c == '.')
            .collect::<String>()
            .trim_matches(|c| c == '.' || c == '\'')
            .to_string();
        // keep decimal points only between digits
        if w.contains('.')
            && !w
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        {
            w = w.replace('.', "");
        }
        w = w.replace(',', "");
        let w = match w.as_str() {
            "mg" | "milligram" => "milligrams".to_string(),
            "mcg" | "microgram" => "micrograms".to_string(),
            "ok" => "okay".to_string(),
            "mr" => "mister".to_string(),
            "dr" => "doctor".to_string(),
            "mm" | "hmm" | "um" | "uh" | "mhm" | "uhm" => continue,
            _ => w,
        };
        if !w.is_empty() {
            words.push(w);
        }
    }
    numbers(words)
}

/// Levenshtein alignment counts over normalised words.
pub fn counts(reference: &str, hypothesis: &str) -> WerCounts {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    let (n, m) = (r.len(), h.len());
    // dp[j] = (cost, subs, dels, ins) for r[..i] vs h[..j]
    let mut prev: Vec<(usize, usize, usize, usize)> = (0..=m).map(|j| (j, 0, 0, j)).collect();
    for i in 1..=n {
        let mut cur = vec![(i, 0, i, 0); m + 1];
        for j in 1..=m {
            let (c, s, d, ins) = prev[j - 1];
            let diag = if r[i - 1] == h[j - 1] {
                (c, s, d, ins)
            } else {
                (c + 1, s + 1, d, ins)
            };
            let (c, s, d, ins) = prev[j];
            let del = (c + 1, s, d + 1, ins);
            let (c, s, d, ins2) = cur[j - 1];
            let insr = (c + 1, s, d, ins2 + 1);
            cur[j] = [diag, del, insr]
                .into_iter()
                .min_by_key(|x| x.0)
                .expect("three candidates");
        }
        prev = cur;
    }
    let (_, substitutions, deletions, insertions) = prev[m];
    WerCounts {
        substitutions,
        deletions,
        insertions,
        reference_words: n,
    }
}

/// How a transcript renders a list of terms (a custom vocabulary): every occurrence in the
/// reference is found at most once; occurrences beyond the reference's count are extra (a term
/// written where it was not said, e.g. by a vocabulary correction gone wrong).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TermCounts {
    pub in_reference: usize,
    pub found: usize,
    pub extra: usize,
}

impl TermCounts {
    pub fn add(&mut self, o: TermCounts) {
        self.in_reference += o.in_reference;
        self.found += o.found;
        self.extra += o.extra;
    }
}

/// Counts each term's occurrences (normalised, as whole words) in both texts.
pub fn term_counts(reference: &str, hypothesis: &str, terms: &[&str]) -> TermCounts {
    let (r, h) = (normalize(reference), normalize(hypothesis));
    let mut out = TermCounts::default();
    for t in terms {
        let t = normalize(t);
        if t.is_empty() {
            continue;
        }
        let (in_r, in_h) = (occurrences(&r, &t), occurrences(&h, &t));
        out.in_reference += in_r;
        out.found += in_r.min(in_h);
        out.extra += in_h.saturating_sub(in_r);
    }
    out
}

/// Non-overlapping occurrences of `needle` in `words`.
fn occurrences(words: &[String], needle: &[String]) -> usize {
    let (mut n, mut i) = (0, 0);
    while i + needle.len() <= words.len() {
        if words[i..i + needle.len()] == *needle {
            n += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_punctuation_and_numbers() {
        assert_eq!(
            normalize("Lisinopril, ten milligrams!"),
            vec!["lisinopril", "10", "milligrams"]
        );
        assert_eq!(normalize("BP 142/88"), vec!["bp", "142", "88"]);
        assert_eq!(
            normalize("one hundred forty two over eighty eight"),
            vec!["142", "over", "88"]
        );
        assert_eq!(
            normalize("A1c of seven point two"),
            vec!["a1c", "of", "7.2"]
        );
        assert_eq!(normalize("A1C of 7.2."), vec!["a1c", "of", "7.2"]);
        assert_eq!(
            normalize("500 mg twice daily"),
            vec!["500", "milligrams", "twice", "daily"]
        );
        assert_eq!(normalize("two or three"), vec!["2", "or", "3"]);
        assert_eq!(normalize("twenty five"), vec!["25"]);
        assert_eq!(
            normalize("20mg, They're"),
            vec!["20", "milligrams", "they", "are"]
        );
    }

    #[test]
    fn contractions_and_their_treebank_splits_read_alike() {
        for (a, b) in [
            ("I wasn't sure", "I was n't sure"),
            ("we don't wanna", "we do n't wan na"),
            ("it's gonna hurt", "it 's gon na hurt"),
            ("alright, they'll call", "all right they will call"),
            ("she can't", "she can not"),
        ] {
            assert_eq!(normalize(a), normalize(b), "{a} / {b}");
        }
        assert_eq!(normalize("wasn't"), vec!["was", "not"]);
        assert_eq!(normalize("hasn't, uh, mm-hmm"), vec!["has", "not"]);
    }

    #[test]
    fn counts_edits() {
        let c = counts(
            "the patient has knee pain",
            "the patient had knee pain today",
        );
        assert_eq!(
            (
                c.substitutions,
                c.deletions,
                c.insertions,
                c.reference_words
            ),
            (1, 0, 1, 5)
        );
        assert!((c.wer() - 0.4).abs() < 1e-9);
        assert_eq!(counts("a b c", "").deletions, 3);
        assert_eq!(counts("", "").wer(), 0.0);
    }

    #[test]
    fn term_counts_find_miss_and_flag_extra_terms() {
        let c = term_counts(
            "You're on lisinopril 10 mg and metformin. Keep the lisinopril.",
            "you're on listen up roll 10 milligrams and metformin. Keep the lisinopril. Motrin.",
            &["lisinopril", "Metformin", "Motrin", "A1c"],
        );
        assert_eq!(
            c,
            TermCounts {
                in_reference: 3,
                found: 2,
                extra: 1
            }
        );
    }
}
