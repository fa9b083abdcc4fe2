//! Agglomerative clustering of speaker embeddings (average linkage on cosine distance).
//!
//! Each item is an L2-normalised embedding of one single-speaker piece with a weight (its speech
//! seconds). Clusters merge while the closest pair is nearer than `threshold`, then keep merging
//! until at most `max_clusters` remain (HealthScribe's `MaxSpeakerLabels` is a cap, not a
//! count). Clusters with little speech are then folded into their nearest big cluster: a
//! handful of seconds is too little to be sure it is another person rather than one voice
//! heard through overlap or noise.

/// Cosine distance between L2-normalised vectors.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
}

pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ClusterParams {
    /// Average-linkage cosine distance under which two clusters are one speaker.
    pub threshold: f32,
    pub max_clusters: usize,
    /// A cluster with less speech than this (seconds) joins its nearest bigger cluster.
    pub min_cluster_secs: f64,
}

/// Cluster label for every item (0-based, in order of first appearance).
pub fn cluster(items: &[Vec<f32>], weights: &[f64], p: ClusterParams) -> Vec<usize> {
    let n = items.len();
    if n == 0 {
        return Vec::new();
    }
    // Cluster distance = weighted average of member-pair distances (pair weight = product of
    // item weights), kept in a matrix and updated on each merge (Lance–Williams): O(n²) memory,
    // O(n²) per merge.
    let w: Vec<f64> = weights.iter().map(|x| x.max(1e-3)).collect();
    let mut d: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| cosine_distance(&items[i], &items[j]) as f64)
                .collect()
        })
        .collect();
    let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let mut cw = w.clone();
    let mut alive: Vec<bool> = vec![true; n];
    let mut count = n;
    while count > 1 {
        let mut best = (f64::INFINITY, 0, 0);
        for a in (0..n).filter(|&a| alive[a]) {
            for b in (a + 1..n).filter(|&b| alive[b]) {
                if d[a][b] < best.0 {
                    best = (d[a][b], a, b);
                }
            }
        }
        if best.0 >= p.threshold as f64 && count <= p.max_clusters.max(1) {
            break;
        }
        let (_, a, b) = best;
        for k in (0..n).filter(|&k| alive[k] && k != a && k != b) {
            let v = (cw[a] * d[k][a] + cw[b] * d[k][b]) / (cw[a] + cw[b]);
            d[k][a] = v;
            d[a][k] = v;
        }
        cw[a] += cw[b];
        alive[b] = false;
        let moved = std::mem::take(&mut members[b]);
        members[a].extend(moved);
        count -= 1;
    }
    let mut dist = d;
    // Surviving clusters, each with its matrix row.
    let mut rep: Vec<usize> = (0..n).filter(|&i| alive[i]).collect();
    let mut members: Vec<Vec<usize>> = rep
        .iter()
        .map(|&i| std::mem::take(&mut members[i]))
        .collect();
    let mut cw: Vec<f64> = rep.iter().map(|&i| cw[i]).collect();
    let link = |dist: &[Vec<f64>], x: usize, y: usize| dist[x][y];
    // Fold small clusters into the nearest cluster with enough speech.
    let secs = |m: &[usize]| m.iter().map(|&i| weights[i]).sum::<f64>();
    loop {
        if members.len() <= 1 {
            break;
        }
        let small = (0..members.len())
            .filter(|&c| secs(&members[c]) < p.min_cluster_secs)
            .min_by(|&a, &b| secs(&members[a]).total_cmp(&secs(&members[b])));
        let Some(s) = small else { break };
        let target = (0..members.len())
            .filter(|&c| c != s && secs(&members[c]) >= secs(&members[s]))
            .min_by(|&a, &b| link(&dist, rep[s], rep[a]).total_cmp(&link(&dist, rep[s], rep[b])));
        let Some(t) = target else { break };
        let (rs, rt) = (rep[s], rep[t]);
        let col: Vec<f64> = dist
            .iter()
            .map(|row| (cw[t] * row[rt] + cw[s] * row[rs]) / (cw[t] + cw[s]))
            .collect();
        for (row, &v) in dist.iter_mut().zip(&col) {
            row[rt] = v;
        }
        dist[rt].clone_from(&col);
        cw[t] += cw[s];
        let moved = members.remove(s);
        rep.remove(s);
        cw.remove(s);
        let t = if t > s { t - 1 } else { t };
        members[t].extend(moved);
    }
    let mut label = vec![0; n];
    let mut order: Vec<&Vec<usize>> = members.iter().collect();
    order.sort_by_key(|m| m.iter().min().copied());
    for (c, m) in order.iter().enumerate() {
        for &i in m.iter() {
            label[i] = c;
        }
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors near `centre` (deterministic jitter).
    fn around(centre: &[f32], k: usize, spread: f32, seed: u32) -> Vec<Vec<f32>> {
        let mut s = seed;
        (0..k)
            .map(|_| {
                let mut v: Vec<f32> = centre
                    .iter()
                    .map(|&c| {
                        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        c + spread * ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
                    })
                    .collect();
                normalize(&mut v);
                v
            })
            .collect()
    }

    fn centre(i: usize) -> Vec<f32> {
        let mut v = vec![0.0; 16];
        v[i] = 1.0;
        v[(i + 5) % 16] = 0.3;
        v
    }

    #[test]
    fn finds_two_and_three_speakers() {
        let p = ClusterParams {
            threshold: 0.5,
            max_clusters: 8,
            min_cluster_secs: 0.0,
        };
        let mut items = around(&centre(0), 6, 0.4, 1);
        items.extend(around(&centre(3), 5, 0.4, 2));
        let w = vec![3.0; items.len()];
        let l = cluster(&items, &w, p);
        assert_eq!(&l[..6], &[0; 6]);
        assert_eq!(&l[6..], &[1; 5]);
        items.extend(around(&centre(9), 4, 0.4, 3));
        let l = cluster(&items, &vec![3.0; items.len()], p);
        assert_eq!(l.iter().max(), Some(&2));
        assert!(l[11..].iter().all(|&c| c == 2));
    }

    #[test]
    fn cap_merges_down_to_max_and_small_clusters_fold() {
        let mut items = around(&centre(0), 3, 0.2, 1);
        items.extend(around(&centre(3), 3, 0.2, 2));
        items.extend(around(&centre(9), 3, 0.2, 3));
        let w = vec![3.0; items.len()];
        let capped = ClusterParams {
            threshold: 0.5,
            max_clusters: 2,
            min_cluster_secs: 0.0,
        };
        assert_eq!(cluster(&items, &w, capped).iter().max(), Some(&1));
        // The third voice has 1.5 s in all: folded into a bigger cluster.
        let mut w2 = w.clone();
        w2[6..].iter_mut().for_each(|x| *x = 0.5);
        let folded = ClusterParams {
            threshold: 0.5,
            max_clusters: 8,
            min_cluster_secs: 4.0,
        };
        assert_eq!(cluster(&items, &w2, folded).iter().max(), Some(&1));
        // One voice only: one cluster.
        let one = around(&centre(2), 5, 0.2, 7);
        assert!(cluster(&one, &[2.0; 5], folded).iter().all(|&c| c == 0));
    }
}
