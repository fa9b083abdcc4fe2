#!/usr/bin/env bash
# Speed of speaker diarization beside transcription: the same one-channel file transcribed with
# whisper base without diarization and with `--max-speakers`, side by
# side, RUNS times each (default 3, alternating); prints each run's job time, diarization stage
# time (debug log) and peak RSS (/usr/bin/time -v), then the medians and the share diarization adds.
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
runs="${RUNS:-3}"
run() { # name, extra args...: appends "job_s stage_ms rss_mb asr_ms" to $tmp/NAME.tsv
  local name="$1"; shift
  FHIRSCRIBE_LOG=fhirscribe=debug /usr/bin/time -v "$bin" transcribe "$audio" --out "$tmp/$name" \
    --model "$model" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  local job stage rss asr
  job="$(grep -o 'job [0-9.]* s' "$tmp/$name.err" | awk '{print $2}' | head -1)"
  stage="$(sed 's/\x1b\[[0-9;]*m//g' "$tmp/$name.err" | grep 'diarization done' | grep -o 'elapsed_ms=[0-9]*' | cut -d= -f2 | head -1 || true)"
  asr="$(sed 's/\x1b\[[0-9;]*m//g' "$tmp/$name.err" | grep 'asr done' | grep -o 'elapsed_ms=[0-9]*' | cut -d= -f2 | head -1 || true)"
  rss="$(grep 'Maximum resident set size' "$tmp/$name.err" | awk '{print $NF}')"
  echo "$name run: job ${job} s, diarization stage ${stage:-0} ms, ASR ${asr:-0} ms, peak RSS $((rss / 1024)) MB"
  echo "$job ${stage:-0} $((rss / 1024)) ${asr:-0}" >>"$tmp/$name.tsv"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "audio: $audio ($(soxi -D "$audio" 2>/dev/null || echo '?') s), model base, max speakers $max, $runs runs each, alternating"
for _ in $(seq "$runs"); do
  run plain
  run diarized --max-speakers "$max"
done
p="$(cut -d' ' -f1 "$tmp/plain.tsv" | median)"
d="$(cut -d' ' -f1 "$tmp/diarized.tsv" | median)"
s="$(cut -d' ' -f2 "$tmp/diarized.tsv" | median)"
pr="$(cut -d' ' -f3 "$tmp/plain.tsv" | median)"
dr="$(cut -d' ' -f3 "$tmp/diarized.tsv" | median)"
pa="$(cut -d' ' -f4 "$tmp/plain.tsv" | median)"
da="$(cut -d' ' -f4 "$tmp/diarized.tsv" | median)"
awk -v p="$p" -v d="$d" -v s="$s" -v pr="$pr" -v dr="$dr" -v pa="$pa" -v da="$da" 'BEGIN {
  printf "medians: job plain %.2f s, diarized %.2f s: diarization adds %.1f%%; the diarization stage alone %.2f s = %.1f%% of the plain job; ASR (whisper) plain %.2f s, diarized %.2f s; peak RSS %d / %d MB\n", p, d, 100 * (d - p) / p, s / 1000, 100 * s / 1000 / p, pa / 1000, da / 1000, pr, dr }'
