#!/usr/bin/env bash
# Custom vocabulary evaluation: transcribes each sample with and without --vocabulary and
# prints WER (normalised) and how many of the vocabulary's terms the transcript renders right
# ("found" of those in the reference; "extra": terms written where the reference has none),
# plus wall time, and a POOLED row per mode.
# Usage: lab/eval-vocabulary.sh [MODEL] [THREADS]   (default: base 2)
# VOCABULARY=FILE picks the vocabulary (default samples/clinic.vocabulary.txt, whose header says
# how it was made); ASR_SAMPLES="PREFIX..." adds rendered dialogues (PREFIX.flac + PREFIX.ref.txt,
# see README "Measured"); ONLY_ASR_SAMPLES=1 leaves out the two bundled samples;
# MODES="vocabulary" runs only that mode (default "plain vocabulary"; the plain path does not
# depend on the vocabulary code); FHIRSCRIBE_BIN=PATH uses that binary instead of building one;
# OUT_DIR=DIR keeps each transcript.json (corrected words carry "HeardAs") and its log there.
# Run it on an otherwise idle machine if the times matter.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
model="${1:-base}"; threads="${2:-2}"
vocab="${VOCABULARY:-samples/clinic.vocabulary.txt}"

modes="${MODES:-plain vocabulary}"
if [ -n "${FHIRSCRIBE_BIN:-}" ]; then
  bin="$FHIRSCRIBE_BIN"
else
  cargo build --release --bin fhirscribe >&2
  bin="$CARGO_TARGET_DIR/release/fhirscribe"
fi
"$bin" models fetch --only "$model,vad,ort" >&2
f="$FHIRSCRIBE_HOME/models/ggml-$model.bin"
if [ -n "${OUT_DIR:-}" ]; then
  work="$OUT_DIR"; mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
printf "sample\tmode\tWER\tterms\twall_s\n"
refs=(); plain=(); voc=()
bundled="samples/encounter samples/long"; [ -n "${ONLY_ASR_SAMPLES:-}" ] && bundled=""
for p in $bundled ${ASR_SAMPLES:-}; do
  s=$(basename "$p")
  for mode in $modes; do
    args=(); [ "$mode" = vocabulary ] && args=(--vocabulary "$vocab")
    o="$work/$s-$mode"
    /usr/bin/time -f "%e" -o "$work/time" "$bin" transcribe "$p.flac" --channel-identification \
      --model "$f" --threads "$threads" "${args[@]}" --out "$o" >/dev/null 2>"$work/$s-$mode.log" \
      || { cat "$work/$s-$mode.log" >&2; exit 1; }
    line=$("$bin" eval wer --reference "$p.ref.txt" --hypothesis "$o/transcript.json" --terms "$vocab")
    printf "%s\t%s\t%s\t%s\t%s\n" "$s" "$mode" "$(cut -f2 <<<"$line")" "$(cut -f4 <<<"$line")" "$(cat "$work/time")"
  done
  refs+=(--reference "$p.ref.txt"); plain+=(--hypothesis "$work/$s-plain/transcript.json")
  voc+=(--hypothesis "$work/$s-vocabulary/transcript.json")
done
for mode in $modes; do
  if [ "$mode" = plain ]; then h=("${plain[@]}"); else h=("${voc[@]}"); fi
  # eval wer pairs the n-th --reference with the n-th --hypothesis.
  args=(); for i in $(seq 0 2 $((${#refs[@]} - 1))); do args+=("${refs[$i]}" "${refs[$((i + 1))]}" "${h[$i]}" "${h[$((i + 1))]}"); done
  line=$("$bin" eval wer "${args[@]}" --terms "$vocab" | tail -1)
  printf "POOLED\t%s\t%s\t%s\t-\n" "$mode" "$(cut -f2 <<<"$line")" "$(cut -f4 <<<"$line")"
done
