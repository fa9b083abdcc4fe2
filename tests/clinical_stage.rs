//! Behaviour of the clinical stage on hand-written turns, and regression floors on the
//! team-written conversational set. Uses only committed files.

use fhirscribe::clinical::{
    analyze, analyzer, text::char_slice, Category, CodeSystem, EntityType, Role, Section, Trait,
    Turn,
};
use fhirscribe::lab::clinical as eval;

fn t(id: usize, role: Role, text: &str) -> Turn {
    Turn::new(id.to_string(), role, text)
}

#[test]
fn question_answer_negation() {
    let out = analyze(&[
        t(0, Role::Clinician, "Any chest pain or shortness of breath?"),
        t(1, Role::Patient, "No."),
    ]);
    let e = &out[0].entities;
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e.iter().all(|x| x.has_trait(Trait::NEGATION)), "{e:?}");
    assert_eq!(e[0].codes[0].system, CodeSystem::ICD10CM);
    assert_eq!(e[0].codes[0].code, "R07.9");
}

#[test]
fn affirmative_answer_does_not_negate() {
    let out = analyze(&[
        t(0, Role::Clinician, "Do you get headaches?"),
        t(1, Role::Patient, "Yeah, a few times a week."),
    ]);
    let h = &out[0].entities[0];
    assert_eq!(h.category, Category::MEDICAL_CONDITION);
    assert!(!h.has_trait(Trait::NEGATION));
    assert!(h.has_trait(Trait::SYMPTOM));
}

#[test]
fn in_turn_negation_scope_and_termination() {
    let out = analyze(&[t(
        0,
        Role::Patient,
        "I don't have fever or chills, but I do have a cough.",
    )]);
    let by = |s: &str| {
        out[0]
            .entities
            .iter()
            .find(|e| e.text == s)
            .unwrap()
            .clone()
    };
    assert!(by("fever").has_trait(Trait::NEGATION));
    assert!(by("chills").has_trait(Trait::NEGATION));
    assert!(!by("cough").has_trait(Trait::NEGATION));
}

fn negated(out: &[fhirscribe::clinical::SegmentAnalysis], turn: usize, text: &str) -> bool {
    out[turn]
        .entities
        .iter()
        .find(|e| e.text == text)
        .unwrap_or_else(|| panic!("no {text:?} in {:?}", out[turn].entities))
        .has_trait(Trait::NEGATION)
}

#[test]
fn answer_particle_is_not_a_forward_negation() {
    let out = analyze(&[
        t(0, Role::Clinician, "Any chest pain?"),
        t(
            1,
            Role::Patient,
            "No, I've been having palpitations though.",
        ),
    ]);
    assert!(negated(&out, 0, "chest pain"));
    assert!(!negated(&out, 1, "palpitations"));
}

#[test]
fn no_to_a_question_about_a_presupposed_condition() {
    let out = analyze(&[
        t(0, Role::Clinician, "Does the pain go down your legs?"),
        t(1, Role::Patient, "No."),
        t(2, Role::Clinician, "Do you still have the cough?"),
        t(3, Role::Patient, "No, it's gone."),
    ]);
    assert!(!negated(&out, 0, "pain"));
    assert!(negated(&out, 2, "cough"));
}

#[test]
fn conversational_pseudo_negations_and_scope_ends() {
    let out = analyze(&[
        t(
            0,
            Role::Clinician,
            "Don't forget to take the metoprolol every morning.",
        ),
        t(
            1,
            Role::Patient,
            "I no longer have heartburn since I started the omeprazole.",
        ),
        t(2, Role::Patient, "I don't take aspirin for the headaches."),
        t(
            3,
            Role::Clinician,
            "I don't hear any wheezing, and I think this cough is from allergies.",
        ),
    ]);
    assert!(!negated(&out, 0, "metoprolol"));
    assert!(negated(&out, 1, "heartburn"));
    assert!(!negated(&out, 1, "omeprazole"));
    assert!(negated(&out, 2, "aspirin"));
    assert!(!negated(&out, 2, "headaches"));
    assert!(negated(&out, 3, "wheezing"));
    assert!(!negated(&out, 3, "cough"));
}

#[test]
fn unsure_answer_neither_confirms_nor_denies() {
    let out = analyze(&[
        t(0, Role::Clinician, "Have you ever had chickenpox?"),
        t(1, Role::Patient, "I don't remember."),
    ]);
    assert!(!negated(&out, 0, "chickenpox"));
}

#[test]
fn family_scope_across_sentences_of_a_turn() {
    let out = analyze(&[
        t(0, Role::Clinician, "Any family history of cancer?"),
        t(1, Role::Patient, "My mom. She had breast cancer at fifty."),
    ]);
    assert!(out[0].entities[0].has_trait(Trait::PERTAINS_TO_FAMILY));
    let bc = out[1]
        .entities
        .iter()
        .find(|e| e.text == "breast cancer")
        .unwrap();
    assert!(bc.has_trait(Trait::PERTAINS_TO_FAMILY));
    assert_eq!(&bc.codes[0].code[..3], "C50");
}

#[test]
fn medication_attributes_spoken_numbers_and_scd() {
    let out = analyze(&[t(
        0,
        Role::Clinician,
        "Keep taking lisinopril ten milligrams once a day by mouth for thirty days.",
    )]);
    let m = &out[0].entities[0];
    assert_eq!(m.category, Category::MEDICATION);
    assert_eq!(m.entity_type, EntityType::GENERIC_NAME);
    let kinds: Vec<EntityType> = m.attributes.iter().map(|a| a.entity_type).collect();
    for k in [
        EntityType::STRENGTH,
        EntityType::FREQUENCY,
        EntityType::ROUTE_OR_MODE,
        EntityType::DURATION,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing in {:?}", m.attributes);
    }
    assert_eq!(m.codes[0].code, "29046"); // lisinopril ingredient
    let scd = m
        .codes
        .iter()
        .find(|c| c.tty.as_deref() == Some("SCD"))
        .unwrap();
    assert_eq!(scd.code, "314076"); // lisinopril 10 MG Oral Tablet
}

#[test]
fn brand_and_conversational_names() {
    let out = analyze(&[t(
        0,
        Role::Patient,
        "I take Tylenol and my water pill, and my sugar is high.",
    )]);
    let e = &out[0].entities;
    let ty = e.iter().find(|x| x.text == "Tylenol").unwrap();
    assert_eq!(ty.entity_type, EntityType::BRAND_NAME);
    assert_eq!(ty.codes[0].code, "161");
    assert!(e
        .iter()
        .any(|x| x.text == "water pill" && x.category == Category::MEDICATION));
    let s = e.iter().find(|x| x.text == "sugar").unwrap();
    assert_eq!(&s.codes[0].code[..3], "E11");
}

#[test]
fn asr_misspelling_is_normalised() {
    let out = analyze(&[t(0, Role::Patient, "i take metforman and lysinopril")]);
    let codes: Vec<&str> = out[0]
        .entities
        .iter()
        .map(|e| e.codes[0].code.as_str())
        .collect();
    assert_eq!(codes, ["6809", "29046"]);
}

#[test]
fn test_values_anatomy_direction_time_social() {
    let out = analyze(&[t(
        0,
        Role::Clinician,
        "Your blood pressure is 150 over 90 today and your left knee is swollen. Do you smoke?",
    )]);
    let e = &out[0].entities;
    let bp = e
        .iter()
        .find(|x| x.entity_type == EntityType::TEST_NAME)
        .unwrap();
    assert_eq!(bp.attributes[0].text, "150 over 90");
    assert!(e
        .iter()
        .any(|x| x.category == Category::TIME_EXPRESSION && x.text == "today"));
    let knee = e.iter().find(|x| x.text == "knee").unwrap();
    assert_eq!(knee.attributes[0].entity_type, EntityType::DIRECTION);
    assert!(e.iter().any(|x| x.entity_type == EntityType::TOBACCO_USE));
}

#[test]
fn hypothetical_and_past_history() {
    let out = analyze(&[
        t(0, Role::Clinician, "If you get dizzy, stop the medicine."),
        t(1, Role::Patient, "I have a history of asthma."),
    ]);
    assert!(out[0].entities[0].has_trait(Trait::HYPOTHETICAL));
    assert!(out[1].entities[0].has_trait(Trait::PAST_HISTORY));
}

#[test]
fn small_talk_is_other() {
    let out = analyze(&[
        t(
            0,
            Role::Clinician,
            "Hi, good morning, nice to see you again.",
        ),
        t(1, Role::Patient, "I've had a cough for three weeks."),
    ]);
    assert_eq!(out[0].section, Section::OTHER);
    assert_eq!(out[1].section, Section::SUBJECTIVE);
}

#[test]
fn offsets_index_the_text_on_the_whole_conversational_set() {
    let mut convs = eval::parse_conversational(eval::CONVERSATIONAL_SET).unwrap();
    convs.extend(eval::parse_conversational(eval::CONVERSATIONAL_HELDOUT).unwrap());
    convs.extend(eval::parse_conversational(eval::CONVERSATIONAL_HELDOUT2).unwrap());
    let mut turns = 0;
    for c in &convs {
        let out = analyze(&c.turns);
        assert_eq!(out.len(), c.turns.len());
        for (turn, seg) in c.turns.iter().zip(&out) {
            turns += 1;
            assert_eq!(turn.segment_id, seg.segment_id);
            for e in &seg.entities {
                assert_eq!(char_slice(&turn.text, e.begin_char, e.end_char), e.text);
                for a in &e.attributes {
                    assert_eq!(char_slice(&turn.text, a.begin_char, a.end_char), a.text);
                }
            }
        }
    }
    assert!(
        turns >= 150,
        "the team-written set has at least 150 turns ({turns})"
    );
}

#[test]
fn conversational_set_floors() {
    let r = eval::eval_conversational_set(
        analyzer(),
        &eval::parse_conversational(eval::CONVERSATIONAL_SET).unwrap(),
    );
    let f1 = |c: &str| r.categories.iter().find(|x| x.0 == c).unwrap().1.f1();
    assert!(f1("MEDICAL_CONDITION") >= 0.85, "{r}");
    assert!(f1("MEDICATION") >= 0.85, "{r}");
    let neg = r.traits.iter().find(|x| x.0 == "NEGATION").unwrap().1.f1();
    assert!(neg >= 0.90, "{r}");
    // hypothetical / past-history round (0.993 / 0.965 on the enlarged set when it ended)
    let tf1 = |t: &str| r.traits.iter().find(|x| x.0 == t).unwrap().1.f1();
    assert!(tf1("HYPOTHETICAL") >= 0.95, "{r}");
    assert!(tf1("PAST_HISTORY") >= 0.90, "{r}");
    // held-out set: looser regression floors (it was not used to build the lexicon)
    let h = eval::eval_conversational_set(
        analyzer(),
        &eval::parse_conversational(eval::CONVERSATIONAL_HELDOUT).unwrap(),
    );
    let f1 = |c: &str| h.categories.iter().find(|x| x.0 == c).unwrap().1.f1();
    assert!(f1("MEDICAL_CONDITION") >= 0.80, "{h}");
    assert!(f1("MEDICATION") >= 0.80, "{h}");
}

#[test]
fn heldout2_set_floors() {
    // held-out 2 (written before this round's negation rules, never tuned against): loose
    // regression floors on aggregate figures only; the assertion message deliberately prints
    // no per-mention errors.
    let convs = eval::parse_conversational(eval::CONVERSATIONAL_HELDOUT2).unwrap();
    let turns: usize = convs.iter().map(|c| c.turns.len()).sum();
    assert!(turns >= 120, "held-out 2 has at least 120 turns ({turns})");
    let h = eval::eval_conversational_set(analyzer(), &convs);
    let f1 = |c: &str| h.categories.iter().find(|x| x.0 == c).unwrap().1.f1();
    let neg = h.traits.iter().find(|x| x.0 == "NEGATION").unwrap().1;
    assert!(
        neg.gold >= 40,
        "held-out 2 has at least 40 negated mentions"
    );
    let summary = format!(
        "conditions F1 {:.3}, medications F1 {:.3}, negation {}",
        f1("MEDICAL_CONDITION"),
        f1("MEDICATION"),
        neg.line()
    );
    assert!(f1("MEDICAL_CONDITION") >= 0.80, "{summary}");
    assert!(f1("MEDICATION") >= 0.80, "{summary}");
    // negation regression floor (0.895 when the third negation round started)
    assert!(neg.f1() >= 0.85, "{summary}");
    // hypothetical / past-history floors (0.846 / 0.533 after that round, from 0.696 / 0.308;
    // 13 and 10 gold mentions, so one mention moves them by several points)
    let tr = |t: &str| h.traits.iter().find(|x| x.0 == t).unwrap().1;
    let trait_summary = format!(
        "HYPOTHETICAL {}, PAST_HISTORY {}",
        tr("HYPOTHETICAL").line(),
        tr("PAST_HISTORY").line()
    );
    assert!(tr("HYPOTHETICAL").f1() >= 0.78, "{trait_summary}");
    assert!(tr("PAST_HISTORY").f1() >= 0.45, "{trait_summary}");
}

#[test]
fn section_model_and_lexicons_load() {
    let a = analyzer();
    assert!(a.model.labels.len() >= 20);
    assert!(a.lexicons.entries.len() > 40_000);
}

#[test]
fn attributes_stay_with_their_own_drug_across_a_list() {
    let out = analyze(&[t(
        0,
        Role::Clinician,
        "You're on lisinopril ten milligrams once a day, and metformin 500 milligrams twice daily.",
    )]);
    let attrs = |drug: &str| -> Vec<String> {
        let m = out[0]
            .entities
            .iter()
            .find(|e| e.text.eq_ignore_ascii_case(drug))
            .unwrap_or_else(|| panic!("{drug} not found"));
        m.attributes.iter().map(|a| a.text.clone()).collect()
    };
    let lis = attrs("lisinopril");
    let met = attrs("metformin");
    assert!(lis.contains(&"once a day".to_string()), "{lis:?}");
    assert!(!met.contains(&"once a day".to_string()), "{met:?}");
    assert!(met.contains(&"twice daily".to_string()), "{met:?}");
}
