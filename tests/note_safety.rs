//! Safety properties of the note on transcripts as speech recognition really produces them.

use fhirscribe::healthscribe::{NoteTemplate, TraitName};
use fhirscribe::lab::aci::dialogue_to_conversation;
use fhirscribe::note::{self, NoteContext, Templates};

/// A question whose question mark was lost ("…swelling in your ankles.") answered "No" must not
/// become an assertion of those symptoms; it is a denial.
#[test]
fn an_unpunctuated_question_answered_no_is_not_asserted() {
    let mut conv = dialogue_to_conversation(
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

fn note_lines(dialogue: &str) -> (fhirscribe::healthscribe::Conversation, Vec<String>) {
    let mut conv = dialogue_to_conversation("t", dialogue);
    fhirscribe::annotate::annotate(&mut conv);
    let templates = Templates::builtin().unwrap();
    let doc = note::generate(
        &conv,
        templates.get(NoteTemplate::HistoryAndPhysical),
        &NoteContext::default(),
    );
    let lines = doc
        .sections
        .iter()
        .flat_map(|s| &s.summary)
        .map(|l| l.summarized_segment.clone())
        .collect();
    (conv, lines)
}

fn traits_of(conv: &fhirscribe::healthscribe::Conversation, text: &str) -> Vec<TraitName> {
    conv.clinical_insights
        .iter()
        .filter(|i| i.spans.iter().any(|s| s.content.eq_ignore_ascii_case(text)))
        .flat_map(|i| {
            i.extensions
                .iter()
                .flat_map(|e| e.traits.iter().map(|t| t.name))
        })
        .collect()
}

/// "Correct." confirms a negative question: the note follows the clinical stage's NEGATION
/// trait ("Denies chest pain."), never its own yes-word list ("Reports chest pain.").
#[test]
fn a_confirmed_negative_question_is_a_denial_from_the_traits() {
    for answer in ["Correct.", "Right.", "Yes, correct.", "Yeah, that's right."] {
        let (conv, lines) = note_lines(&format!(
            "[doctor] what brings you in today?\n\
             [patient] i've had a headache for three days.\n\
             [doctor] no chest pain at all?\n\
             [patient] {answer}\n\
             [doctor] okay. let's check your blood pressure."
        ));
        assert!(
            traits_of(&conv, "chest pain").contains(&TraitName::Negation),
            "{answer}: the clinical stage must mark chest pain NEGATION"
        );
        for l in &lines {
            let lower = l.to_lowercase();
            assert!(
                !(lower.contains("chest pain") && lower.contains("reports")),
                "{answer}: asserted chest pain: {l:?} in {lines:?}"
            );
        }
        assert!(
            lines.iter().any(|l| l == "Denies chest pain."),
            "{answer}: {lines:?}"
        );
    }
}

/// A bare "Yes." to a negative question is ambiguous (agreeing there is no chest pain, or
/// reporting it?): the note neither reports nor denies chest pain, and the finding carries
/// LOW_CONFIDENCE, which keeps it out of the chart.
#[test]
fn a_bare_yes_to_a_negative_question_asserts_nothing() {
    let (conv, lines) = note_lines(
        "[doctor] what brings you in today?\n\
         [patient] i've had a headache for three days.\n\
         [doctor] no chest pain at all?\n\
         [patient] Yes.\n\
         [doctor] okay. let's check your blood pressure.",
    );
    let traits = traits_of(&conv, "chest pain");
    assert!(traits.contains(&TraitName::LowConfidence), "{traits:?}");
    assert!(!traits.contains(&TraitName::Negation), "{traits:?}");
    assert!(
        lines
            .iter()
            .all(|l| !l.to_lowercase().contains("chest pain")),
        "{lines:?}"
    );
}

/// A plain "yes" to a positive question is reported; a plain "no" is denied; the generator
/// produces nothing the runtime evidence check has to drop here.
#[test]
fn yes_and_no_answers_follow_the_traits() {
    let mut conv = dialogue_to_conversation(
        "t",
        "[doctor] any fever?\n[patient] yes.\n[doctor] any cough?\n[patient] no.",
    );
    fhirscribe::annotate::annotate(&mut conv);
    assert!(!traits_of(&conv, "fever").contains(&TraitName::Negation));
    assert!(traits_of(&conv, "cough").contains(&TraitName::Negation));
    let templates = Templates::builtin().unwrap();
    let doc = note::generate(
        &conv,
        templates.get(NoteTemplate::HistoryAndPhysical),
        &NoteContext::default(),
    );
    let lines: Vec<&str> = doc
        .sections
        .iter()
        .flat_map(|s| &s.summary)
        .map(|l| l.summarized_segment.as_str())
        .collect();
    assert!(lines.contains(&"Reports fever."), "{lines:?}");
    assert!(lines.contains(&"Denies cough."), "{lines:?}");
    let check = doc.extensions.unwrap().evidence_check.unwrap();
    assert_eq!(check.dropped, 0, "{check:?}");
    assert_eq!(check.sentences, lines.len());
}

/// The runtime check: a sentence that asserts what its evidence negates never reaches the
/// written note, and the drop is counted (without the sentence text) in the extension.
#[test]
fn the_runtime_check_drops_unsupported_sentences_and_counts_them() {
    use fhirscribe::healthscribe::{
        ClinicalDocumentation, ClinicalDocumentationFile, EvidenceLink, NoteSectionName, Section,
        SummarizedSegment,
    };
    let mut conv =
        dialogue_to_conversation("t", "[doctor] no chest pain at all?\n[patient] correct.");
    fhirscribe::annotate::annotate(&mut conv);
    let link = |i: usize| EvidenceLink {
        segment_id: conv.transcript_segments[i].segment_id.clone(),
    };
    let line = |t: &str| SummarizedSegment {
        evidence_links: vec![link(0), link(1)],
        summarized_segment: t.into(),
    };
    let doc = ClinicalDocumentation {
        sections: vec![
            Section {
                section_name: NoteSectionName::ReviewOfSystems,
                summary: vec![line("Reports chest pain."), line("Denies chest pain.")],
            },
            Section {
                section_name: NoteSectionName::Assessment,
                summary: vec![line("Chest pain.")],
            },
        ],
        session_id: None,
        extensions: None,
    };
    let (out, report) = note::support::enforce(&doc, &conv);
    assert_eq!(report.failures.len(), 2, "{report:?}");
    assert!(report.failures[0].reason.contains("negated"), "{report:?}");
    assert_eq!(out.sections.len(), 1, "the emptied section is left out");
    assert_eq!(out.sections[0].summary.len(), 1);
    assert_eq!(
        out.sections[0].summary[0].summarized_segment,
        "Denies chest pain."
    );
    let json = serde_json::to_value(ClinicalDocumentationFile {
        clinical_documentation: out,
    })
    .unwrap();
    assert_eq!(
        json["ClinicalDocumentation"]["Extensions"],
        serde_json::json!({"EvidenceCheck": {"Sentences": 3, "Dropped": 2}})
    );
    // A file without the extension stays AWS's shape.
    let plain = serde_json::to_value(ClinicalDocumentationFile {
        clinical_documentation: doc,
    })
    .unwrap();
    assert!(plain["ClinicalDocumentation"].get("Extensions").is_none());
}

/// The problem list of the assessment names the diagnoses the clinician asserts, never one the
/// clinician rules out.
#[test]
fn the_problem_list_names_asserted_diagnoses_only() {
    let (_, lines) = note_lines(
        "[doctor] what brings you in today?\n\
         [patient] my blood pressure has been high at home.\n\
         [doctor] okay. so for your first problem, your hypertension, i want to start you on \
         lisinopril 10 milligrams daily. you do not have diabetes, your sugars are normal.\n\
         [patient] okay.",
    );
    let lower: Vec<String> = lines.iter().map(|l| l.to_lowercase()).collect();
    assert!(lower.iter().any(|l| l == "hypertension."), "{lines:?}");
    assert!(!lower.iter().any(|l| l == "diabetes."), "{lines:?}");
}
