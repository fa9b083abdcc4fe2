//! Section classifier: each turn → SUBJECTIVE / OBJECTIVE / ASSESSMENT_AND_PLAN / OTHER.
//!
//! A multinomial logistic-regression model over the 20 MTS-Dialog section headers, trained by
//! [`train`] (called from `clinical::build`) on the MTS-Dialog *train* split only. Every turn of a
//! training snippet is an example labelled with the snippet's header. Features use context: the
//! turn's own words and bigrams, its speaker role, whether it is a question, the words of the
//! previous and next turns, and whether the previous turn was a question. Header probabilities
//! are summed into SOAP groups ([`header_group`]), then smoothed over neighbouring turns.
//! OTHER (small talk, visit logistics) has no training data in MTS-Dialog; it is assigned by a
//! small cue list ([`small_talk_score`]) only when a turn carries no clinical entity and the
//! classifier itself is not confident.

use std::collections::HashMap;

use super::text::{fold_token, tokenize};
use super::types::{Role, Section};

/// The header → SOAP grouping (documented in `models/clinical/README.md`).
pub fn header_group(header: &str) -> Section {
    match header {
        "CC" | "GENHX" | "PASTMEDICALHX" | "PASTSURGICAL" | "FAM/SOCHX" | "ALLERGY" | "ROS"
        | "MEDICATIONS" | "GYNHX" | "OTHER_HISTORY" | "IMMUNIZATIONS" => Section::SUBJECTIVE,
        "EXAM" | "IMAGING" | "LABS" | "PROCEDURES" | "EDCOURSE" => Section::OBJECTIVE,
        "ASSESSMENT" | "DIAGNOSIS" | "PLAN" | "DISPOSITION" => Section::ASSESSMENT_AND_PLAN,
        // a model trained directly on groups
        "SUBJECTIVE" | "ACI_SUBJECTIVE" => Section::SUBJECTIVE,
        "OBJECTIVE" | "ACI_OBJECTIVE" => Section::OBJECTIVE,
        "ASSESSMENT_AND_PLAN" | "ACI_ASSESSMENT_AND_PLAN" => Section::ASSESSMENT_AND_PLAN,
        _ => Section::OTHER,
    }
}

/// Optional feature families on top of the base set (persisted in the model file as
/// `features\tNAME+NAME...`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureSet {
    /// Phrasing cues of the turn: plan/future phrasing, examination phrasing, numbers with units.
    pub cues: bool,
    /// Crude suffix-stripped stems of the turn's own words.
    pub stems: bool,
    /// No wider (3–5 turns away) context bag.
    pub no_wide: bool,
    /// A still wider bag: turns 6–10 away (`e:`).
    pub wide2: bool,
    /// Words of the clinician turns within 3 turns either side, other than this one (`cc:`).
    pub clin_bag: bool,
    /// Phrasing cues of the previous and next turns (`pcue:`, `ncue:`).
    pub cue_ctx: bool,
}

/// Accessor of one optional family's flag.
type Flag = fn(&mut FeatureSet) -> &mut bool;

/// Each optional family's name in the model file and its flag.
const FAMILIES: [(&str, Flag); 6] = [
    ("cues", |f| &mut f.cues),
    ("stems", |f| &mut f.stems),
    ("nowide", |f| &mut f.no_wide),
    ("wide2", |f| &mut f.wide2),
    ("clinbag", |f| &mut f.clin_bag),
    ("cuectx", |f| &mut f.cue_ctx),
];

impl FeatureSet {
    pub fn parse(s: &str) -> Result<FeatureSet, String> {
        let mut f = FeatureSet::default();
        for part in s
            .split('+')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "base")
        {
            let (_, flag) = FAMILIES
                .iter()
                .find(|(name, _)| *name == part)
                .ok_or_else(|| format!("unknown feature family {part}"))?;
            *flag(&mut f) = true;
        }
        Ok(f)
    }

    pub fn name(&self) -> String {
        let mut copy = *self;
        let mut v = vec!["base"];
        v.extend(
            FAMILIES
                .iter()
                .filter(|(_, flag)| *flag(&mut copy))
                .map(|(n, _)| *n),
        );
        v.join("+")
    }
}

/// Feature strings of turn `i` in a conversation (base feature set).
pub fn turn_features(turns: &[(Role, &str)], i: usize) -> Vec<String> {
    turn_features_with(turns, i, FeatureSet::default())
}

/// Feature strings of turn `i` in a conversation.
pub fn turn_features_with(turns: &[(Role, &str)], i: usize, fs: FeatureSet) -> Vec<String> {
    let mut f = Vec::with_capacity(64);
    f.push("bias".to_string());
    let (role, text) = turns[i];
    f.push(format!("r:{}", role.as_str()));
    let own: Vec<String> = tokenize(text)
        .iter()
        .map(|t| fold_token(&t.lower))
        .collect();
    let q = text.contains('?');
    if q {
        f.push("q".into());
        f.push(format!("rq:{}", role.as_str()));
    }
    let bucket = match own.len() {
        0..=2 => "len:0",
        3..=8 => "len:1",
        9..=25 => "len:2",
        _ => "len:3",
    };
    f.push(bucket.into());
    for w in &own {
        f.push(format!("w:{w}"));
        f.push(format!("rw:{}:{w}", &role.as_str()[..1]));
    }
    for p in own.windows(2) {
        f.push(format!("b:{}_{}", p[0], p[1]));
    }
    if i > 0 {
        let (pr, pt) = turns[i - 1];
        if pt.contains('?') {
            f.push("pq".into());
        }
        f.push(format!("pr:{}", pr.as_str()));
        for t in tokenize(pt) {
            f.push(format!("p:{}", fold_token(&t.lower)));
        }
    } else {
        f.push("first".into());
    }
    if i + 1 < turns.len() {
        for t in tokenize(turns[i + 1].1) {
            f.push(format!("n:{}", fold_token(&t.lower)));
        }
    } else {
        f.push("last".into());
    }
    for j in [i.wrapping_sub(2), i + 2] {
        if let Some((_, t)) = turns.get(j) {
            for t in tokenize(t) {
                f.push(format!("c:{}", fold_token(&t.lower)));
            }
        }
    }
    if fs.cues {
        phrasing_cues(role, &own, &mut f);
    }
    if fs.cue_ctx {
        for (j, tag) in [(i.wrapping_sub(1), "p"), (i + 1, "n")] {
            if let Some((r, t)) = turns.get(j) {
                let ws: Vec<String> = tokenize(t).iter().map(|x| fold_token(&x.lower)).collect();
                let mut g = Vec::new();
                phrasing_cues(*r, &ws, &mut g);
                f.extend(g.into_iter().map(|x| format!("{tag}{x}")));
            }
        }
    }
    if fs.clin_bag {
        let lo = i.saturating_sub(3);
        for (j, (r, t)) in turns.iter().enumerate().take(i + 4).skip(lo) {
            if j != i && *r == Role::Clinician {
                for t in tokenize(t) {
                    f.push(format!("cc:{}", fold_token(&t.lower)));
                }
            }
        }
    }
    if fs.wide2 {
        for d in 6..=10usize {
            for j in [i.wrapping_sub(d), i + d] {
                if let Some((_, t)) = turns.get(j) {
                    for t in tokenize(t) {
                        f.push(format!("e:{}", fold_token(&t.lower)));
                    }
                }
            }
        }
    }
    if fs.stems {
        for w in &own {
            let st = stem(w);
            if st.len() < w.len() {
                f.push(format!("s:{st}"));
            }
        }
    }
    // wider window (turns 3–5 away), as one bag
    for d in (3..=5usize).filter(|_| !fs.no_wide) {
        for j in [i.wrapping_sub(d), i + d] {
            if let Some((_, t)) = turns.get(j) {
                for t in tokenize(t) {
                    f.push(format!("d:{}", fold_token(&t.lower)));
                }
            }
        }
    }
    f.sort_unstable();
    f.dedup();
    f
}

/// Phrasing-cue families (matched on the turn's folded words, apostrophes removed). Each family
/// present adds `cue:FAMILY` and `cue:FAMILY:ROLE` features; the weights are learnt.
const CUE_FAMILIES: &[(&str, &[&str])] = &[
    (
        "plan",
        &[
            "we will",
            "i will",
            "im going to",
            "i am going to",
            "we re going to",
            "were going to",
            "lets",
            "let us",
            "recommend",
            "i want you to",
            "id like",
            "i would like",
            "follow up",
            "come back",
            "prescribe",
            "refer",
            "schedule",
            "start you on",
            "continue",
            "you should",
            "you need to",
            "make sure",
            "go ahead",
            "order",
            "send you",
            "discharge",
            "go home",
            "see you in",
            "next week",
            "next visit",
        ],
    ),
    (
        "assess",
        &[
            "i think",
            "it look like",
            "looks like",
            "you have",
            "likely",
            "probably",
            "suspect",
            "diagnos",
            "consistent with",
            "due to",
            "because of",
            "caused by",
            "infection",
            "good news",
            "not worried",
            "concerned",
        ],
    ),
    (
        "exam",
        &[
            "deep breath",
            "listen",
            "press",
            "look at",
            "take a look",
            "examine",
            "exam",
            "let me check",
            "let me see",
            "does this hurt",
            "does it hurt",
            "any pain when",
            "normal",
            "clear",
            "tender",
            "range of motion",
            "reflex",
            "squeeze",
            "follow my",
            "push against",
            "lie down",
            "sit up",
        ],
    ),
    (
        "result",
        &[
            "result",
            "came back",
            "x ray",
            "xray",
            "scan",
            "mri",
            "ultrasound",
            "blood work",
            "lab",
            "level",
            "report",
            "showed",
            "show",
            "finding",
            "blood pressure",
            "pulse",
            "temperature",
            "weight",
            "heart rate",
            "oxygen",
        ],
    ),
    (
        "history",
        &[
            "have you",
            "do you",
            "did you",
            "how long",
            "when did",
            "ever",
            "history",
            "family",
            "smoke",
            "drink",
            "allerg",
            "surgery",
            "medication",
            "are you taking",
            "any other",
            "how old",
            "what brings you",
        ],
    ),
];

const UNITS: &[&str] = &[
    "over",
    "percent",
    "degree",
    "pound",
    "milligram",
    "mg",
    "mmhg",
    "kilogram",
    "kg",
    "inch",
    "feet",
    "foot",
    "centimeter",
    "cm",
    "beat",
    "breath",
    "liter",
    "unit",
];

fn phrasing_cues(role: Role, own: &[String], f: &mut Vec<String>) {
    let joined = format!(" {} ", own.join(" "));
    let r = &role.as_str()[..1];
    for (name, cues) in CUE_FAMILIES {
        let n = cues
            .iter()
            .filter(|c| {
                if c.len() >= 6 && !c.contains(' ') {
                    joined.contains(*c)
                } else {
                    has_phrase(&joined, c)
                }
            })
            .count();
        if n > 0 {
            f.push(format!("cue:{name}"));
            f.push(format!("cue:{name}:{r}"));
            if n > 1 {
                f.push(format!("cue2:{name}:{r}"));
            }
        }
    }
    let is_num = |w: &str| {
        !matches!(w, "a" | "an" | "oh")
            && (w.chars().all(|c| c.is_ascii_digit()) || super::text::number_value(w).is_some())
    };
    if own
        .windows(2)
        .any(|p| is_num(&p[0]) && UNITS.iter().any(|u| p[1].starts_with(u)))
    {
        f.push("cue:numunit".into());
        f.push(format!("cue:numunit:{r}"));
    }
}

/// Whether `phrase` occurs in `joined` (words separated by single spaces, padded with one
/// space at each end) as whole words; no allocation, as this runs for every cue of every turn.
fn has_phrase(joined: &str, phrase: &str) -> bool {
    joined.match_indices(phrase).any(|(i, _)| {
        let b = joined.as_bytes();
        i > 0 && b[i - 1] == b' ' && b.get(i + phrase.len()) == Some(&b' ')
    })
}

/// A crude suffix-stripping stem (ing, ed, ly, ness, ment, ion...).
fn stem(w: &str) -> String {
    for suf in [
        "ations", "ation", "ments", "ment", "ness", "ing", "ions", "ion", "ed", "ly", "er", "al",
        "ive", "ity", "ic",
    ] {
        if w.len() > suf.len() + 3 && w.ends_with(suf) && w.is_ascii() {
            return w[..w.len() - suf.len()].to_string();
        }
    }
    w.to_string()
}

/// A trained model: header labels and sparse weights per feature.
#[derive(Debug, Clone, Default)]
pub struct SectionModel {
    pub labels: Vec<String>,
    pub groups: Vec<Section>,
    pub weights: HashMap<String, Vec<(u16, f32)>>,
    /// Weight of each neighbour's group log-probabilities in the smoothing step.
    pub smoothing: f32,
    /// Log-probability offsets added per group (SUBJECTIVE, OBJECTIVE, ASSESSMENT_AND_PLAN)
    /// before the decision, tuned on MTS-Dialog validation to undo the training-set skew.
    pub bias: [f32; 3],
    /// Log-space cost of switching group between consecutive turns in [`SectionModel::decode`]
    /// (0 = independent turns). Tuned on ACI-BENCH valid encounters (silver labels).
    pub switch_penalty: f32,
    /// Feature families the model was trained with.
    pub features: FeatureSet,
    /// Weight of a clinician turn's group log-probabilities in a decision over several turns
    /// (others weigh 1); chosen with the offsets by cross-validation.
    pub clinician_weight: f32,
}

impl SectionModel {
    /// Weight of a turn spoken by `role` in a decision over several turns.
    pub fn role_weight(&self, role: Role) -> f32 {
        if role == Role::Clinician && self.clinician_weight > 0.0 {
            self.clinician_weight
        } else {
            1.0
        }
    }
}

impl SectionModel {
    /// Parses the committed TSV form (see [`SectionModel::to_tsv`]).
    pub fn from_tsv(s: &str) -> Result<SectionModel, String> {
        let mut m = SectionModel {
            smoothing: 0.5,
            clinician_weight: 1.0,
            ..Default::default()
        };
        for (ln, line) in s.lines().enumerate() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let mut parts = line.split('\t');
            let kind = parts.next().unwrap_or("");
            match kind {
                "label" => {
                    let name = parts.next().ok_or(format!("line {ln}: label"))?;
                    m.labels.push(name.to_string());
                    m.groups.push(header_group(name));
                }
                "bias" => {
                    for (k, v) in parts.take(3).enumerate() {
                        m.bias[k] = v.parse().map_err(|_| format!("line {ln}: bias"))?;
                    }
                }
                "features" => {
                    m.features = FeatureSet::parse(parts.next().unwrap_or(""))
                        .map_err(|e| format!("line {ln}: {e}"))?;
                }
                "clinician_weight" => {
                    m.clinician_weight = parts
                        .next()
                        .and_then(|x| x.parse().ok())
                        .ok_or(format!("line {ln}: clinician_weight"))?;
                }
                "switch" => {
                    m.switch_penalty = parts
                        .next()
                        .and_then(|x| x.parse().ok())
                        .ok_or(format!("line {ln}: switch"))?;
                }
                "smoothing" => {
                    m.smoothing = parts
                        .next()
                        .and_then(|x| x.parse().ok())
                        .ok_or(format!("line {ln}: smoothing"))?;
                }
                "f" => {
                    let name = parts.next().ok_or(format!("line {ln}: feature"))?;
                    let mut ws = Vec::new();
                    for kv in parts.next().unwrap_or("").split(' ') {
                        if kv.is_empty() {
                            continue;
                        }
                        let (k, v) = kv.split_once(':').ok_or(format!("line {ln}: weight"))?;
                        let k: u16 = k.parse().map_err(|_| format!("line {ln}: index"))?;
                        let v: f32 = v.parse().map_err(|_| format!("line {ln}: value"))?;
                        if (k as usize) >= m.labels.len() {
                            return Err(format!("line {ln}: index out of range"));
                        }
                        ws.push((k, v));
                    }
                    m.weights.insert(name.to_string(), ws);
                }
                _ => return Err(format!("line {ln}: unknown record {kind}")),
            }
        }
        if m.labels.is_empty() {
            return Err("no labels".into());
        }
        Ok(m)
    }

    /// Serialises the model: `label\tNAME` lines, then `f\tFEATURE\tidx:w idx:w...` lines,
    /// weights rounded to 3 decimals, near-zero weights dropped, sorted for reproducibility.
    pub fn to_tsv(&self, header: &str) -> String {
        let mut s = String::new();
        for l in header.lines() {
            s.push_str("# ");
            s.push_str(l);
            s.push('\n');
        }
        s.push_str(&format!("smoothing\t{}\n", self.smoothing));
        s.push_str(&format!(
            "bias\t{}\t{}\t{}\n",
            self.bias[0], self.bias[1], self.bias[2]
        ));
        s.push_str(&format!("switch\t{}\n", self.switch_penalty));
        s.push_str(&format!("features\t{}\n", self.features.name()));
        s.push_str(&format!("clinician_weight\t{}\n", self.clinician_weight));
        for l in &self.labels {
            s.push_str(&format!("label\t{l}\n"));
        }
        let mut names: Vec<&String> = self.weights.keys().collect();
        names.sort();
        for n in names {
            let ws: Vec<String> = self.weights[n]
                .iter()
                .filter(|(_, w)| w.abs() >= 0.005)
                .map(|(k, w)| format!("{k}:{}", fmt_w(*w)))
                .collect();
            if ws.is_empty() {
                continue;
            }
            s.push_str(&format!("f\t{n}\t{}\n", ws.join(" ")));
        }
        s
    }

    /// Header log-probabilities for a feature set.
    pub fn header_logprobs(&self, feats: &[String]) -> Vec<f32> {
        let mut z = vec![0f32; self.labels.len()];
        for f in feats {
            if let Some(ws) = self.weights.get(f.as_str()) {
                for &(k, w) in ws {
                    z[k as usize] += w;
                }
            }
        }
        log_softmax(&mut z);
        z
    }

    /// Group probabilities (SUBJECTIVE, OBJECTIVE, ASSESSMENT_AND_PLAN) from header log-probs.
    #[allow(clippy::needless_range_loop)]
    pub fn group_probs(&self, header_lp: &[f32]) -> [f32; 3] {
        let mut g = [0f32; 3];
        for (k, lp) in header_lp.iter().enumerate() {
            let idx = match self.groups[k] {
                Section::SUBJECTIVE => 0,
                Section::OBJECTIVE => 1,
                Section::ASSESSMENT_AND_PLAN => 2,
                Section::OTHER => continue,
            };
            g[idx] += lp.exp();
        }
        for k in 0..3 {
            g[k] *= self.bias[k].exp();
        }
        let s: f32 = g.iter().sum::<f32>().max(1e-9);
        g.iter_mut().for_each(|x| *x /= s);
        g
    }

    /// Most likely group per turn for a whole conversation: Viterbi over the per-turn group
    /// log-probabilities with a cost for every change of group (sections come in runs). Returns
    /// (group index, that turn's smoothed probability of the group).
    pub fn decode(&self, turns: &[(Role, &str)]) -> Vec<(usize, f32)> {
        let probs = self.classify_groups(turns);
        let n = probs.len();
        if n == 0 {
            return Vec::new();
        }
        let lp: Vec<[f32; 3]> = probs
            .iter()
            .zip(turns)
            .map(|(p, (role, _))| p.map(|x| self.role_weight(*role) * x.max(1e-6).ln()))
            .collect();
        let mut score = lp[0];
        let mut back = vec![[0u8; 3]; n];
        for i in 1..n {
            let mut next = [0f32; 3];
            for b in 0..3 {
                let mut best = (f32::NEG_INFINITY, 0u8);
                for (a, sa) in score.iter().enumerate() {
                    let v = sa - if a == b { 0.0 } else { self.switch_penalty };
                    if v > best.0 {
                        best = (v, a as u8);
                    }
                }
                next[b] = best.0 + lp[i][b];
                back[i][b] = best.1;
            }
            score = next;
        }
        let mut k = (0..3)
            .max_by(|a, b| score[*a].total_cmp(&score[*b]))
            .unwrap_or(0);
        let mut out = vec![(0usize, 0f32); n];
        for i in (0..n).rev() {
            out[i] = (k, probs[i][k]);
            k = back[i][k] as usize;
        }
        out
    }

    /// Feature strings of turn `i` (the model's feature set).
    pub fn features_of(&self, turns: &[(Role, &str)], i: usize) -> Vec<String> {
        turn_features_with(turns, i, self.features)
    }

    /// Per-turn SOAP group probabilities (offsets applied), without neighbour smoothing.
    pub fn turn_group_probs(&self, turns: &[(Role, &str)]) -> Vec<[f32; 3]> {
        (0..turns.len())
            .map(|i| self.group_probs(&self.header_logprobs(&self.features_of(turns, i))))
            .collect()
    }

    /// Per-turn SOAP group probabilities for a conversation, smoothed over neighbours.
    pub fn classify_groups(&self, turns: &[(Role, &str)]) -> Vec<[f32; 3]> {
        let raw = self.turn_group_probs(turns);
        (0..raw.len())
            .map(|i| {
                let mut lp = [0f32; 3];
                for (j, r) in raw
                    .iter()
                    .enumerate()
                    .take((i + 2).min(raw.len()))
                    .skip(i.saturating_sub(1))
                {
                    let w = if j == i { 1.0 } else { self.smoothing };
                    for g in 0..3 {
                        lp[g] += w * r[g].max(1e-6).ln();
                    }
                }
                let mut v = lp.to_vec();
                log_softmax(&mut v);
                [v[0].exp(), v[1].exp(), v[2].exp()]
            })
            .collect()
    }
}

fn fmt_w(w: f32) -> String {
    let s = format!("{w:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

fn log_softmax(z: &mut [f32]) {
    let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let s: f32 = z.iter().map(|x| (x - m).exp()).sum();
    let l = m + s.ln();
    z.iter_mut().for_each(|x| *x -= l);
}

/// Group index → Section.
pub fn group_section(g: usize) -> Section {
    [
        Section::SUBJECTIVE,
        Section::OBJECTIVE,
        Section::ASSESSMENT_AND_PLAN,
    ][g.min(2)]
}

/// Cue score for small talk / visit logistics (0 = none). Team-written cue list.
pub fn small_talk_score(text: &str) -> f32 {
    const CUES: &[&str] = &[
        "hello",
        "hi",
        "hey",
        "good morning",
        "good afternoon",
        "good evening",
        "nice to meet",
        "nice to see",
        "how are you",
        "how is it going",
        "how s it going",
        "thank you",
        "thanks",
        "bye",
        "goodbye",
        "see you",
        "take care",
        "have a good",
        "have a great",
        "weather",
        "parking",
        "traffic",
        "weekend",
        "vacation",
        "holiday",
        "front desk",
        "paperwork",
        "insurance card",
        "check out",
        "checkout",
        "waiting room",
        "copay",
        "co pay",
        "my name is",
        "i m doctor",
        "dragon",
        "record this",
        "recording",
        "the game",
        "your kid",
        "grandkid",
        "birthday",
        "sorry i m late",
        "sorry for the wait",
        "come on in",
        "have a seat",
        "please sit",
        "sign in",
        "the nurse will",
        "you re welcome",
    ];
    let toks = tokenize(text);
    let norm: String = toks
        .iter()
        .map(|t| t.lower.replace('\'', " "))
        .collect::<Vec<_>>()
        .join(" ");
    let padded = format!(" {norm} ");
    let hits = CUES
        .iter()
        .filter(|c| padded.contains(&format!(" {c} ")))
        .count();
    if hits == 0 {
        0.0
    } else {
        (hits as f32 * 0.5 + if toks.len() <= 14 { 0.4 } else { 0.0 }).min(1.0)
    }
}

/// A labelled training conversation: turns and the header of the whole snippet.
pub struct TrainingDialogue {
    pub turns: Vec<(Role, String)>,
    pub header: String,
    /// Per-turn labels (silver-aligned encounters); empty = every turn has `header`.
    pub turn_labels: Vec<String>,
}

/// Training hyper-parameters.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Train on SOAP groups instead of the 20 headers.
    pub group_labels: bool,
    pub epochs: usize,
    pub learning_rate: f32,
    pub l2: f32,
    pub min_feature_count: usize,
    /// Exponent of the inverse-frequency class weight (0 = unweighted, 1 = balanced).
    pub class_weight_power: f32,
    pub seed: u64,
    /// Leave the ACI-BENCH silver turns out of training (experiments).
    pub no_aci: bool,
    pub features: FeatureSet,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            group_labels: false,
            epochs: 12,
            learning_rate: 0.2,
            l2: 1e-4,
            min_feature_count: 3,
            class_weight_power: 0.5,
            seed: 17,
            no_aci: false,
            features: FeatureSet::default(),
        }
    }
}

impl TrainConfig {
    /// Parses `key=value,key=value...` over the defaults (`cwp`, `l2`, `epochs`, `lr`, `min`,
    /// `seed`, `feat=base+cues...`, and the flags `groups`, `noaci`). Empty = defaults.
    pub fn parse(s: &str) -> Result<TrainConfig, String> {
        let mut cfg = TrainConfig::default();
        for kv in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (k, val) = kv.split_once('=').unwrap_or((kv, ""));
            let num = |v: &str| v.parse::<f32>().map_err(|_| format!("{kv}: not a number"));
            let int = |v: &str| {
                v.parse::<usize>()
                    .map_err(|_| format!("{kv}: not an integer"))
            };
            match k {
                "cwp" => cfg.class_weight_power = num(val)?,
                "l2" => cfg.l2 = num(val)?,
                "lr" => cfg.learning_rate = num(val)?,
                "epochs" => cfg.epochs = int(val)?,
                "min" => cfg.min_feature_count = int(val)?,
                "seed" => cfg.seed = int(val)? as u64,
                "groups" => cfg.group_labels = true,
                "noaci" => cfg.no_aci = true,
                "feat" => cfg.features = FeatureSet::parse(val)?,
                _ => return Err(format!("unknown training option {k}")),
            }
        }
        Ok(cfg)
    }
}

/// Trains the header model with AdaGrad on per-turn examples. Deterministic for a given input
/// order and config.
#[allow(clippy::needless_range_loop)]
pub fn train(dialogues: &[TrainingDialogue], cfg: &TrainConfig) -> SectionModel {
    let label_of = |h: &str| -> String {
        if cfg.group_labels {
            header_group(h).as_str().to_string()
        } else {
            h.to_string()
        }
    };
    let mut labels: Vec<String> = dialogues
        .iter()
        .flat_map(|d| {
            std::iter::once(label_of(&d.header)).chain(d.turn_labels.iter().map(|l| label_of(l)))
        })
        .collect();
    labels.sort();
    labels.dedup();
    let lab_idx: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    // examples
    let mut examples: Vec<(Vec<String>, usize)> = Vec::new();
    for d in dialogues {
        let turns: Vec<(Role, &str)> = d.turns.iter().map(|(r, t)| (*r, t.as_str())).collect();
        let y = lab_idx[label_of(&d.header).as_str()];
        for i in 0..turns.len() {
            let yi = d
                .turn_labels
                .get(i)
                .map(|l| lab_idx[label_of(l).as_str()])
                .unwrap_or(y);
            examples.push((turn_features_with(&turns, i, cfg.features), yi));
        }
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (f, _) in &examples {
        for x in f {
            *counts.entry(x.as_str()).or_default() += 1;
        }
    }
    let mut names: Vec<&str> = counts
        .iter()
        .filter(|(_, c)| **c >= cfg.min_feature_count)
        .map(|(k, _)| *k)
        .collect();
    names.sort();
    let fidx: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let k = labels.len();
    let xs: Vec<(Vec<usize>, usize)> = examples
        .iter()
        .map(|(f, y)| {
            (
                f.iter()
                    .filter_map(|x| fidx.get(x.as_str()).copied())
                    .collect(),
                *y,
            )
        })
        .collect();
    let mut class_n = vec![0usize; k];
    for (_, y) in &xs {
        class_n[*y] += 1;
    }
    let n = xs.len() as f32;
    let cw: Vec<f32> = class_n
        .iter()
        .map(|c| (n / (k as f32 * (*c).max(1) as f32)).powf(cfg.class_weight_power))
        .collect();
    let mut w = vec![0f32; names.len() * k];
    let mut g2 = vec![1e-8f32; names.len() * k];
    let mut order: Vec<usize> = (0..xs.len()).collect();
    let mut rng = cfg
        .seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut z = vec![0f32; k];
    for _epoch in 0..cfg.epochs {
        // Fisher-Yates with an LCG (deterministic)
        for i in (1..order.len()).rev() {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let j = ((rng >> 33) as usize) % (i + 1);
            order.swap(i, j);
        }
        for &ei in &order {
            let (f, y) = &xs[ei];
            z.iter_mut().for_each(|v| *v = 0.0);
            for &fi in f {
                for (c, zc) in z.iter_mut().enumerate() {
                    *zc += w[fi * k + c];
                }
            }
            log_softmax(&mut z);
            for c in 0..k {
                let p = z[c].exp();
                let grad_c = (p - if c == *y { 1.0 } else { 0.0 }) * cw[*y];
                for &fi in f {
                    let idx = fi * k + c;
                    let g = grad_c + cfg.l2 * w[idx];
                    g2[idx] += g * g;
                    w[idx] -= cfg.learning_rate * g / g2[idx].sqrt();
                }
            }
        }
    }
    let mut weights = HashMap::new();
    for (fi, name) in names.iter().enumerate() {
        let ws: Vec<(u16, f32)> = (0..k)
            .filter_map(|c| {
                let v = (w[fi * k + c] * 100.0).round() / 100.0;
                (v.abs() >= 0.005).then_some((c as u16, v))
            })
            .collect();
        if !ws.is_empty() {
            weights.insert(name.to_string(), ws);
        }
    }
    SectionModel {
        groups: labels.iter().map(|l| header_group(l)).collect(),
        labels,
        weights,
        smoothing: 0.5,
        bias: [0.0; 3],
        switch_penalty: 0.0,
        features: cfg.features,
        clinician_weight: 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping() {
        assert_eq!(header_group("FAM/SOCHX"), Section::SUBJECTIVE);
        assert_eq!(header_group("EXAM"), Section::OBJECTIVE);
        assert_eq!(header_group("PLAN"), Section::ASSESSMENT_AND_PLAN);
    }

    #[test]
    fn small_talk() {
        assert!(small_talk_score("Hi, how are you?") > 0.5);
        assert_eq!(small_talk_score("I have chest pain."), 0.0);
    }

    #[test]
    fn tsv_roundtrip() {
        let d = vec![
            TrainingDialogue {
                turns: vec![
                    (Role::Clinician, "any allergies?".into()),
                    (Role::Patient, "no".into()),
                ],
                header: "ALLERGY".into(),
                turn_labels: vec![],
            },
            TrainingDialogue {
                turns: vec![(Role::Clinician, "lungs are clear".into())],
                header: "EXAM".into(),
                turn_labels: vec![],
            },
        ];
        let cfg = TrainConfig {
            min_feature_count: 1,
            ..Default::default()
        };
        let m = train(&d, &cfg);
        let m2 = SectionModel::from_tsv(&m.to_tsv("test")).unwrap();
        assert_eq!(m2.labels, m.labels);
        let g = m2.classify_groups(&[(Role::Clinician, "lungs are clear")]);
        assert!(g[0][1] > 0.5, "{g:?}");
    }
}
