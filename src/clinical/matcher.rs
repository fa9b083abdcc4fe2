//! Token-level leftmost-longest phrase matching with Aho–Corasick.
//!
//! Every folded token is mapped to an id from the lexicon vocabulary and encoded as four bytes,
//! `0xFF` followed by three bytes below `0xFF`. A pattern therefore matches only at token starts
//! and always covers whole tokens, so byte-level leftmost-longest is token-level leftmost-longest.
//! Tokens outside the vocabulary get an id that no pattern uses.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::text::normalize_phrase;

const UNKNOWN: u32 = 0;

/// A compiled set of phrase keys (already normalised with [`normalize_phrase`]).
pub struct TokenMatcher {
    vocab: HashMap<String, u32>,
    ac: Option<AhoCorasick>,
    /// Pattern index → key index given at construction.
    pattern_key: Vec<usize>,
}

fn encode(id: u32, out: &mut Vec<u8>) {
    // base-255 digits, each < 0xFF
    let a = (id / (255 * 255)) % 255;
    let b = (id / 255) % 255;
    let c = id % 255;
    out.extend_from_slice(&[0xFF, a as u8, b as u8, c as u8]);
}

impl TokenMatcher {
    /// Builds a matcher over `keys` (each a space-separated sequence of folded tokens).
    pub fn new<S: AsRef<str>>(keys: &[S]) -> TokenMatcher {
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::with_capacity(keys.len());
        let mut pattern_key = Vec::with_capacity(keys.len());
        for (ki, k) in keys.iter().enumerate() {
            let k = k.as_ref();
            if k.is_empty() {
                continue;
            }
            let mut p = Vec::new();
            for t in k.split(' ') {
                let next = vocab.len() as u32 + 1;
                let id = *vocab.entry(t.to_string()).or_insert(next);
                encode(id, &mut p);
            }
            patterns.push(p);
            pattern_key.push(ki);
        }
        let ac = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .expect("aho-corasick builds"),
            )
        };
        TokenMatcher {
            vocab,
            ac,
            pattern_key,
        }
    }

    /// Is this folded token part of any key?
    pub fn knows(&self, tok: &str) -> bool {
        self.vocab.contains_key(tok)
    }

    /// The vocabulary (for fuzzy correction).
    pub fn vocab(&self) -> impl Iterator<Item = &str> {
        self.vocab.keys().map(String::as_str)
    }

    /// Finds non-overlapping leftmost-longest matches in a sequence of folded tokens; returns
    /// `(begin_token, end_token_exclusive, key_index)`.
    pub fn find<S: AsRef<str>>(&self, toks: &[S]) -> Vec<(usize, usize, usize)> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        let mut hay = Vec::with_capacity(toks.len() * 4);
        for t in toks {
            encode(
                self.vocab.get(t.as_ref()).copied().unwrap_or(UNKNOWN),
                &mut hay,
            );
        }
        ac.find_iter(&hay)
            .map(|m| {
                (
                    m.start() / 4,
                    m.end() / 4,
                    self.pattern_key[m.pattern().as_usize()],
                )
            })
            .collect()
    }
}

/// Convenience: normalise a phrase into a key.
pub fn key(s: &str) -> String {
    normalize_phrase(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_boundaries_and_longest() {
        let m = TokenMatcher::new(&["chest pain", "pain", "pain in", "fever"]);
        let toks = [
            "no",
            "chest",
            "pain",
            "or",
            "fever",
            "painful",
            "pain",
            "intensity",
        ];
        let f = m.find(&toks);
        assert_eq!(f, vec![(1, 3, 0), (4, 5, 3), (6, 7, 1)]);
    }

    #[test]
    fn many_ids_encode_below_ff() {
        let keys: Vec<String> = (0..70000).map(|i| format!("w{i}")).collect();
        let m = TokenMatcher::new(&keys);
        assert_eq!(m.find(&["w69999"]), vec![(0, 1, 69999)]);
    }
}
