#!/usr/bin/env bash
# Speech-recognition benchmark: fhirscribe (per-channel VAD regions, packed) vs whisper.cpp's
# own API on the whole mixed file (bench/whisper_ref.cpp, built from the whisper.cpp sources
# vendored by whisper-rs-sys), same model, same threads, same greedy decoding.
# Prints WER (normalised) against the reference text, wall time, RTF, the time ratio and peak RSS.
# Usage: lab/bench-asr.sh [THREADS] [MODELS...]   e.g. lab/bench-asr.sh 2 tiny.en base
# ASR_SAMPLES="PREFIX..." adds rendered dialogues (PREFIX.flac + PREFIX.ref.txt, e.g. made by
# lab/aci_to_dialogue.py + scripts/render_dialogue.py); a POOLED row per model sums the errors.
# Run it on an otherwise idle machine: whisper's threads spin-wait and collapse under load.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
threads="${1:-2}"; shift || true
models=("${@:-tiny.en base}")
read -r -a models <<<"${models[*]}"

cargo build --release --bin fhirscribe ${FHIRSCRIBE_FEATURES:+--features "$FHIRSCRIBE_FEATURES"} >&2
bin="$CARGO_TARGET_DIR/release/fhirscribe"
"$bin" models fetch --only "$(IFS=,; echo "${models[*]}"),vad,ort" >&2
out=$(ls -td "$CARGO_TARGET_DIR"/release/build/whisper-rs-sys-*/out | while read -r d; do [ -f "$d/lib/libwhisper.a" ] && echo "$d" && break; done)
src=$(cargo metadata --format-version 1 | python3 -c 'import json,sys; print([p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="whisper-rs-sys"][0].rsplit("/",1)[0])')
ref="$FHIRSCRIBE_HOME/bench/whisper_ref"
mkdir -p "$(dirname "$ref")"
extra=(); nm "$out/lib/libggml-cpu.a" 2>/dev/null | grep -q GOMP_ && extra=(-fopenmp)
g++ -O2 -std=c++17 bench/whisper_ref.cpp -I "$src/whisper.cpp/include" -I "$src/whisper.cpp/ggml/include" \
  -L "$out/lib" -lwhisper -lggml -lggml-cpu -lggml-base -lpthread "${extra[@]}" -o "$ref"

work=$(mktemp -d)
measure() { # measure STDOUT_FILE CMD...: prints "wall_s maxrss_MB" of the command
  local so="$1"; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$so" 2>"$work/stderr" || { cat "$work/stderr" >&2; return 1; }
  awk '{printf "%s %.0f\n", $1, $2/1024}' "$work/time"
}
printf "sample\tmodel\tthreads\taudio_s\tref_WER\tours_WER\tref_wall_s\tours_wall_s\tratio\tref_RTF\tours_RTF\tref_RSS_MB\tours_RSS_MB\n"
declare -A pooled
for p in samples/encounter samples/long ${ASR_SAMPLES:-}; do
  s=$(basename "$p")
  sox "$p.flac" -r 16000 -c 1 -b 16 "$work/$s.mono.wav" remix 1,2
  dur=$(soxi -D "$p.flac")
  for m in "${models[@]}"; do
    f="$FHIRSCRIBE_HOME/models/ggml-$m.bin"
    read -r rw rr < <(measure "$work/ref.txt" "$ref" "$f" "$work/$s.mono.wav" "$threads")
    read -r ow orss < <(measure /dev/null "$bin" transcribe "$p.flac" --channel-identification --model "$f" --threads "$threads" --out "$work/o")
    rline=$("$bin" eval wer --reference "$p.ref.txt" --hypothesis "$work/ref.txt")
    oline=$("$bin" eval wer --reference "$p.ref.txt" --hypothesis "$work/o/transcript.json")
    rwer=$(awk '{print $3}' <<<"$rline"); ower=$(awk '{print $3}' <<<"$oline")
    errs() { sed -E 's/.*\(S ([0-9]+) D ([0-9]+) I ([0-9]+) \/ N ([0-9]+)\).*/\1 \2 \3 \4/' <<<"$1" | awk '{print $1+$2+$3, $4}'; }
    read -r re rn < <(errs "$rline"); read -r oe _ < <(errs "$oline")
    read -r a b c d e < <(echo "${pooled[$m]:-0 0 0 0 0}")
    pooled[$m]="$((a + re)) $((b + oe)) $((c + rn)) $(awk -v x="$d" -v y="$rw" 'BEGIN{print x+y}') $(awk -v x="$e" -v y="$ow" 'BEGIN{print x+y}')"
    awk -v s="$s" -v m="$m" -v t="$threads" -v d="$dur" -v rwer="$rwer" -v ower="$ower" -v rw="$rw" -v ow="$ow" -v rr="$rr" -v orss="$orss" \
      'BEGIN{printf "%s\t%s\t%s\t%.1f\t%s\t%s\t%.2f\t%.2f\t%.3f\t%.3f\t%.3f\t%s\t%s\n", s,m,t,d,rwer,ower,rw,ow,ow/rw,rw/d,ow/d,rr,orss}'
  done
done
for m in "${models[@]}"; do
  read -r a b c d e <<<"${pooled[$m]}"
  awk -v m="$m" -v t="$threads" -v a="$a" -v b="$b" -v c="$c" -v d="$d" -v e="$e" \
    'BEGIN{printf "POOLED\t%s\t%s\t-\t%.2f%%\t%.2f%%\t%.2f\t%.2f\t%.3f\n", m,t,100*a/c,100*b/c,d,e,e/d}'
done
rm -rf "$work"
