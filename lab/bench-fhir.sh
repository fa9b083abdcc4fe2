#!/usr/bin/env bash
# FHIR write-back throughput, printed as figures (never asserted in tests):
#   1. Bundles mapped + validated per second (the sample encounter's outputs, from its reference
#      transcript through the real clinical and note stages; no speech model involved);
#   2. with a local Helios FHIR Server (validation enforced, auth off, fresh SQLite database):
#      Bundles delivered per second through the durable outbox, direct POSTs of fresh Bundles,
#      and replays of delivered ones (every conditional create matches).
# Usage: lab/bench-fhir.sh [BUNDLES]   (default 200). Run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
scripts/peers/install.sh
n="${1:-200}"

cargo build --release --bin fhirscribe
bin="$CARGO_TARGET_DIR/release/fhirscribe"
hfs="$FHIRSCRIBE_HOME/hfs/bin/hfs"
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
cp "$FHIRSCRIBE_HOME/hfs-data/template-r4.db" "$work/hfs.db"
(cd "$work" && HFS_DATA_DIR="$FHIRSCRIBE_HOME/hfs-data/data" HFS_DATABASE_URL="$work/hfs.db" \
  HFS_BASE_URL="$base" HFS_VALIDATION_MODE=enforce HFS_UI_ENABLED=false HFS_LOG_LEVEL=warn \
  HFS_EXPORT_DIR="$work/exports" exec "$hfs" --port "$port" >"$work/hfs.log" 2>&1) &
hfs_pid=$!
trap 'kill $hfs_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do curl -fsS "$base/metadata" >/dev/null 2>&1 && break; sleep 0.1; done
h=(-H 'Content-Type: application/fhir+json' -fsS -o /dev/null)
curl "${h[@]}" -X PUT "$base/Patient/bench" -d '{"resourceType":"Patient","id":"bench"}'
curl "${h[@]}" -X PUT "$base/Encounter/bench" -d '{"resourceType":"Encounter","id":"bench","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/bench"}}'

echo "hfs $("$hfs" --version | cut -d' ' -f2) (debug build), $(nproc) cores; $n bundles" >&2
"$bin" eval fhir --reference samples/encounter.ref.tsv --bundles "$n" --fhir-base "$base"
