#!/usr/bin/env bash
# Speed of speaker diarization beside transcription: the same one-channel file transcribed with
# whisper base once without diarization and once with `--max-speakers`, one run each, side by
# side; prints wall time and peak RSS (/usr/bin/time -v) of both and the share diarization adds.
# Also prints the diarization stage's own time from the debug log.
#
#   scripts/bench-diarization.sh [AUDIO] [MAX_SPEAKERS]
#
# Default AUDIO: the sample encounter mixed to one channel (written to a temp file with sox).
# Run it on an otherwise idle machine: whisper with 2 threads slows down many times under load.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${FHIRSCRIBE_HOME:-/var/cache/fhirscribe}/target}"
# NO_BUILD=1 uses the release binary as built (e.g. to re-run without a rebuild).
[[ "${NO_BUILD:-0}" == 1 ]] || cargo build --release --bin fhirscribe >&2
bin="$CARGO_TARGET_DIR/release/fhirscribe"
"$bin" models fetch --only base,vad,ort,segmentation,speaker-embedding >&2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
audio="${1:-}"
if [[ -z "$audio" ]]; then
  audio="$tmp/encounter.mono.wav"
  sox samples/encounter.flac "$audio" remix 1v1,2v1   # L+R: one microphone hearing both
fi
max="${2:-4}"
model="$("$bin" models path)/ggml-base.bin"
run() { # name, extra args...
  local name="$1"; shift
  FHIRSCRIBE_LOG=fhirscribe=debug /usr/bin/time -v "$bin" transcribe "$audio" --out "$tmp/$name" \
    --model "$model" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  local wall rss
  wall="$(grep 'Elapsed (wall clock)' "$tmp/$name.err" | awk '{print $NF}')"
  rss="$(grep 'Maximum resident set size' "$tmp/$name.err" | awk '{print $NF}')"
  echo "$name wall=$wall peak_rss_mb=$((rss / 1024))"
  grep -o 'job [0-9.]* s' "$tmp/$name.err" | head -1 | sed "s/^/$name /"
}
echo "audio: $audio ($(soxi -D "$audio" 2>/dev/null || echo '?') s), model base, max speakers $max"
run plain
run diarized --max-speakers "$max"
diar_ms="$(sed 's/\x1b\[[0-9;]*m//g' "$tmp/diarized.err" | grep 'diarization done' | grep -o 'elapsed_ms=[0-9]*' | cut -d= -f2 | head -1 || true)"
p="$(grep -o 'job [0-9.]*' "$tmp/plain.err" | awk '{print $2}' | head -1)"
d="$(grep -o 'job [0-9.]*' "$tmp/diarized.err" | awk '{print $2}' | head -1)"
echo "diarization stage: ${diar_ms:-?} ms"
awk -v p="$p" -v d="$d" -v s="${diar_ms:-0}" 'BEGIN {
  printf "job time: plain %.2f s, diarized %.2f s: diarized run +%.1f%%; diarization stage alone = %.1f%% of the plain job\n", p, d, 100 * (d - p) / p, 100 * s / 1000 / p }'
