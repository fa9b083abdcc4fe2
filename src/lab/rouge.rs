//! ROUGE-1/2/L F1 as Google's `rouge_score` package computes them with its default tokenizer and
//! no stemming (which is what ACI-BENCH's `evaluate.load('rouge')` uses): lower-case, every run
//! of characters other than `a-z0-9` is a separator. ROUGE-L is the LCS over the whole text;
//! ROUGE-Lsum (summary-level union LCS over newline-separated sentences) is reported as well.
//! Scores are averaged over notes (macro), as ACI-BENCH's script does.

use std::collections::HashMap;

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
    /// Adds another note's scores (for the macro average).
    pub fn add(&mut self, o: RougeScores) {
        self.rouge1 += o.rouge1;
        self.rouge2 += o.rouge2;
        self.rouge_l += o.rouge_l;
        self.rouge_lsum += o.rouge_lsum;
    }
    /// Every score times `k`.
    pub fn scale(self, k: f64) -> Self {
        Self {
            rouge1: self.rouge1 * k,
            rouge2: self.rouge2 * k,
            rouge_l: self.rouge_l * k,
            rouge_lsum: self.rouge_lsum * k,
        }
    }
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
}
