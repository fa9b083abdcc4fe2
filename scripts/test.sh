#!/usr/bin/env bash
# Runs every test: installs prerequisites and models (idempotent), then cargo test.
# Tests run whisper on real (synthetic-voice) audio; models come from `fhirscribe models fetch`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
scripts/peers/install.sh  # FHIR server, SMART authz server, validator for the integration tests

cargo build --bin fhirscribe
"$CARGO_TARGET_DIR/debug/fhirscribe" models fetch --only tiny.en,vad,ort
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (examples have no tests and would otherwise end the log).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
