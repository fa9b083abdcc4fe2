//! Safety properties of the note on transcripts as speech recognition really produces them.

use fhirscribe::healthscribe::NoteTemplate;
use fhirscribe::note::{self, eval, NoteContext, Templates};

/// A question whose question mark was lost ("…swelling in your ankles.") answered "No" must not
/// become an assertion of those symptoms; it is a denial.
#[test]
fn an_unpunctuated_question_answered_no_is_not_asserted() {
    let mut conv = eval::dialogue_to_conversation(
        "t1",
        "[doctor] okay. that's pretty common. shortness of breath, or swelling in your ankles.\n\
         [patient] no, none of that.\n\
         [doctor] good. let's check your a1c today.",
    );
    fhirscribe::annotate::annotate(&mut conv);
    let templates = Templates::builtin().unwrap();
    let doc = note::generate(
        &conv,
        templates.get(NoteTemplate::HistoryAndPhysical),
        &NoteContext::default(),
    );
    let lines: Vec<String> = doc
        .sections
        .iter()
        .flat_map(|s| &s.summary)
        .map(|l| l.summarized_segment.to_lowercase())
        .collect();
    for l in &lines {
        if l.contains("shortness of breath") || l.contains("chest pain") {
            assert!(
                l.contains("denies") || l.contains("no "),
                "asserted a denied symptom: {l:?} in {lines:?}"
            );
        }
    }
    assert!(lines.iter().any(|l| l.contains("denies")), "{lines:?}");
}
