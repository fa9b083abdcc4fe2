//! Classification and span metrics used by the eval commands.

use std::collections::BTreeMap;
use std::fmt::Write;

/// A confusion matrix over string labels.
#[derive(Debug, Clone, Default)]
pub struct Confusion {
    pub counts: BTreeMap<(String, String), usize>,
}

impl Confusion {
    pub fn add(&mut self, gold: &str, pred: &str) {
        *self
            .counts
            .entry((gold.to_string(), pred.to_string()))
            .or_default() += 1;
    }
    pub fn labels(&self) -> Vec<String> {
        let mut l: Vec<String> = self
            .counts
            .keys()
            .flat_map(|(g, p)| [g.clone(), p.clone()])
            .collect();
        l.sort();
        l.dedup();
        l
    }
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }
    pub fn accuracy(&self) -> f64 {
        let ok: usize = self
            .counts
            .iter()
            .filter(|((g, p), _)| g == p)
            .map(|(_, c)| c)
            .sum();
        ratio(ok, self.total())
    }
    /// (precision, recall, f1, support) of one label.
    pub fn prf(&self, label: &str) -> (f64, f64, f64, usize) {
        let mut tp = 0;
        let mut gold = 0;
        let mut pred = 0;
        for ((g, p), c) in &self.counts {
            if g == label {
                gold += c;
            }
            if p == label {
                pred += c;
            }
            if g == label && p == label {
                tp += c;
            }
        }
        let (pr, rc) = (ratio(tp, pred), ratio(tp, gold));
        (pr, rc, f1(pr, rc), gold)
    }
    /// Macro-F1 over labels that occur in the gold data.
    pub fn macro_f1(&self) -> f64 {
        let gold_labels: Vec<String> = self
            .labels()
            .into_iter()
            .filter(|l| self.prf(l).3 > 0)
            .collect();
        if gold_labels.is_empty() {
            return 0.0;
        }
        gold_labels.iter().map(|l| self.prf(l).2).sum::<f64>() / gold_labels.len() as f64
    }
    /// A printable per-class table and the matrix (rows gold, columns predicted).
    pub fn summary(&self) -> String {
        let labels = self.labels();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<22} {:>6} {:>6} {:>6} {:>7}",
            "label", "P", "R", "F1", "support"
        );
        for l in &labels {
            let (p, r, f, n) = self.prf(l);
            let _ = writeln!(s, "{l:<22} {p:>6.3} {r:>6.3} {f:>6.3} {n:>7}");
        }
        let _ = writeln!(s, "confusion (rows = gold, columns = predicted):");
        let short: Vec<String> = labels.iter().map(|l| l.chars().take(6).collect()).collect();
        let _ = writeln!(
            s,
            "{:<22} {}",
            "",
            short
                .iter()
                .map(|x| format!("{x:>6}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for g in &labels {
            let row: Vec<String> = labels
                .iter()
                .map(|p| {
                    format!(
                        "{:>6}",
                        self.counts
                            .get(&(g.clone(), p.clone()))
                            .copied()
                            .unwrap_or(0)
                    )
                })
                .collect();
            let _ = writeln!(s, "{g:<22} {}", row.join(" "));
        }
        s
    }
}

/// Span-level counts (true positives, predicted, gold).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpanCounts {
    pub tp: usize,
    pub pred: usize,
    pub gold: usize,
}

impl SpanCounts {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.pred)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.gold)
    }
    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }
    pub fn add(&mut self, o: SpanCounts) {
        self.tp += o.tp;
        self.pred += o.pred;
        self.gold += o.gold;
    }
    pub fn line(&self) -> String {
        format!(
            "P {:.3} R {:.3} F1 {:.3} (tp {}, predicted {}, gold {})",
            self.precision(),
            self.recall(),
            self.f1(),
            self.tp,
            self.pred,
            self.gold
        )
    }
}

/// Strict (exact boundaries) and lenient (any overlap, one-to-one) matching of spans
/// `(begin, end_exclusive)`.
pub fn match_spans(gold: &[(usize, usize)], pred: &[(usize, usize)]) -> (SpanCounts, SpanCounts) {
    let strict_tp = pred.iter().filter(|p| gold.contains(p)).count();
    let mut used = vec![false; gold.len()];
    let mut lenient_tp = 0;
    for p in pred {
        if let Some(i) = (0..gold.len()).find(|&i| !used[i] && gold[i].0 < p.1 && p.0 < gold[i].1) {
            used[i] = true;
            lenient_tp += 1;
        }
    }
    (
        SpanCounts {
            tp: strict_tp,
            pred: pred.len(),
            gold: gold.len(),
        },
        SpanCounts {
            tp: lenient_tp,
            pred: pred.len(),
            gold: gold.len(),
        },
    )
}

pub fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

pub fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_metrics() {
        let mut c = Confusion::default();
        c.add("a", "a");
        c.add("a", "b");
        c.add("b", "b");
        assert!((c.accuracy() - 2.0 / 3.0).abs() < 1e-9);
        let (p, r, _, n) = c.prf("a");
        assert_eq!((p, r, n), (1.0, 0.5, 2));
    }

    #[test]
    fn spans() {
        let (s, l) = match_spans(&[(0, 2), (5, 6)], &[(0, 2), (4, 6), (8, 9)]);
        assert_eq!(s.tp, 1);
        assert_eq!(l.tp, 2);
    }
}
