//! The cue words of the trait rules, in one place: the team's conversational triggers (added to
//! the derived `mappings/clinical/context_triggers.tsv`) and the word lists the within-turn and
//! question–answer passes read. Answers and phrases are in the stage's normal form (lower case,
//! apostrophes removed: "thats gone"), see [`super::key_lower`]. Shared lists (negation,
//! family, number words, answer openings) are in [`crate::words`]. Data only: nothing here
//! decides anything.

/// Conversational triggers written by the team (added to the derived list).
pub(super) const TEAM_TRIGGERS: &[(&str, &str)] = &[
    ("no", "NEG_PRE"),
    ("not", "NEG_PRE"),
    ("never", "NEG_PRE"),
    ("never had", "NEG_PRE"),
    ("dont", "NEG_PRE"),
    ("dont have", "NEG_PRE"),
    ("do not", "NEG_PRE"),
    ("didnt", "NEG_PRE"),
    ("did not", "NEG_PRE"),
    ("havent", "NEG_PRE"),
    ("have not", "NEG_PRE"),
    ("hasnt", "NEG_PRE"),
    ("doesnt", "NEG_PRE"),
    ("isnt", "NEG_PRE"),
    ("arent", "NEG_PRE"),
    ("wasnt", "NEG_PRE"),
    ("werent", "NEG_PRE"),
    // "n't" split off by some transcribers ("do n't") tokenises as "nt"
    ("nt", "NEG_PRE"),
    ("cant", "PSEUDO"),
    ("without", "NEG_PRE"),
    ("none", "NEG_PRE"),
    ("denies", "NEG_PRE"),
    ("deny", "NEG_PRE"),
    ("negative for", "NEG_PRE"),
    // "was negative for retinopathy": longer than the derived backward "was negative", which
    // would otherwise take the match and look back at "your eye exam" instead
    ("was negative for", "NEG_PRE"),
    ("is negative for", "NEG_PRE"),
    ("were negative for", "NEG_PRE"),
    ("are negative for", "NEG_PRE"),
    ("been negative for", "NEG_PRE"),
    ("came back negative for", "NEG_PRE"),
    ("free of", "NEG_PRE"),
    ("stopped", "HIST_PRE"),
    // "I stopped having the shooting pain": the symptom ended (a negation), unlike "stopped" alone
    ("stopped having", "NEG_PRE"),
    ("stopped getting", "NEG_PRE"),
    ("quit", "HIST_PRE"),
    ("not anymore", "NEG_POST"),
    ("any more", "TERM_NEG"),
    ("no longer", "NEG_PRE"),
    ("nobody", "NEG_PRE"),
    ("no one", "NEG_PRE"),
    // pseudo-negations of conversation: reminders and reassurance ("don't forget to take the
    // metoprolol"), uncertainty ("I don't remember having measles"), "no problems with the
    // metformin" (the drug is taken), and "didn't help the pain" (the pain is there)
    ("dont forget", "PSEUDO"),
    ("do not forget", "PSEUDO"),
    ("dont hesitate", "PSEUDO"),
    ("do not hesitate", "PSEUDO"),
    ("dont stop", "PSEUDO"),
    ("do not stop", "PSEUDO"),
    ("dont run out", "PSEUDO"),
    ("dont miss", "PSEUDO"),
    ("dont worry", "PSEUDO"),
    ("dont know", "PSEUDO"),
    ("do not know", "PSEUDO"),
    ("dont remember", "PSEUDO"),
    ("do not remember", "PSEUDO"),
    ("cant remember", "PSEUDO"),
    ("dont recall", "PSEUDO"),
    ("do not recall", "PSEUDO"),
    ("cant recall", "PSEUDO"),
    ("no problems", "PSEUDO"),
    ("no issues", "PSEUDO"),
    ("no issue", "PSEUDO"),
    ("no trouble with", "PSEUDO"),
    ("no side effects", "PSEUDO"),
    ("no side effect", "PSEUDO"),
    ("didnt help", "PSEUDO"),
    ("doesnt help", "PSEUDO"),
    ("did not help", "PSEUDO"),
    ("does not help", "PSEUDO"),
    ("hasnt helped", "PSEUDO"),
    ("havent helped", "PSEUDO"),
    ("isnt helping", "PSEUDO"),
    ("not helping", "PSEUDO"),
    ("didnt work", "PSEUDO"),
    ("doesnt work", "PSEUDO"),
    ("not working", "PSEUDO"),
    ("no worse", "PSEUDO"),
    ("no better", "PSEUDO"),
    ("no wonder", "PSEUDO"),
    ("no doubt", "PSEUDO"),
    ("no matter", "PSEUDO"),
    ("never mind", "PSEUDO"),
    ("since", "TERM"),
    // a new clause with its own subject ends a negation ("I don't hear any wheezing, and I think
    // this cough is from postnasal drip"); so do "with this/the …" and "get rid of"
    ("and i", "TERM"),
    ("and im", "TERM"),
    ("and ive", "TERM"),
    ("and it", "TERM"),
    ("and its", "TERM"),
    ("and my", "TERM"),
    ("and he", "TERM"),
    ("and she", "TERM"),
    ("and they", "TERM"),
    ("and then", "TERM"),
    ("so i", "TERM"),
    ("so it", "TERM"),
    ("with this", "TERM_NEG"),
    ("with my", "TERM_NEG"),
    ("with the", "TERM_NEG"),
    ("with that", "TERM_NEG"),
    ("get rid of", "TERM_NEG"),
    ("shake", "TERM_NEG"),
    ("nope", "NEG_PRE"),
    ("not really", "NEG_PRE"),
    ("gone away", "NEG_POST"),
    ("is gone", "NEG_POST"),
    ("are gone", "NEG_POST"),
    ("has gone", "NEG_POST"),
    ("was on", "HIST_PRE"),
    ("were on", "HIST_PRE"),
    ("used to take", "HIST_PRE"),
    ("tried", "HIST_PRE"),
    ("went away", "NEG_POST"),
    ("resolved", "NEG_POST"),
    ("not sure", "PSEUDO"),
    ("as needed", "PSEUDO"),
    ("if needed", "PSEUDO"),
    ("when needed", "PSEUDO"),
    ("no change", "PSEUDO"),
    ("not only", "PSEUDO"),
    ("no problem", "PSEUDO"),
    ("not bad", "PSEUDO"),
    ("but", "TERM"),
    ("though", "TERM"),
    ("although", "TERM"),
    ("except", "TERM"),
    ("however", "TERM"),
    ("other than", "TERM"),
    ("besides", "TERM"),
    ("only", "TERM_NEG"),
    ("just", "TERM_NEG"),
    ("still", "TERM_NEG"),
    ("and i have", "TERM_NEG"),
    ("i do have", "TERM_NEG"),
    ("if", "HYPO_PRE"),
    ("in case", "HYPO_PRE"),
    ("should you", "HYPO_PRE"),
    ("watch for", "HYPO_PRE"),
    ("watch out for", "HYPO_PRE"),
    ("look out for", "HYPO_PRE"),
    ("could", "HYPO_PRE"),
    ("might", "HYPO_PRE"),
    ("may", "HYPO_PRE"),
    ("possible", "HYPO_PRE"),
    ("possibly", "HYPO_PRE"),
    ("rule out", "HYPO_PRE"),
    ("risk of", "HYPO_PRE"),
    ("worried about", "HYPO_PRE"),
    ("concerned about", "HYPO_PRE"),
    ("to prevent", "HYPO_PRE"),
    ("prevent", "HYPO_PRE"),
    ("to avoid", "HYPO_PRE"),
    ("can cause", "HYPO_PRE"),
    ("cause", "HYPO_PRE"),
    ("causes", "HYPO_PRE"),
    ("side effects", "HYPO_PRE"),
    ("side effect", "HYPO_PRE"),
    ("would", "HYPO_PRE"),
    // "I would say the pain is a six", "I could feel my heart racing", "Could you show me where
    // the pain is?": reports and requests, not possibilities
    ("would say", "PSEUDO"),
    ("id say", "PSEUDO"),
    ("would you say", "PSEUDO"),
    ("would describe", "PSEUDO"),
    ("would like", "PSEUDO"),
    ("would you", "PSEUDO"),
    ("could you", "PSEUDO"),
    ("could feel", "PSEUDO"),
    ("could see", "PSEUDO"),
    ("could hear", "PSEUDO"),
    ("could tell", "PSEUDO"),
    ("could barely", "PSEUDO"),
    ("could hardly", "PSEUDO"),
    // tests and work-ups for a condition not yet established ("a swab to check for strep",
    // "screen you early for gestational diabetes", "check you for sleep apnea")
    ("check for", "HYPO_PRE"),
    ("check you for", "HYPO_PRE"),
    ("check him for", "HYPO_PRE"),
    ("check her for", "HYPO_PRE"),
    ("test for", "HYPO_PRE"),
    ("test you for", "HYPO_PRE"),
    ("look for", "HYPO_PRE"),
    ("looking for", "HYPO_PRE"),
    ("screen", "HYPO_PRE"),
    ("screen for", "HYPO_PRE"),
    ("evaluate for", "HYPO_PRE"),
    ("concern for", "HYPO_PRE"),
    ("concerned for", "HYPO_PRE"),
    ("worry about", "HYPO_PRE"),
    ("afraid of", "HYPO_PRE"),
    ("scared of", "HYPO_PRE"),
    ("chance of", "HYPO_PRE"),
    ("lead to", "HYPO_PRE"),
    ("leads to", "HYPO_PRE"),
    ("unless", "HYPO_PRE"),
    // a patient's question about a possibility or a future effect ("Is it anxiety then?",
    // "Will that make the swelling worse?"): only in a patient's question
    ("is it", "HYPO_Q"),
    ("could it be", "HYPO_Q"),
    ("could this be", "HYPO_Q"),
    ("do you think", "HYPO_Q"),
    ("will", "HYPO_Q"),
    ("whenever you", "HYPO_PRE"),
    ("any time you", "HYPO_PRE"),
    ("anytime you", "HYPO_PRE"),
    ("suspect", "HYPO_PRE"),
    ("suspected", "HYPO_PRE"),
    ("suspicion of", "HYPO_PRE"),
    ("history of", "HIST_PRE"),
    ("hx of", "HIST_PRE"),
    ("prior", "HIST_PRE"),
    ("previous", "HIST_PRE"),
    // … but not a reference visit ("compared to your previous visit, the swelling is better")
    ("previous visit", "PSEUDO"),
    ("previous appointment", "PSEUDO"),
    ("prior visit", "PSEUDO"),
    ("prior to", "PSEUDO"),
    ("status post", "HIST_PRE"),
    ("recovered from", "HIST_PRE"),
    ("was treated for", "HIST_PRE"),
    ("got treated for", "HIST_PRE"),
    ("childhood", "HIST_TIME"),
    ("a while ago", "HIST_TIME"),
    ("a while back", "HIST_TIME"),
    ("long ago", "HIST_TIME"),
    ("used to", "HIST_PRE"),
    // "because of your history, …": the bare noun names no condition ("your history of" still
    // triggers through "history of")
    ("your history", "PSEUDO"),
    ("past medical history", "HIST_PRE"),
    // the object of a relative clause: "the nausea you used to get"
    ("used to get", "HIST_BOTH"),
    ("used to have", "HIST_BOTH"),
    // the present after a past episode ("I was on Plavix for a year, and now just aspirin",
    // "it gave me muscle aches so they switched me to Crestor")
    ("now", "TERM"),
    // the onset of the current problem is not past history ("the pain started a year ago")
    ("started", "TERM_HIST"),
    ("began", "TERM_HIST"),
    ("begun", "TERM_HIST"),
    ("noticed", "TERM_HIST"),
    ("currently", "TERM"),
    ("these days", "TERM"),
    ("so they", "TERM"),
    ("so we", "TERM"),
    ("so he", "TERM"),
    ("so she", "TERM"),
    ("so you", "TERM"),
    ("switched to", "TERM"),
    ("switched me to", "TERM"),
    ("changed to", "TERM"),
    ("changed me to", "TERM"),
    // a later clause of a past episode ("I tried the patch once, but it gave me a rash"):
    // history only after a history trigger earlier in the sentence
    ("gave me", "HIST_CONT"),
    ("gave her", "HIST_CONT"),
    ("gave him", "HIST_CONT"),
    ("it caused", "HIST_CONT"),
    // time adverbials of the past: they date the whole clause, before or after the condition
    // ("I had asthma as a kid", "as a kid I had asthma"); in a question the answer decides
    // ("Did you have head injuries as a kid?" "Not that I remember." is not history)
    ("in the past", "HIST_TIME"),
    ("previously", "HIST_TIME"),
    ("as a child", "HIST_TIME"),
    ("as a kid", "HIST_TIME"),
    ("as a baby", "HIST_TIME"),
    ("as a teenager", "HIST_TIME"),
    ("as a teen", "HIST_TIME"),
    ("growing up", "HIST_TIME"),
    ("years ago", "HIST_TIME"),
    ("year ago", "HIST_TIME"),
    ("decades ago", "HIST_TIME"),
    ("decade ago", "HIST_TIME"),
    ("long time ago", "HIST_TIME"),
    ("years back", "HIST_TIME"),
    ("year back", "HIST_TIME"),
    ("last year", "HIST_TIME"),
    ("last summer", "HIST_TIME"),
    ("last winter", "HIST_TIME"),
    ("last spring", "HIST_TIME"),
    ("last fall", "HIST_TIME"),
    ("last autumn", "HIST_TIME"),
    ("last time", "HIST_TIME"),
    ("back then", "HIST_TIME"),
    ("back in", "HIST_TIME"),
    ("in high school", "HIST_TIME"),
    ("in college", "HIST_TIME"),
    ("in my teens", "HIST_TIME"),
    ("in my twenties", "HIST_TIME"),
    ("in my thirties", "HIST_TIME"),
    ("in my forties", "HIST_TIME"),
    ("in my fifties", "HIST_TIME"),
    ("in my sixties", "HIST_TIME"),
    ("in his twenties", "HIST_TIME"),
    ("in her twenties", "HIST_TIME"),
];

/// "when I was …" dates a clause in the past only with a stage of life ("when I was a kid",
/// "when she was a baby"); "when I was carrying groceries" is the current complaint.
pub(super) const WHEN_WAS_STAGES: &[&str] = &[
    "a kid",
    "a child",
    "a baby",
    "a toddler",
    "a teenager",
    "a teen",
    "a boy",
    "a girl",
    "little",
    "young",
    "younger",
    "pregnant",
    "in college",
    "in high school",
    "in school",
    "in my twenties",
    "in my thirties",
];

/// Words that open a question ("Any fever?", "Do you smoke?", "Ever had surgery?").
pub(super) const INTERROGATIVES: &[&str] = &[
    "any", "do", "does", "did", "are", "is", "have", "has", "how", "what", "when", "where", "why",
    "can", "could", "would", "will", "were", "was", "anything", "ever",
];

/// Third-person pronouns: a sentence with one, after a sentence about a family member,
/// refers back to that relative.
pub(super) const PRONOUNS: &[&str] = &["he", "she", "they", "his", "her", "their", "him", "them"];

/// Answers that say a condition asked about has ended ("That's gone too", "No, it went away"):
/// they deny even a condition the question presupposes ("And the nausea you used to get?").
pub(super) const RESOLVED_ANSWERS: &[&str] = &[
    "thats gone",
    "its gone",
    "theyre gone",
    "all gone",
    "gone",
    "that went away",
    "it went away",
    "they went away",
    "thats resolved",
    "its resolved",
    "they resolved",
    "thats cleared up",
    "its cleared up",
    "it cleared up",
    "not anymore",
    "no longer",
    "i stopped having",
    "stopped having",
];
/// Fillers that may open an answer or a question ("Hmm, let me think. No.", "Oh, no.",
/// "so um tell me"); skipped when the answer is not otherwise classified.
pub(super) const FILLERS: &[&str] = &[
    "um",
    "uh",
    "er",
    "erm",
    "hmm",
    "hm",
    "oh",
    "ah",
    "well",
    "let me think",
    "let me see",
    "so",
    "okay",
    "ok",
    "alright",
    "and",
    "good",
    "now",
    "great",
    "also",
    "then",
];
/// Requests to repeat a question ("Sorry, what was that?", "Hmm?"): the answer to the
/// question comes after the clinician asks again.
pub(super) const CLARIFICATIONS: &[&str] = &[
    "sorry",
    "pardon",
    "what",
    "what was that",
    "come again",
    "hmm",
    "huh",
    "excuse me",
    "say that again",
    "i didnt catch that",
    "i didnt hear",
];
/// Answer particles: a negative trigger that is only a one-word answer ("No, I've been having
/// palpitations") is not a determiner negation of what follows; the question–answer pass
/// handles what it denies.
pub(super) const ANSWER_PARTICLES: &[&str] = &[
    "no",
    "nope",
    "nah",
    "not really",
    "no no",
    "no sir",
    "no maam",
];

/// Definite determiners and possessives: a question about "the pain" / "your headaches"
/// presupposes the condition exists, so a "No" answers the predicate, not its existence.
pub(super) const DEFINITE: &[&str] = &[
    "the", "your", "his", "her", "their", "this", "that", "these", "those", "my", "its",
];

/// Subject pronouns that open a clause.
pub(super) const SUBJECTS: &[&str] = &[
    "i", "im", "ive", "id", "ill", "he", "hes", "she", "shes", "it", "its", "they", "theyre", "we",
    "were", "you", "youre", "my",
];

/// Heads of an allergy phrase ("allergic to", "a reaction to", "intolerant of").
pub(super) const ALLERGY_HEADS: &[&str] = &[
    "allergic",
    "allergy",
    "allergies",
    "reaction",
    "reactions",
    "sensitive",
    "sensitivity",
    "intolerant",
    "intolerance",
];

/// Nouns for people in general, heads of a generic relative clause ("people who never had …").
pub(super) const GENERIC_PERSONS: &[&str] = &[
    "people",
    "anyone",
    "anybody",
    "someone",
    "somebody",
    "everyone",
    "everybody",
    "those",
    "kids",
    "children",
    "adults",
    "patients",
    "folks",
    "others",
    "persons",
];

// ---- lists that were written inline in the passes ----

/// Words by which speakers refer to themselves: a sentence with one is about the speaker, not
/// about the relative a pronoun would otherwise refer back to.
pub(super) const SELF_WORDS: &[&str] = &["i", "me", "my", "im", "ive"];

/// Words skipped, with [`FILLERS`], when looking for the word a sentence opens with ("But if
/// you get a fever …").
pub(super) const SENTENCE_LINKS: &[&str] = &["but", "then"];

/// Hypothetical triggers that, opening a sentence, make the whole sentence conditional ("If the
/// swab is positive, I'll call in amoxicillin": the main clause is the consequent).
pub(super) const CONDITION_OPENERS: &[&str] = &["if", "in case", "unless", "should you"];

/// Words after a condition that make it name a vaccine ("the pneumonia vaccine", "her flu
/// shot"): a "no" then denies the vaccine, not the disease.
pub(super) const VACCINE_WORDS: &[&str] = &[
    "vaccine",
    "vaccines",
    "vaccination",
    "vaccinations",
    "shot",
    "shots",
    "booster",
    "immunization",
    "jab",
];

/// Verbs that ask whether a condition is (still) had ("Do you still *have* the cough?", "Did
/// you *get* the rash again?"): a determiner after them does not presuppose the condition.
pub(super) const HAVING_VERBS: &[&str] = &[
    "have", "had", "having", "get", "got", "getting", "notice", "noticed", "feel", "felt",
];

/// Subjects (and "still", "ever") before one of the [`HAVING_VERBS`] in such a question.
pub(super) const HAVING_SUBJECTS: &[&str] =
    &["you", "still", "he", "she", "they", "we", "i", "ever"];

/// Words of a question about the past ("Have you *ever* had …?", "Any *history* of …?"),
/// padded with spaces to match whole words of the normalised question ("fever" is not "ever").
/// A yes makes the conditions asked about PAST_HISTORY.
pub(super) const PAST_QUESTION_CUES: &[&str] = &[" ever ", " history ", " in the past "];

/// Openings of an answer that may precede a resolution ("No, it went away"), with their space.
pub(super) const DENIAL_OPENERS: &[&str] = &["no ", "nope "];

/// Questions about a test for a condition ("Did you get *tested for* strep?"), padded with
/// spaces: an answer that calls the result negative denies the condition.
pub(super) const TEST_QUESTION_CUES: &[&str] = &[
    " tested for ",
    " test for ",
    " checked for ",
    " screened for ",
];

/// Words among the first eight of an answer that call a test result negative ("Yes, it was
/// negative.").
pub(super) const NEGATIVE_RESULTS: &[&str] = &["negative", "normal"];

/// Answers that confirm the question's own polarity ("You're not diabetic, right?" "Right."):
/// after a negative question they keep its negation.
pub(super) const CONFIRMATIONS: &[&str] = &[
    "right",
    "correct",
    "thats right",
    "thats correct",
    "exactly",
    "yes correct",
    "yes thats right",
    "yes thats correct",
    "yeah thats right",
    "yeah thats correct",
    "yeah correct",
];

/// A plain "yes": it confirms the question as asked, whatever the answer adds after it; to a
/// negative question it is ambiguous.
pub(super) const PLAIN_YES: &[&str] = &["yes", "yeah", "yep", "yup", "sure"];
