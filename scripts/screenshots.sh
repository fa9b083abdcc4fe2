#!/usr/bin/env bash
# Regenerates docs/screenshots/ (the encounter, review and signed pages at 1280×800, and the
# review page on a tablet) by running the browser test (tests/ui_e2e.rs) with screenshots on.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
scripts/peers/install.sh
cargo build --bin fhirscribe
"$CARGO_TARGET_DIR/debug/fhirscribe" models fetch --only tiny.en,vad,ort
mkdir -p docs/screenshots
FHIRSCRIBE_SCREENSHOTS="$PWD/docs/screenshots" cargo test --test ui_e2e -- --nocapture
ls -l docs/screenshots
