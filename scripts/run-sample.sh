#!/usr/bin/env bash
# Builds fhirscribe and runs the main job on the bundled sample encounter (a two-channel
# recording, clinician on the left channel). Writes out/encounter/{transcript,clinical-documentation}.json
# and fhir-bundle.json (the FHIR R4 transaction for an example patient and encounter; sending it
# needs an EHR: see `fhirscribe fhir deliver`), and prints the word error rate against the
# sample's reference text.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --release --bin fhirscribe
bin="$CARGO_TARGET_DIR/release/fhirscribe"
"$bin" models fetch
"$bin" transcribe samples/encounter.flac --channel-identification --clinician-channel 0 \
  --vocabulary samples/encounter.vocabulary.txt --out out/encounter \
  --fhir-bundle --patient Patient/example --encounter Encounter/example
"$bin" eval wer --reference samples/encounter.ref.txt --hypothesis out/encounter/transcript.json \
  --terms samples/encounter.vocabulary.txt
"$bin" eval segments --reference samples/encounter.ref.tsv --transcript out/encounter/transcript.json
