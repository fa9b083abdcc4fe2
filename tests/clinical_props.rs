//! Robustness: arbitrary text (empty, very long, non-English, emoji, control characters) never
//! panics, and every reported span indexes its turn's text.

use fhirscribe::clinical::{analyze, Role, Turn};
use proptest::prelude::*;

fn check(turns: &[Turn]) {
    let out = analyze(turns);
    assert_eq!(out.len(), turns.len());
    for (t, s) in turns.iter().zip(&out) {
        let chars: Vec<char> = t.text.chars().collect();
        let n = chars.len();
        for e in &s.entities {
            assert!(e.begin_char < e.end_char && e.end_char <= n);
            assert_eq!(
                chars[e.begin_char..e.end_char].iter().collect::<String>(),
                e.text
            );
            for a in &e.attributes {
                assert!(a.begin_char < a.end_char && a.end_char <= n);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_unicode_never_panics(a in any::<String>(), b in any::<String>()) {
        check(&[Turn::new("0", Role::Clinician, a), Turn::new("1", Role::Patient, b)]);
    }

    #[test]
    fn clinical_words_mixed_with_noise(
        words in proptest::collection::vec(
            prop_oneof![
                Just("chest pain".to_string()), Just("no".to_string()), Just("?".to_string()),
                Just("lisinopril".to_string()), Just("ten milligrams".to_string()),
                Just("twice a day".to_string()), Just("😀".to_string()), Just("\u{0}".to_string()),
                Just("\u{7}\r\n".to_string()), Just("dolor de pecho".to_string()),
                Just("胸痛".to_string()), Just("é".to_string()), Just("my mom".to_string()),
                Just("150 over 90".to_string()), Just("'".to_string()), Just("-".to_string()),
                "[a-z]{1,12}".prop_map(|s| s),
            ],
            0..60,
        ),
        roles in proptest::collection::vec(0u8..3, 1..6),
    ) {
        let text = words.join(" ");
        let turns: Vec<Turn> = roles
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let role = [Role::Clinician, Role::Patient, Role::Unknown][*r as usize];
                let cut: String = text.chars().skip(i * 3).collect();
                Turn::new(i.to_string(), role, cut)
            })
            .collect();
        check(&turns);
    }
}

#[test]
fn empty_and_whitespace_and_very_long() {
    check(&[]);
    check(&[Turn::new("0", Role::Unknown, "")]);
    check(&[Turn::new("0", Role::Unknown, "   \t\n  ")]);
    let long = "I have chest pain and take aspirin 81 mg daily. ".repeat(2_000);
    check(&[Turn::new("0", Role::Patient, long)]);
    let no_spaces = "a".repeat(100_000);
    check(&[Turn::new("0", Role::Patient, no_spaces)]);
}
