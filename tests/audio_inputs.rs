//! Audio decoding across formats, and every kind of bad input with its exact message, through
//! the library and through the CLI.

mod common;

use fhirscribe::audio::{self, AudioError, AudioLimits, SAMPLE_RATE};
use std::process::Command;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::repo_path(&format!("tests/fixtures/audio/{name}"))).unwrap()
}

fn zero_crossings_per_sec(x: &[f32]) -> f64 {
    let zc = x
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    zc as f64 / (x.len() as f64 / SAMPLE_RATE as f64)
}

#[test]
fn decodes_flac_mp3_ogg_wav_at_any_rate_to_16k() {
    for (name, ext, channels) in [
        ("tone-44k1-stereo.flac", "flac", 2),
        ("tone-22k-mono.mp3", "mp3", 1),
        ("tone-48k-mono.ogg", "ogg", 1),
        ("tone-8k-mono.wav", "wav", 1),
    ] {
        let pcm = audio::decode(&fixture(name), Some(ext), &AudioLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(pcm.channels.len(), channels, "{name}");
        assert!(
            (pcm.duration_secs() - 1.5).abs() < 0.1,
            "{name}: {} s",
            pcm.duration_secs()
        );
        // A 440 Hz sine has 880 zero crossings per second whatever the source rate.
        let mid = &pcm.channels[0][4000..20000];
        let zc = zero_crossings_per_sec(mid);
        assert!((zc - 880.0).abs() < 15.0, "{name}: {zc} crossings/s");
    }
    // The stereo fixture's right channel is 660 Hz: channels stay separate.
    let st = audio::decode(
        &fixture("tone-44k1-stereo.flac"),
        None,
        &AudioLimits::default(),
    )
    .unwrap();
    assert!((zero_crossings_per_sec(&st.channels[1][4000..20000]) - 1320.0).abs() < 20.0);
}

#[test]
fn content_sniffing_beats_a_wrong_extension() {
    let pcm = audio::decode(
        &fixture("tone-48k-mono.ogg"),
        Some("wav"),
        &AudioLimits::default(),
    )
    .unwrap();
    assert_eq!(pcm.channels.len(), 1);
}

fn wav_tone(secs: f32) -> Vec<u8> {
    let x: Vec<f32> = (0..(16000.0 * secs) as usize)
        .map(|i| 0.3 * (i as f32 * 0.1).sin())
        .collect();
    audio::encode_wav(&[x], 16000)
}

#[test]
fn bad_inputs_get_precise_errors() {
    let lim = AudioLimits::default();
    assert_eq!(
        audio::decode(&[], None, &lim).unwrap_err().to_string(),
        "audio is empty (0 bytes)"
    );

    let text =
        b"this is not audio at all, just some text that a user uploaded by mistake".repeat(20);
    assert_eq!(
        audio::decode(&text, Some("txt"), &lim).unwrap_err().to_string(),
        "unsupported or unrecognised audio format (file extension .txt): supported are WAV, FLAC, MP3, OGG/Vorbis, AAC/M4A, ALAC, CAF, MKV/WebM"
    );

    let mut truncated = wav_tone(2.0);
    truncated.truncate(truncated.len() / 2);
    match audio::decode(&truncated, Some("wav"), &lim).unwrap_err() {
        AudioError::Truncated {
            declared_secs,
            decoded_secs,
        } => {
            assert!((declared_secs - 2.0).abs() < 0.01);
            assert!((decoded_secs - 1.0).abs() < 0.05, "{decoded_secs}");
        }
        e => panic!("expected Truncated, got {e}"),
    }
    let msg = audio::decode(&truncated, Some("wav"), &lim)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("audio stream is truncated: header declares 2.00 s but only "),
        "{msg}"
    );

    // A FLAC whose frames are overwritten with garbage after the header.
    let mut corrupt = fixture("tone-44k1-stereo.flac");
    let n = corrupt.len();
    for (i, b) in corrupt[200..n].iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    let e = audio::decode(&corrupt, Some("flac"), &lim).unwrap_err();
    assert!(
        matches!(e, AudioError::Corrupt(_) | AudioError::Truncated { .. }),
        "{e}"
    );

    let silent = audio::encode_wav(&[vec![0.0; 32000]], 16000);
    assert_eq!(
        audio::decode(&silent, Some("wav"), &lim)
            .unwrap_err()
            .to_string(),
        "audio is silent (peak level -200.0 dBFS, threshold -60.0 dBFS)"
    );

    let short_limit = AudioLimits {
        max_duration_secs: 1.0,
        ..Default::default()
    };
    assert_eq!(
        audio::decode(&wav_tone(2.0), Some("wav"), &short_limit)
            .unwrap_err()
            .to_string(),
        "audio is 2.0 s long, over the limit of 1.0 s"
    );

    let small = AudioLimits {
        max_bytes: 1000,
        ..Default::default()
    };
    assert_eq!(
        audio::decode(&wav_tone(1.0), None, &small)
            .unwrap_err()
            .to_string(),
        "audio file is 32044 bytes, over the limit of 1000 bytes"
    );

    let many = audio::encode_wav(&vec![vec![0.1; 1600]; 9], 16000);
    assert_eq!(
        audio::decode(&many, None, &lim).unwrap_err().to_string(),
        "audio has 9 channels; at most 8 are accepted"
    );

    let header_only = audio::encode_wav(&[vec![]], 16000);
    assert_eq!(
        audio::decode(&header_only, None, &lim)
            .unwrap_err()
            .to_string(),
        "audio contains no samples"
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let lim = AudioLimits::default();
    let base = fixture("tone-22k-mono.mp3");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..200 {
        let mut b = base.clone();
        let cut = (round * 31) % b.len();
        b.truncate(cut.max(1));
        for _ in 0..(round % 16) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % b.len();
            b[i] = (seed >> 32) as u8;
        }
        let _ = audio::decode(&b, Some("mp3"), &lim); // must return, Ok or Err
    }
}

fn run_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(common::bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_reports_bad_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let (ok, err) = run_cli(&["transcribe", empty.to_str().unwrap(), "--out", out_s]);
    assert!(!ok);
    assert!(err.contains("audio is empty (0 bytes)"), "{err}");

    let (ok, err) = run_cli(&[
        "transcribe",
        dir.path().join("missing.wav").to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert!(!ok);
    assert!(err.contains("cannot read audio file"), "{err}");

    let mono = dir.path().join("mono.wav");
    std::fs::write(&mono, wav_tone(1.0)).unwrap();
    let (ok, err) = run_cli(&[
        "transcribe",
        mono.to_str().unwrap(),
        "--out",
        out_s,
        "--channel-identification",
    ]);
    assert!(!ok);
    assert!(
        err.contains("channel identification needs exactly 2 audio channels, but the audio has 1"),
        "{err}"
    );

    let (ok, err) = run_cli(&[
        "transcribe",
        mono.to_str().unwrap(),
        "--out",
        out_s,
        "--max-duration-secs",
        "0.5",
    ]);
    assert!(!ok);
    assert!(
        err.contains("audio is 1.0 s long, over the limit of 0.5 s"),
        "{err}"
    );

    let vocab = dir.path().join("vocab.txt");
    std::fs::write(&vocab, "x".repeat(80)).unwrap();
    let (ok, err) = run_cli(&[
        "transcribe",
        mono.to_str().unwrap(),
        "--out",
        out_s,
        "--vocabulary",
        vocab.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("custom vocabulary is invalid: term on line 1"),
        "{err}"
    );

    assert!(
        !out.join("transcript.json").exists(),
        "no output may be written for rejected input"
    );
}
