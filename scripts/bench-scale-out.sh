#!/usr/bin/env bash
# Scale-out figures of `fhirscribe serve` on PostgreSQL (issue 20), on this machine:
# 1. jobs per minute with 1, 2 and 4 worker processes (`serve --mode worker`, one pipeline
#    thread each) behind one API process (`serve --mode api`), all on one throwaway PostgreSQL
#    cluster: JOBS clips of CLIP_SECS seconds of the sample encounter, whisper tiny.en, from the
#    first submission to the last completion;
# 2. the queue without the pipeline: `fhirscribe eval queue` (claim latency p50/p99 as one
#    worker drains 100 queued jobs; claims per second with a no-op pipeline).
#
#   scripts/bench-scale-out.sh                  # WORKERS="1 2 4" JOBS=16 CLIP_SECS=8
#   WORKERS="1 2" JOBS=8 scripts/bench-scale-out.sh
#
# The cluster runs with the server's defaults (fsync on). Needs Debian's postgresql package
# (scripts/peers/install.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
set +e
WORKERS="${WORKERS:-1 2 4}"
JOBS="${JOBS:-16}"
CLIP_SECS="${CLIP_SECS:-8}"

cargo build --release --bin fhirscribe >&2 || exit 1
bin="$CARGO_TARGET_DIR/release/fhirscribe"
"$bin" models fetch --only tiny.en,vad,ort >&2 || exit 1
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
[ -x "$pgbin/initdb" ] || { echo "PostgreSQL server not installed (scripts/peers/install.sh)" >&2; exit 1; }

work="$(mktemp -d /tmp/fhirscribe-scale-XXXXXX)"
chmod 755 "$work"  # the cluster runs as postgres
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work/pg"
pgport="$(free_port)"
as_pg "$pgbin/initdb" -D "$work/pg/data" -A trust -U fhirscribe -E UTF8 >/dev/null || exit 1
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" \
  -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=300" -w start >/dev/null || exit 1
db_url() { echo "postgres://fhirscribe@127.0.0.1:$pgport/$1"; }
createdb() { psql -h 127.0.0.1 -p "$pgport" -U fhirscribe -d postgres -qc "CREATE DATABASE \"$1\"" >/dev/null; }

sox samples/encounter.flac -r 16000 -c 1 -b 16 "$work/clip.wav" trim 0 "$CLIP_SECS"

# serve NAME MODE DB: starts one process, prints its port once it listens.
serve() {
  local name="$1" mode="$2" db="$3" port
  port="$(free_port)"
  mkdir -p "$work/$name"
  cat > "$work/$name/config.toml" <<EOF
[models]
whisper = "ggml-tiny.en.bin"
workers = 1
threads = 1
[server]
listen = "127.0.0.1:$port"
store_dir = "$work/$name/local"
store_url = "$(db_url "$db")"
mode = "$mode"
node_name = "$name"
queue_capacity = 10000
max_jobs = 100000
rate_limit_per_minute = 100000
EOF
  FHIRSCRIBE_LOG=warn "$bin" serve --config "$work/$name/config.toml" --insecure-no-auth \
    >"$work/$name/out" 2>"$work/$name/err" &
  pids+=($!)
  for _ in $(seq 1 600); do grep -q listening "$work/$name/out" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$work/$name/out" || { cat "$work/$name/err" >&2; exit 1; }
  echo "$port"
}

echo "# fhirscribe scale-out: $(nproc) cores, $JOBS jobs of ${CLIP_SECS} s (tiny.en, 1 pipeline thread per worker process)"
echo "worker_processes  jobs  wall_s  jobs_per_min  audio_x_realtime"
for n in $WORKERS; do
  db="scale_$n"
  createdb "$db"
  api="$(serve "api-$n" api "$db")"
  for k in $(seq 1 "$n"); do serve "worker-$n-$k" worker "$db" >/dev/null; done
  python3 - "$api" "$JOBS" "$work/clip.wav" "$n" "$CLIP_SECS" <<'PY'
import json, sys, time, urllib.request, urllib.error
port, jobs, clip, n, clip_secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
base = f"http://127.0.0.1:{port}"
audio = open(clip, "rb").read()
def call(method, path, body=None, ctype="application/json"):
    req = urllib.request.Request(base + path, data=body, method=method, headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read() or b"null")
t0 = time.time()
names = []
for i in range(jobs):
    uri = call("POST", "/v1/media", audio, "audio/wav")["MediaFileUri"]
    name = f"scale-{n}-{i:03d}"
    call("POST", "/v1/medical-scribe-jobs", json.dumps({
        "MedicalScribeJobName": name, "Media": {"MediaFileUri": uri},
        "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2},
        "OutputBucketName": "fhirscribe-outputs"}).encode())
    names.append(name)
left = set(names)
while left:
    for name in list(left):
        st = call("GET", f"/v1/medical-scribe-jobs/{name}")["MedicalScribeJob"]["MedicalScribeJobStatus"]
        if st in ("COMPLETED", "FAILED"):
            if st == "FAILED":
                print(f"{name} FAILED", file=sys.stderr)
            left.discard(name)
    time.sleep(0.2)
wall = time.time() - t0
print(f"{n:>16}  {jobs:>4}  {wall:>6.1f}  {jobs / wall * 60:>12.1f}  {jobs * clip_secs / wall:>16.1f}")
PY
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  pids=()
done

echo
echo "# the queue alone (no pipeline), fhirscribe eval queue, 100 jobs per row"
createdb queue_bench
"$bin" eval queue --store-url "$(db_url queue_bench)" --jobs 100 --workers 1,2,4,8,16
