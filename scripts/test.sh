#!/usr/bin/env bash
# Runs every check CI runs: installs prerequisites and models (idempotent), cargo fmt --check,
# clippy with warnings as errors, then every test. Fast tier without peers: `cargo test --lib`.
# Tests run whisper on real (synthetic-voice) audio; models come from `fhirscribe models fetch`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# Style gates first, so a formatting or lint failure shows before the long test build.
cargo fmt --check
cargo clippy --all-targets -- -D warnings
scripts/peers/install.sh  # FHIR server, SMART authz server, validator for the integration tests

cargo build --bin fhirscribe
"$CARGO_TARGET_DIR/debug/fhirscribe" models fetch --only tiny.en,vad,ort,segmentation,speaker-embedding
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
