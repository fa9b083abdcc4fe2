//! Tokenisation and normalisation shared by the section classifier and the lexicon matcher.
//!
//! Tokens are maximal runs of alphanumeric characters (an apostrophe inside a word is kept and then
//! dropped by normalisation, so "Crohn's" → `crohn`). Offsets are Unicode scalar (char) offsets.

/// One token with its char offsets (end exclusive) and byte offsets into the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub begin_char: usize,
    pub end_char: usize,
    pub begin_byte: usize,
    pub end_byte: usize,
    /// Lower-cased surface form with apostrophes removed.
    pub lower: String,
}

/// Splits `text` into tokens. Never panics, whatever the input.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, usize)> = None; // (begin_char, begin_byte)
    let mut ci = 0usize;
    let mut iter = text.char_indices().peekable();
    while let Some((bi, c)) = iter.next() {
        let is_word = c.is_alphanumeric()
            || ((c == '\'' || c == '\u{2019}')
                && cur.is_some()
                && iter.peek().is_some_and(|(_, n)| n.is_alphanumeric()));
        if is_word {
            if cur.is_none() {
                cur = Some((ci, bi));
            }
        } else if let Some((bc, bb)) = cur.take() {
            push_token(&mut out, text, bc, ci, bb, bi);
        }
        ci += 1;
    }
    if let Some((bc, bb)) = cur {
        push_token(&mut out, text, bc, ci, bb, text.len());
    }
    out
}

fn push_token(out: &mut Vec<Token>, text: &str, bc: usize, ec: usize, bb: usize, eb: usize) {
    let surface = &text[bb..eb];
    let mut lower = String::with_capacity(surface.len());
    for ch in surface.chars() {
        if ch == '\'' || ch == '\u{2019}' {
            continue;
        }
        lower.extend(ch.to_lowercase());
    }
    out.push(Token {
        begin_char: bc,
        end_char: ec,
        begin_byte: bb,
        end_byte: eb,
        lower,
    });
}

/// Matching key of one lower-cased token: possessive `s` dropped, simple plural folded.
/// Applied identically to lexicon terms and to text, so it only has to be consistent, not
/// linguistically right ("diabetes" → "diabete" on both sides).
pub fn fold_token(lower: &str) -> String {
    let mut w = lower.to_string();
    let n = w.chars().count();
    if n > 4 && w.ends_with("ies") {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if n > 4
        && (w.ends_with("ches") || w.ends_with("shes") || w.ends_with("xes") || w.ends_with("sses"))
    {
        w.truncate(w.len() - 2);
    } else if n > 3
        && w.ends_with('s')
        && !w.ends_with("ss")
        && !w.ends_with("us")
        && !w.ends_with("is")
        && w.is_ascii()
    {
        w.truncate(w.len() - 1);
    }
    w
}

/// Normalises a phrase into its matching key: tokens folded and joined by single spaces.
pub fn normalize_phrase(s: &str) -> String {
    let toks = tokenize(s);
    let mut out = String::new();
    for t in toks {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&fold_token(&t.lower));
    }
    out
}

/// Value of a spoken or written number ("ten", "one and a half", "twenty five", "2.5",
/// "point five", "a"). Returns `None` when the words are not a number.
pub fn number_value(s: &str) -> Option<f64> {
    let t = s
        .trim()
        .to_ascii_lowercase()
        .replace(',', "")
        .replace("a half", "half");
    if let Ok(v) = t.parse::<f64>() {
        return Some(v);
    }
    let mut total = 0.0f64;
    let mut current = 0.0f64;
    let mut any = false;
    let mut decimal: Option<f64> = None; // multiplier for digits after "point"
    for w in t.split(|c: char| c.is_whitespace() || c == '-') {
        if w.is_empty() || w == "and" {
            continue;
        }
        let small = match w {
            "oh" => Some(0.0),
            "a" | "an" => Some(1.0),
            // "hundred" is a scale, handled below
            "hundred" => None,
            _ => crate::words::number_value(w).map(f64::from),
        };
        if let Some(mut v) = small {
            if let Some(m) = decimal {
                v *= m;
                decimal = Some(m / 10.0);
            }
            current += v;
            any = true;
            continue;
        }
        match w {
            "hundred" => {
                current = current.max(1.0) * 100.0;
                any = true;
            }
            "thousand" => {
                total += current.max(1.0) * 1000.0;
                current = 0.0;
                any = true;
            }
            "half" => {
                current += 0.5;
                any = true;
            }
            "point" => decimal = Some(0.1),
            _ => {
                if let Ok(v) = w.parse::<f64>() {
                    current += v;
                    any = true;
                } else {
                    return None;
                }
            }
        }
    }
    if any {
        Some(total + current)
    } else {
        None
    }
}

/// Map from byte offset to char offset for `text` (length `text.len() + 1`).
pub fn byte_to_char_map(text: &str) -> Vec<usize> {
    let mut map = vec![0usize; text.len() + 1];
    let mut ci = 0;
    for (bi, c) in text.char_indices() {
        for slot in map.iter_mut().skip(bi).take(c.len_utf8()) {
            *slot = ci;
        }
        ci += 1;
    }
    map[text.len()] = ci;
    map
}

/// The substring between two char offsets.
pub fn char_slice(text: &str, begin: usize, end: usize) -> String {
    text.chars()
        .skip(begin)
        .take(end.saturating_sub(begin))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_char_offsets() {
        let t = tokenize("Crohn's — é2 mg");
        let l: Vec<_> = t.iter().map(|x| x.lower.as_str()).collect();
        assert_eq!(l, ["crohns", "é2", "mg"]);
        assert_eq!((t[1].begin_char, t[1].end_char), (10, 12));
    }

    #[test]
    fn folding() {
        assert_eq!(normalize_phrase("Kidney Stones"), "kidney stone");
        assert_eq!(normalize_phrase("allergies"), "allergy");
        assert_eq!(normalize_phrase("Diabetes"), normalize_phrase("diabetes"));
    }

    #[test]
    fn numbers() {
        assert_eq!(number_value("ten"), Some(10.0));
        assert_eq!(number_value("twenty five"), Some(25.0));
        assert_eq!(number_value("one and a half"), Some(1.5));
        assert_eq!(number_value("two point five"), Some(2.5));
        assert_eq!(number_value("five hundred"), Some(500.0));
        assert_eq!(number_value("12.5"), Some(12.5));
        assert_eq!(number_value("banana"), None);
    }
}
