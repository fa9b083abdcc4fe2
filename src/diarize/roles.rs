//! Which diarized speaker is the clinician and which the patient, from what they say and how.
//!
//! General cues only (nothing keyed to a particular encounter): questions asked, "you/your"
//! against "I/my", instructions and plans ("I want you to", "let's", "we'll start"), medical
//! vocabulary, self-introductions ("I'm Dr …", "I'll be your nurse"), being addressed as
//! "doctor", who answers the questions (a yes/no right after someone's question), third-person
//! talk about the patient ("she has been", "my wife") for a companion, and turn length. Each
//! speaker gets a clinician score; the highest is `CLINICIAN_0`; the speaker who answers most
//! and talks most about themselves among the rest is `PATIENT_0`; any further speaker is a
//! second clinician (nurse) when their score is clinician-like, else `PATIENT_1`… (family).
//!
//! Every role has a confidence in 0..1 from the score margins and the amount of speech; below
//! [`UNSURE_BELOW`] the decision is reported as unsure (the transcript's
//! `Extensions.SpeakerRoles`, and each segment's `Extensions.ParticipantRoleConfidence`), so the
//! FHIR mapping does not chart what is not known to be the patient's or the clinician's word.

use crate::asr::{ItemKind, Word};
use crate::healthscribe::ParticipantRole;

/// Roles less sure than this are reported as unsure (the default FHIR mapping charts nothing
/// below 0.8 either).
pub const UNSURE_BELOW: f64 = 0.8;

const QUESTION_STARTS: &[&str] = &[
    "do", "does", "did", "have", "has", "are", "is", "any", "how", "what", "when", "where",
    "which", "why", "can", "could", "would", "were", "was", "tell",
];
const INSTRUCTIONS: &[&str] = &[
    "i want you to",
    "i'd like you to",
    "i would like you to",
    "i'd like to",
    "let's",
    "we'll",
    "we will",
    "i'm going to",
    "i am going to",
    "i'll prescribe",
    "i'll order",
    "go ahead and",
    "make sure you",
    "you should",
    "you need to",
    "i recommend",
    "i'd recommend",
    "follow up",
    "come back",
    "take a deep breath",
    "let me",
    "we're going to",
    "i'm gonna",
];
const MEDICAL: &[&str] = &[
    "diagnosis",
    "prescribe",
    "prescription",
    "milligrams",
    "mg",
    "dose",
    "dosage",
    "exam",
    "examination",
    "x-ray",
    "mri",
    "ct",
    "labs",
    "lab",
    "bloodwork",
    "referral",
    "refer",
    "assessment",
    "tenderness",
    "swelling",
    "symptoms",
    "medication",
    "medications",
    "inhaler",
    "antibiotic",
    "antibiotics",
    "ultrasound",
    "echocardiogram",
    "ekg",
    "follow-up",
    "chronic",
    "acute",
    "bilateral",
    "hypertension",
    "diabetes",
    "a1c",
    "cholesterol",
    "vitals",
    "pulse",
    "murmur",
    "lungs",
    "abdomen",
    "extremities",
    "physical",
    "therapy",
    "treatment",
    "surgery",
    "injection",
    "specialist",
];
const SELF_INTRO: &[&str] = &[
    "i'm dr",
    "i am dr",
    "i'm doctor",
    "i am doctor",
    "my name is dr",
    "my name is doctor",
    "this is dr",
    "i'll be your nurse",
    "i'm your nurse",
    "i'm the nurse",
    "i'm the physician",
    "i'm your doctor",
];
const ADDRESSED_AS_DOCTOR: &[&str] = &[
    "thank you doctor",
    "thanks doctor",
    "thank you doc",
    "thanks doc",
    "doctor i",
    "hi doctor",
    "yes doctor",
];
const COMPANION: &[&str] = &[
    "she's been",
    "he's been",
    "she has been",
    "he has been",
    "she has",
    "he has",
    "she was",
    "he was",
    "she doesn't",
    "he doesn't",
    "she isn't",
    "he isn't",
    "her mother",
    "his mother",
    "my wife",
    "my husband",
    "my son",
    "my daughter",
    "my mom",
    "my dad",
    "our son",
    "our daughter",
];
const ANSWER_STARTS: &[&str] = &[
    "yes",
    "yeah",
    "no",
    "nope",
    "yep",
    "yup",
    "not",
    "i",
    "it",
    "about",
    "maybe",
    "probably",
    "just",
    "sometimes",
    "mm-hmm",
    "uh",
    "um",
    "well",
];

/// What one speaker said, counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Features {
    pub words: usize,
    pub turns: usize,
    pub questions: usize,
    pub you: usize,
    pub first_person: usize,
    pub instructions: usize,
    pub medical: usize,
    pub self_intro: usize,
    pub addressed_doctor: usize,
    pub companion: usize,
    /// Turns that answer another speaker's question.
    pub answers: usize,
}

impl Features {
    fn rate(&self, x: usize) -> f64 {
        x as f64 / self.words.max(1) as f64
    }

    /// Higher is more clinician-like. Weights set on the dev dialogues (lab/diarization).
    pub fn clinician_score(&self) -> f64 {
        let q = self.questions as f64 / self.turns.max(1) as f64;
        let a = self.answers as f64 / self.turns.max(1) as f64;
        2.0 * q - 2.0 * a + 12.0 * self.rate(self.you) - 10.0 * self.rate(self.first_person)
            + 25.0 * self.rate(self.instructions)
            + 15.0 * self.rate(self.medical)
            + 3.0 * (self.self_intro.min(1) as f64)
            - 2.0 * (self.addressed_doctor.min(1) as f64)
            + 0.02 * (self.words as f64 / self.turns.max(1) as f64).min(40.0)
    }
}

/// Lower-case words of a text, punctuation kept as `?` only.
fn tokens(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-')
                .replace('’', "'")
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn count_phrases(text: &str, phrases: &[&str]) -> usize {
    phrases
        .iter()
        .map(|p| {
            text.match_indices(p)
                .filter(|(i, _)| {
                    let before = text[..*i].chars().next_back();
                    let after = text[i + p.len()..].chars().next();
                    !before.is_some_and(char::is_alphanumeric)
                        && !after.is_some_and(char::is_alphanumeric)
                })
                .count()
        })
        .sum()
}

/// A speaker's turn: consecutive words of one speaker (in time order across speakers).
struct Turn {
    speaker: usize,
    text: String,
}

/// Turns of the conversation in time order: a new turn where the speaker changes or after a
/// pause of more than 1.5 s.
fn turns(words: &[Vec<Word>]) -> Vec<Turn> {
    let mut all: Vec<(usize, &Word)> = words
        .iter()
        .enumerate()
        .flat_map(|(s, ws)| ws.iter().map(move |w| (s, w)))
        .collect();
    all.sort_by(|a, b| a.1.start.total_cmp(&b.1.start));
    let mut out: Vec<Turn> = Vec::new();
    let mut last_end = f64::NEG_INFINITY;
    for (s, w) in all {
        let join = w.kind == ItemKind::Punctuation;
        match out.last_mut() {
            Some(t) if t.speaker == s && w.start - last_end < 1.5 => {
                if !join {
                    t.text.push(' ');
                }
                t.text.push_str(&w.text);
            }
            _ => out.push(Turn {
                speaker: s,
                text: w.text.clone(),
            }),
        }
        last_end = w.end;
    }
    out
}

fn is_question(sentence: &str) -> bool {
    let s = sentence.trim();
    s.ends_with('?')
        || (tokens(s)
            .first()
            .is_some_and(|w| QUESTION_STARTS.contains(&w.as_str()))
            && s.split_whitespace().count() >= 3)
}

/// Counts the cues of every speaker.
pub fn features(words: &[Vec<Word>]) -> Vec<Features> {
    let mut f = vec![Features::default(); words.len()];
    let ts = turns(words);
    let mut prev_question_by: Option<usize> = None;
    for t in &ts {
        let x = &mut f[t.speaker];
        let toks = tokens(&t.text);
        let text = toks.join(" ");
        x.turns += 1;
        x.words += toks.len();
        for w in &toks {
            match w.as_str() {
                "you" | "your" | "you're" | "you've" | "yourself" => x.you += 1,
                "i" | "my" | "me" | "i'm" | "i've" | "i'd" | "myself" | "mine" => {
                    x.first_person += 1
                }
                _ => {}
            }
            if MEDICAL.contains(&w.as_str()) {
                x.medical += 1;
            }
        }
        x.instructions += count_phrases(&text, INSTRUCTIONS);
        x.self_intro += count_phrases(&text, SELF_INTRO);
        x.addressed_doctor += count_phrases(&text, ADDRESSED_AS_DOCTOR);
        x.companion += count_phrases(&text, COMPANION);
        if let Some(q) = prev_question_by {
            if q != t.speaker
                && toks
                    .first()
                    .is_some_and(|w| ANSWER_STARTS.contains(&w.as_str()))
            {
                x.answers += 1;
            }
        }
        let sentences: Vec<&str> = t
            .text
            .split_inclusive(['.', '?', '!'])
            .filter(|s| !s.trim().is_empty())
            .collect();
        let qs = sentences.iter().filter(|s| is_question(s)).count();
        x.questions += qs;
        prev_question_by = sentences
            .last()
            .is_some_and(|s| is_question(s))
            .then_some(t.speaker);
    }
    f
}

/// A speaker's decided role.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoleDecision {
    pub role: ParticipantRole,
    pub confidence: f64,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// How much speech backs a decision: a few words are not enough to tell anybody's role.
fn evidence(words: usize) -> f64 {
    1.0 - (-(words as f64) / 40.0).exp()
}

/// Roles for every speaker (index = speaker), from the words the ASR heard for each.
pub fn assign(words: &[Vec<Word>]) -> Vec<RoleDecision> {
    decide(&features(words))
}

/// [`assign`] on counted features.
pub fn decide(f: &[Features]) -> Vec<RoleDecision> {
    let n = f.len();
    let mut out = vec![
        RoleDecision {
            role: ParticipantRole::patient(0),
            confidence: 0.0,
        };
        n
    ];
    let talking: Vec<usize> = (0..n).filter(|&s| f[s].words > 0).collect();
    if talking.is_empty() {
        return out;
    }
    let score: Vec<f64> = f.iter().map(Features::clinician_score).collect();
    let mut by_score = talking.clone();
    by_score.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let clin = by_score[0];
    if talking.len() == 1 {
        // One voice: nobody can say whose it is.
        out[clin] = RoleDecision {
            role: ParticipantRole::clinician(0),
            confidence: 0.0,
        };
        return out;
    }
    // Patient: among the rest, who answers and talks about themselves most, less companion talk.
    let patient_score = |s: usize| {
        let x = &f[s];
        x.answers as f64 + 0.5 * x.first_person as f64 - 1.5 * x.companion as f64
            + 0.01 * x.words as f64
    };
    let rest: Vec<usize> = by_score[1..].to_vec();
    let patient = *rest
        .iter()
        .max_by(|&&a, &&b| patient_score(a).total_cmp(&patient_score(b)))
        .unwrap_or(&rest[0]);
    let margin = score[clin] - score[patient];
    let c = sigmoid(4.0 * margin) * evidence(f[clin].words.min(f[patient].words));
    out[clin] = RoleDecision {
        role: ParticipantRole::clinician(0),
        confidence: c,
    };
    out[patient] = RoleDecision {
        role: ParticipantRole::patient(0),
        confidence: c,
    };
    // Further speakers: clinician-like (nearer the clinician's score, or introduces themselves
    // as staff) → CLINICIAN_n, else a companion → PATIENT_n.
    let (mut nc, mut np) = (1u32, 1u32);
    for &s in rest.iter().filter(|&&s| s != patient) {
        let to_clin = (score[clin] - score[s]).abs();
        let to_pat = (score[s] - score[patient]).abs();
        let staff = f[s].self_intro > 0 && f[s].addressed_doctor == 0;
        let clinician_like = staff || to_clin < to_pat;
        let m = (to_pat - to_clin).abs() + if staff { 1.0 } else { 0.0 };
        let conf = sigmoid(3.0 * m) * evidence(f[s].words) * c.max(0.5);
        out[s] = if clinician_like {
            nc += 1;
            RoleDecision {
                role: ParticipantRole::clinician(nc - 1),
                confidence: conf,
            }
        } else {
            np += 1;
            RoleDecision {
                role: ParticipantRole::patient(np - 1),
                confidence: conf,
            }
        };
    }
    // Speakers without words get the next free patient label and no confidence.
    for s in (0..n).filter(|&s| f[s].words == 0) {
        out[s] = RoleDecision {
            role: ParticipantRole::patient(np),
            confidence: 0.0,
        };
        np += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words for a scripted conversation: (speaker, text) turns, 2 s apart.
    fn script(n: usize, turns: &[(usize, &str)]) -> Vec<Vec<Word>> {
        let mut out = vec![Vec::new(); n];
        let mut t = 0.0;
        for &(s, text) in turns {
            for w in text.split_whitespace() {
                let (core, punct) = match w.strip_suffix(['?', '.', ',']) {
                    Some(c) => (c, Some(&w[c.len()..])),
                    None => (w, None),
                };
                out[s].push(Word {
                    kind: ItemKind::Pronunciation,
                    text: core.into(),
                    start: t,
                    end: t + 0.3,
                    confidence: 0.9,
                    region: 0,
                    utterance: (0.0, 0.0),
                    heard_as: None,
                });
                if let Some(p) = punct {
                    out[s].push(Word {
                        kind: ItemKind::Punctuation,
                        text: p.into(),
                        start: t + 0.3,
                        end: t + 0.3,
                        confidence: 0.9,
                        region: 0,
                        utterance: (0.0, 0.0),
                        heard_as: None,
                    });
                }
                t += 0.35;
            }
            t += 2.0;
        }
        out
    }

    const VISIT: &[(usize, &str)] = &[
        (1, "Good morning. What brings you in today?"),
        (0, "I've had a cough for two weeks and my chest hurts when I breathe."),
        (1, "Do you have any fever or chills?"),
        (0, "No, no fever. I feel tired though."),
        (1, "Are you taking any medications right now?"),
        (0, "Just my inhaler."),
        (1, "Okay. Let me listen to your lungs. Take a deep breath. I want you to start an antibiotic, five hundred milligrams twice a day, and we'll follow up in a week."),
        (0, "Okay, thank you doctor."),
    ];

    #[test]
    fn the_questioner_who_gives_instructions_is_the_clinician() {
        let r = assign(&script(2, VISIT));
        assert_eq!(r[1].role, ParticipantRole::clinician(0));
        assert_eq!(r[0].role, ParticipantRole::patient(0));
        assert!(r[0].confidence > 0.5, "{r:?}");
        // Swapping the speaker numbers swaps the roles: nothing depends on the index.
        let swapped: Vec<(usize, &str)> = VISIT.iter().map(|&(s, t)| (1 - s, t)).collect();
        let r = assign(&script(2, &swapped));
        assert_eq!(r[0].role, ParticipantRole::clinician(0));
    }

    #[test]
    fn little_speech_is_unsure_and_one_voice_is_unknown() {
        let r = assign(&script(2, &[(0, "Hello?"), (1, "Hi.")]));
        assert!(r.iter().all(|d| d.confidence < UNSURE_BELOW), "{r:?}");
        let r = assign(&script(
            1,
            &VISIT.iter().map(|&(_, t)| (0, t)).collect::<Vec<_>>(),
        ));
        assert_eq!(r[0].confidence, 0.0);
    }

    #[test]
    fn a_companion_is_a_second_patient_role_and_a_nurse_a_second_clinician() {
        let mut t = VISIT.to_vec();
        t.insert(
            4,
            (2, "She's been coughing every night, and she has been so tired. My wife never complains."),
        );
        t.push((2, "She has been worried about it."));
        let r = assign(&script(3, &t));
        assert_eq!(r[1].role, ParticipantRole::clinician(0));
        assert_eq!(r[0].role, ParticipantRole::patient(0));
        assert_eq!(r[2].role, ParticipantRole::patient(1));
        let mut t = VISIT.to_vec();
        t.insert(
            0,
            (2, "Hi, I'm your nurse today. Let me take your blood pressure. Do you have any allergies to medications?"),
        );
        t.insert(1, (0, "Penicillin, I get hives."));
        let r = assign(&script(3, &t));
        assert_eq!(r[0].role, ParticipantRole::patient(0));
        assert_eq!(r[2].role.role, ParticipantRole::clinician(0).role, "{r:?}");
    }
}
