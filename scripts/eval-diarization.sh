#!/usr/bin/env bash
# Diarization figures on the rendered evaluation set (scripts/render_diarization_set.py):
# transcribes every NAME.flac of each split with `--max-speakers` and prints
# `fhirscribe eval diarization` per file and in total (summed errors / summed reference speech).
#
#   scripts/eval-diarization.sh [SET_DIR] [MODEL] [MAX_SPEAKERS] [SPLITS]
#
# SET_DIR default /var/cache/fhirscribe/diar-eval (subfolders dev/ and heldout/); MODEL default
# the models folder's ggml-tiny.en.bin; MAX_SPEAKERS default 4; SPLITS default "dev heldout". Transcripts go to
# SET_DIR/out-<model>/<split>/NAME/ and are reused when present (delete them to re-run).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${FHIRSCRIBE_HOME:-/var/cache/fhirscribe}/target}"
bin="$CARGO_TARGET_DIR/release/fhirscribe"
[[ -x "$bin" ]] || cargo build --release --bin fhirscribe >&2
set_dir="${1:-/var/cache/fhirscribe/diar-eval}"
model="${2:-$("$bin" models path)/ggml-tiny.en.bin}"
max="${3:-4}"
splits="${4:-dev heldout}"
tag="$(basename "$model" .bin)"
for split in $splits; do
  [[ -d "$set_dir/$split" ]] || continue
  out="$set_dir/out-$tag/$split"
  for f in "$set_dir/$split"/*.flac; do
    name="$(basename "$f" .flac)"
    [[ -f "$out/$name/transcript.json" ]] && continue
    mkdir -p "$out"
    "$bin" transcribe "$f" --out "$out/$name" --model "$model" --max-speakers "$max" >/dev/null 2>"$out.$name.log" \
      || { mkdir -p "$out"; echo "$name: transcription failed (see $out.$name.log)" >&2; }
  done
  echo "== $split ($tag, --max-speakers $max)"
  "$bin" eval diarization --reference "$set_dir/$split" --transcript "$out"
done
