#!/usr/bin/env python3
"""Derive dialogue scripts (samples/*.dialogue.tsv format) from ACI-BENCH encounters, for
rendering with render_dialogue.py into extra speech-recognition evaluation audio.

The output stays outside the repository (ACI-BENCH is used for evaluation only; see
../shared/data/aci-bench/README.md for its licence). Only encounters whose speakers are all
[doctor] or [patient] are used. ACI-BENCH text is tokenised ("i'm fine , thanks ."): spaces before
punctuation are removed and sentences capitalised so the TTS reads it naturally; the reference
text is the same string, so the WER normalisation sees what was spoken.

Usage: aci_to_dialogue.py ACI.csv OUT_DIR ENCOUNTER_ID...
"""
import csv
import re
import sys
from pathlib import Path

TAG = re.compile(r"^\[(doctor|patient)\]\s*(.*)$")


def clean(text: str) -> str:
    t = re.sub(r"\s+([,.?!;:])", r"\1", text.strip())
    t = re.sub(r"\bi\b", "I", t)
    t = re.sub(r"\bi'", "I'", t)
    t = re.sub(r"(^|[.?!]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), t)
    return t


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    rows = {r["encounter_id"]: r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))}
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for eid in sys.argv[3:]:
        turns = []
        for line in rows[eid]["dialogue"].splitlines():
            m = TAG.match(line.strip())
            if not m:
                print(f"{eid}: skipped (speaker other than doctor/patient)", file=sys.stderr)
                turns = None
                break
            text = clean(m.group(2).replace("[", "(").replace("]", ")"))
            if text:
                turns.append(("CLINICIAN" if m.group(1) == "doctor" else "PATIENT", text))
        if not turns:
            continue
        with open(out / f"{eid}.dialogue.tsv", "w", encoding="utf-8") as f:
            f.write(f"# derived from ACI-BENCH {eid} by lab/aci_to_dialogue.py (evaluation only)\n")
            f.write("turn\tspeaker\ttext\n")
            for i, (s, t) in enumerate(turns, 1):
                f.write(f"{i}\t{s}\t{t}\n")
        print(f"{eid}: {len(turns)} turns", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
