//! The cue words of the note generator, in one place: which words route a sentence to which
//! kind of content, and which words open a question, a tag or a chief complaint. Matched on
//! word boundaries of the lower-cased sentence ([`super::has_any`]) unless said otherwise.
//! Negation, family and hedge words are shared with the clinical stage and the evidence checker:
//! they are in [`crate::words`]. Data only: nothing here decides anything.

/// First words (after fillers) of an unpunctuated question: an auxiliary, a wh-word, or a
/// request to tell.
pub(super) const QUESTION_OPENERS: &[&str] = &[
    "have", "has", "do", "does", "did", "are", "is", "were", "any", "how", "what", "when", "where",
    "why", "which", "can", "could", "would", "will", "anything", "tell", "describe", "what's",
    "how's", "where's", "who", "whose",
];

/// A question that ends with one of these tags states something for the patient to confirm
/// ("your father had a heart attack, right?"); confirmed, it is written as a statement.
pub(super) const TAG_QUESTIONS: &[&str] = &[
    "right?",
    "right ?",
    "correct?",
    "correct ?",
    "is that right",
];

/// Trailing question tags and fillers dropped from a sentence (", right", ", okay"), compared
/// with whole tokens.
pub(super) const TRAILING_TAGS: &[&str] =
    &["okay", "ok", "right", "correct", "alright", "too", "yeah"];

/// Verbs that report a result: an objective sentence with one is not only an announced
/// examination ("let me look … the x-ray shows").
pub(super) const RESULT_VERBS: &[&str] = &[
    "shows",
    "showed",
    "came back",
    "revealed",
    "demonstrates",
    "demonstrated",
];

/// Introductions of the chief complaint ("presents today with X"), tried in this order, found
/// anywhere in the sentence.
pub(super) const COMPLAINT_CUES: &[&str] = &[
    "presents today with",
    "presents with",
    "presenting with",
    "presents today for",
    "presents for",
    "here today for",
    "here for",
    "following up on",
    "follow up on",
    "for follow-up of",
    "coming in for",
    "in today for",
    "complaining of",
    "referred for",
    "here to follow up on",
    "here to discuss",
    "in for",
];

/// Words that end the chief complaint phrase ("… knee pain *that* started …"), compared with
/// whole tokens.
pub(super) const COMPLAINT_ENDS: &[&str] =
    &["who", "that", "which", "so", "today", "because", "since"];

/// Determiners dropped from the chief complaint phrase ("*the* knee pain" → "knee pain"),
/// compared with whole tokens.
pub(super) const COMPLAINT_DROPPED: &[&str] = &[
    "a", "an", "the", "your", "his", "her", "their", "my", "some", "this", "of",
];

/// Social history (tobacco, alcohol, drugs, living situation): a sentence or question with one
/// is social history.
pub(super) const SOCIAL: &[&str] = &[
    "smoke",
    "smoking",
    "smoked",
    "smoker",
    "cigarettes",
    "cigarette",
    "tobacco",
    "vape",
    "alcohol",
    "drink",
    "drinks",
    "drinking",
    "beer",
    "beers",
    "wine",
    "marijuana",
    "drugs",
    "cocaine",
    "married",
    "divorced",
    "retired",
    "lives with",
    "live with",
    "pack-years",
    "pack years",
    "packs a day",
];

/// A patient's sentence with one of these is about allergies.
pub(super) const ALLERGY: &[&str] = &["allergic", "allergy", "allergies"];

/// Change since last time: a patient's sentence with one (and an insight) is progress.
pub(super) const PROGRESS: &[&str] = &[
    "better",
    "worse",
    "improved",
    "improving",
    "improvement",
    "helped",
    "helping",
    "helps",
    "working",
    "worsening",
    "progress",
    "getting worse",
    "since last",
];

/// A patient's aims: a sentence with one (and an insight) is a goal.
pub(super) const GOALS: &[&str] = &[
    "want to",
    "wanna",
    "would like to",
    "goal",
    "hoping to",
    "hope to",
    "trying to",
    "plan to",
];

/// Commands to a dictation system, never written.
pub(super) const COMMAND: &[&str] = &["dragon", "show me", "finalize the note", "hey computer"];

/// The clinician's introduction of the visit ("a 45-year-old … presents for …"): history of
/// present illness, never social history.
pub(super) const INTRO: &[&str] = &[
    "year-old",
    "year old",
    "presents",
    "presenting",
    "here for",
    "here today",
    "coming in",
    "following up",
    "follow up on",
    "referred",
    "in today for",
    "history of",
];

/// An age as the clinician's introduction gives it ("a 58-year-old male").
pub(super) const AGES: &[&str] = &["year-old", "year old", "month-old", "month old"];

/// Tests and their results: an objective clinician sentence with one (and no vital sign) is a
/// diagnostic result.
pub(super) const RESULTS: &[&str] = &[
    "x-ray",
    "xray",
    "x ray",
    "mri",
    "ct",
    "cat scan",
    "scan",
    "ultrasound",
    "results",
    "result",
    "labs",
    "lab",
    "a1c",
    "ekg",
    "ecg",
    "echo",
    "echocardiogram",
    "blood work",
    "bloodwork",
    "urinalysis",
    "urine",
    "culture",
    "biopsy",
    "imaging",
    "came back",
    "showed",
    "shows",
    "revealed",
    "level",
    "levels",
    "test",
    "panel",
    "spirometry",
    "radiograph",
    "cbc",
    "cholesterol",
    "hemoglobin",
];

/// Examination findings: an objective clinician sentence with one is physical examination.
pub(super) const EXAM: &[&str] = &[
    "exam",
    "examination",
    "vital",
    "vitals",
    "blood pressure",
    "heart rate",
    "temperature",
    "pulse",
    "oxygen",
    "lungs",
    "heart",
    "abdomen",
    "tender",
    "tenderness",
    "swelling",
    "edema",
    "range of motion",
    "palpation",
    "murmur",
    "murmurs",
    "clear",
    "normal",
    "strength",
    "reflexes",
    "sounds",
    "effusion",
    "rash",
    "redness",
    "warmth",
    "bruising",
    "crepitus",
    "stable",
    "soft",
    "wheezing",
    "wheezes",
    "rhonchi",
    "ronchi",
    "rales",
    "crackles",
    "erythema",
    "bilaterally",
    "neck",
    "nodes",
    "pupils",
    "gait",
    "sensation",
    "pain to",
    "saturation",
    "weight",
    "bmi",
    "appears",
    "skin",
    "inspection",
    "ligaments",
    "noticed",
    "notice",
    "see",
    "feel",
    "looks",
    "look",
];

/// Vital signs: a test insight named so is examination, not a diagnostic result.
pub(super) const VITALS: &[&str] = &[
    "blood pressure",
    "heart rate",
    "pulse",
    "temperature",
    "oxygen saturation",
    "respiratory rate",
    "weight",
    "vital signs",
    "vitals",
    "bmi",
    "o2 sat",
    "spo2",
];

/// Announcing an examination ("let me take a look"): not a finding, so not written (unless
/// it reports one: [`RESULT_VERBS`]).
pub(super) const EXAM_INTENT: &[&str] = &[
    "go ahead and",
    "let me",
    "going to",
    "gonna",
    "gon na",
    "i'm just",
    "i want to",
    "i'd like to",
    "take a look",
    "let's",
];

/// Counselling and education: an assessment-and-plan sentence with one is an intervention.
pub(super) const COUNSEL: &[&str] = &[
    "discussed",
    "talked about",
    "we talked",
    "educated",
    "explained",
    "counseled",
    "counselled",
    "reassured",
    "encourage",
    "encouraged",
    "practiced",
    "practice",
    "we worked on",
    "coping",
    "techniques",
    "technique",
    "mindfulness",
    "breathing exercises",
    "reframing",
    "journaling",
    "homework",
];

/// Orders and instructions: an assessment-and-plan sentence with one is plan.
pub(super) const PLAN: &[&str] = &[
    "prescribe",
    "prescribed",
    "prescription",
    "order",
    "ordered",
    "refer",
    "referral",
    "follow up",
    "follow-up",
    "see you",
    "come back",
    "continue",
    "start",
    "increase",
    "decrease",
    "stop",
    "schedule",
    "send",
    "we will",
    "we'll",
    "i will",
    "i'll",
    "gonna",
    "gon na",
    "going to",
    "want to",
    "want you to",
    "let's",
    "recommend",
    "take",
    "physical therapy",
    "refill",
    "repeat",
    "check",
    "get",
    "give",
    "put you on",
    "switch",
    "adjust",
    "monitor",
    "should",
    "need to",
    "advise",
    "avoid",
    "ice",
    "rest",
    "return",
    "call",
];

/// The clinician's judgement: an assessment-and-plan sentence with one (or a condition) is
/// assessment.
pub(super) const ASSESS: &[&str] = &[
    "i believe",
    "i think",
    "consistent with",
    "diagnosis",
    "likely",
    "problem",
    "impression",
    "you have",
    "looks like",
    "sounds like",
    "suspect",
    "concerned",
    "due to",
    "probably",
    "is from",
    "caused by",
    "related to",
    "suggests",
    "i suspect",
];

/// The clinician announcing the assessment and plan: it starts there, whatever the section
/// model says about the sentences after.
/// Also the clinician taking up the first problem ("for your first problem, your
/// hypertension"), which dictated visits do without announcing the assessment.
pub(super) const AP_ANNOUNCE: &[&str] = &[
    "assessment and plan",
    "impression and plan",
    "assessment and my plan",
    "first problem",
    "first issue",
];

/// First words of an answer that is a full sentence (a subject); an answer that opens
/// otherwise and has no finite verb ([`FINITE_VERBS`]) is a fragment, joined to the question.
pub(super) const SUBJECT_STARTS: &[&str] = &[
    "i", "i'm", "i've", "i'd", "i'll", "we", "we're", "we've", "it", "it's", "its", "my", "they",
    "they're", "he", "he's", "she", "she's", "that", "that's", "this", "there", "there's", "our",
    "his", "her", "you", "your", "mine", "what", "which", "no", "not", "none", "nothing", "never",
    "yes", "nope",
];

/// Finite verbs: an answer with one is a sentence, not a fragment.
pub(super) const FINITE_VERBS: &[&str] = &[
    "is", "was", "are", "were", "am", "has", "have", "had", "do", "does", "did", "don't",
    "doesn't", "didn't", "can", "can't", "could", "will", "would", "should", "hurts", "hurt",
    "feel", "feels", "felt", "take", "takes", "took", "get", "gets", "got", "started", "go",
    "goes", "went", "think", "know",
];
