#!/usr/bin/env bash
# Runs every test: installs prerequisites and models (idempotent), then cargo test.
# Tests run whisper on real (synthetic-voice) audio; models come from `fhirscribe models fetch`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --bin fhirscribe
"$CARGO_TARGET_DIR/debug/fhirscribe" models fetch --only tiny.en,vad,ort
cargo test --all-targets 2>&1
