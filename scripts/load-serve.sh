#!/usr/bin/env bash
# Load test of `fhirscribe serve`: N concurrent submissions (upload + StartMedicalScribeJob) of a
# short clip of the sample encounter, against a release build with whisper tiny.en, on this
# machine. Prints: accepted / refused (LimitExceededException) / lost, submit latency p50/p99,
# peak RSS, jobs per minute, the workers' busy share and the service's overhead over the
# pipeline's own time per job. Refused submissions are retried after Retry-After until
# accepted, so every one of the N jobs runs and none may be lost.
#
#   scripts/load-serve.sh                # N=200 CLIP_SECS=6 QUEUE=64
#   N=50 CLIP_SECS=10 scripts/load-serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
N="${N:-200}"
CLIP_SECS="${CLIP_SECS:-6}"
QUEUE="${QUEUE:-64}"
PORT="${PORT:-18480}"

cargo build --release --bin fhirscribe >&2
bin="$CARGO_TARGET_DIR/release/fhirscribe"
"$bin" models fetch --only tiny.en,vad,ort >&2

work="$(mktemp -d /tmp/fhirscribe-load-XXXXXX)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
sox samples/encounter.flac -r 16000 -c 1 -b 16 "$work/clip.wav" trim 0 "$CLIP_SECS"
cat > "$work/config.toml" <<EOF
[models]
whisper = "ggml-tiny.en.bin"
workers = 1
[server]
listen = "127.0.0.1:$PORT"
store_dir = "$work/store"
queue_capacity = $QUEUE
max_jobs = 100000
rate_limit_per_minute = 100000
EOF
FHIRSCRIBE_LOG=warn "$bin" serve --config "$work/config.toml" --insecure-no-auth \
  >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 600); do grep -q "listening" "$work/out" 2>/dev/null && break; sleep 0.1; done
grep -q "listening" "$work/out" || { cat "$work/err"; exit 1; }

python3 - "$PORT" "$N" "$work/clip.wav" "$pid" "$CLIP_SECS" <<'PY'
import json, sys, threading, time, urllib.request, urllib.error, statistics
port, n, clip, pid, clip_secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
base = f"http://127.0.0.1:{port}"
audio = open(clip, "rb").read()

def call(method, path, body=None, ctype="application/json"):
    req = urllib.request.Request(base + path, data=body, method=method, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read() or b"null"), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers

def rss_kb(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1])

results = [None] * n
barrier = threading.Barrier(n)
def submit(i):
    name = f"load-{i:04d}"
    barrier.wait()
    t0 = time.perf_counter()
    s, b, _ = call("POST", "/v1/media", audio, "application/octet-stream")
    t1 = time.perf_counter()
    if s != 201:
        results[i] = (name, s, t1 - t0, 0.0, b); return
    req = {"MedicalScribeJobName": name, "Media": {"MediaFileUri": b["MediaFileUri"]},
           "OutputBucketName": "load", "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2}}
    s2, b2, _ = call("POST", "/v1/medical-scribe-jobs", json.dumps(req).encode())
    t2 = time.perf_counter()
    results[i] = (name, s2, t1 - t0, t2 - t1, b2, b["MediaFileUri"])

rss0 = rss_kb("VmRSS")
start = time.time()
threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
first = {}
for r in results: first[r[1]] = first.get(r[1], 0) + 1
start_lat = sorted(r[3] for r in results if r[1] == 200)
upload_lat = sorted(r[2] for r in results)
refused = [r for r in results if r[1] == 429]
other = [r for r in results if r[1] not in (200, 429)]
assert all(r[4].get("__type") == "LimitExceededException" for r in refused), refused[:1]
# Retry the refused ones after their Retry-After until accepted (a well-behaved client).
for r in refused:
    req = {"MedicalScribeJobName": r[0], "Media": {"MediaFileUri": r[5]},
           "OutputBucketName": "load", "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2}}
    while True:
        s, b, h = call("POST", "/v1/medical-scribe-jobs", json.dumps(req).encode())
        if s == 200: break
        assert s == 429, (s, b)
        time.sleep(float(h.get("Retry-After", "1")))
names = [r[0] for r in results if r[1] in (200, 429)]
while True:
    done = 0
    for name in names:
        s, b, _ = call("GET", f"/v1/medical-scribe-jobs/{name}")
        st = b["MedicalScribeJob"]["MedicalScribeJobStatus"]
        if st in ("COMPLETED", "FAILED"): done += 1
    if done == len(names): break
    time.sleep(2)
wall = time.time() - start
peak = rss_kb("VmHWM")
statuses = {}
for name in names:
    s, b, _ = call("GET", f"/v1/medical-scribe-jobs/{name}")
    st = b["MedicalScribeJob"]["MedicalScribeJobStatus"]
    statuses[st] = statuses.get(st, 0) + 1
metrics = urllib.request.urlopen(base + "/metrics").read().decode()
def metric(name):
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
job_sum = metric("fhirscribe_job_seconds_sum")
pipe = metric('fhirscribe_stage_seconds_sum{stage="decode"}') + metric('fhirscribe_stage_seconds_sum{stage="scribe"}')
busy = metric("fhirscribe_worker_busy_seconds_total")
def pct(xs, p): return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000 if xs else float("nan")
print(f"submissions: {n} concurrent, clip {clip_secs:.0f} s, first answers: {dict(sorted(first.items()))}")
print(f"refused (LimitExceededException, retried until accepted): {len(refused)}; other errors: {len(other)}")
print(f"jobs: {statuses}; lost: {len(names) - statuses.get('COMPLETED', 0)}")
print(f"StartMedicalScribeJob latency (accepted at first try): p50 {pct(start_lat, 50):.1f} ms, p99 {pct(start_lat, 99):.1f} ms")
print(f"upload latency ({len(audio)} bytes): p50 {pct(upload_lat, 50):.1f} ms, p99 {pct(upload_lat, 99):.1f} ms")
print(f"RSS: {rss0/1024:.0f} MiB idle, peak {peak/1024:.0f} MiB")
print(f"throughput: {len(names)} jobs in {wall:.1f} s = {len(names) / wall * 60:.1f} jobs/min ({len(names) * clip_secs / wall:.1f} s of audio per s)")
print(f"workers busy: {busy / wall * 100:.1f}% of wall time")
print(f"service overhead per job: job {job_sum:.1f} s vs pipeline (decode + scribe) {pipe:.1f} s = {(job_sum - pipe) / pipe * 100:.2f}%")
PY
