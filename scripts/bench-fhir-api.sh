#!/usr/bin/env bash
# Benchmark of the FHIR read API and Bulk Data export (examples/fhir_api_bench.rs): makes one
# real job Bundle from the bundled sample encounter (release build, whisper tiny.en, two
# channels), seeds a fresh store with copies of it (distinct jobs, 500 patients), then measures
# over HTTP against `fhirscribe serve`: search latency p50/p99 over SEARCH stored resources, and
# a system-level $export of EXPORT resources (resources/s, the server's peak RSS).
#
#   scripts/bench-fhir-api.sh                      # SEARCH=10000 EXPORT=100000
#   SEARCH=2000 EXPORT=10000 scripts/bench-fhir-api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
SEARCH="${SEARCH:-10000}"
EXPORT="${EXPORT:-100000}"

cargo build --release --bin fhirscribe --example fhir_api_bench >&2
bin="$CARGO_TARGET_DIR/release/fhirscribe"
"$bin" models fetch --only tiny.en,vad,ort >&2
model="$FHIRSCRIBE_HOME/models/ggml-tiny.en.bin"

work="$(mktemp -d /tmp/fhirscribe-fhirbench-XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$bin" transcribe samples/encounter.flac --channel-identification --clinician-channel 0 \
  --model "$model" --job-name bench-source --fhir-bundle --patient p0 --encounter Encounter/e0 \
  --out "$work/out" >&2
"$CARGO_TARGET_DIR/release/examples/fhir_api_bench" --bundle "$work/out/fhir-bundle.json" \
  --bin "$bin" --model "$model" --search-resources "$SEARCH" --export-resources "$EXPORT"
