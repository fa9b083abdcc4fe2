//! A job is parsed and checked before any audio is decoded or any model is loaded: a bad job
//! name, template or encounter fails at once even on a long recording.

mod common;

use std::time::{Duration, Instant};

/// A valid 16 kHz mono WAV of `secs` seconds of silence.
fn wav(path: &std::path::Path, secs: u32) {
    let n = 16_000 * secs;
    let mut b = Vec::with_capacity(44 + 2 * n as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&16_000u32.to_le_bytes());
    b.extend_from_slice(&32_000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(2 * n).to_le_bytes());
    b.resize(44 + 2 * n as usize, 0);
    std::fs::write(path, b).unwrap();
}

fn transcribe(args: &[&str]) -> (bool, String, Duration) {
    let t = Instant::now();
    let out = std::process::Command::new(common::bin())
        .arg("transcribe")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    )
}

#[test]
fn a_bad_job_fails_before_a_ten_minute_file_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("visit.wav");
    wav(&audio, 600);
    let out = dir.path().join("out");
    let (a, o) = (audio.to_str().unwrap(), out.to_str().unwrap());
    let cases: [(&[&str], &str); 4] = [
        (
            &["--job-name", "bad name"],
            "MedicalScribeJobName `bad name` does not match the pattern",
        ),
        (&["--template", "NOPE"], "invalid --template \"NOPE\""),
        (
            &["--fhir-bundle", "--patient", "Patient/p1"],
            "a FHIR bundle needs --patient and --encounter",
        ),
        (
            &[
                "--fhir-bundle",
                "--patient",
                "Patient/p1",
                "--encounter",
                "Observation/x",
            ],
            "Encounter",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec![a, "--out", o];
        args.extend_from_slice(extra);
        let (ok, stderr, took) = transcribe(&args);
        assert!(!ok, "{extra:?} was accepted");
        assert!(stderr.contains(want), "{extra:?}: {stderr}");
        // Decoding 10 minutes of audio and loading whisper each take longer than this; the
        // message above proves the order, the time that nothing heavy ran first.
        assert!(took < Duration::from_secs(1), "{extra:?} took {took:?}");
        assert!(!out.exists(), "nothing is written for a refused job");
    }
}
