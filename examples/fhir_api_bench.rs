//! Benchmark of the FHIR read API and Bulk Data export through the real server over HTTP.
//!
//!   cargo run --release --example fhir_api_bench -- --bundle DIR/fhir-bundle.json \
//!       --bin target/release/fhirscribe --model ggml-tiny.en.bin [--search-resources 10000] [--export-resources 100000]
//!
//! (`scripts/bench-fhir-api.sh` makes the Bundle from the sample encounter and runs this.)
//!
//! 1. Seeds a fresh store with copies of one real job Bundle, each a COMPLETED job record with
//!    its Bundle and its served resources, as the service leaves them (the job name inside
//!    the identifiers is replaced, so every copy has its own resources; the scribe Device stays
//!    shared), spread over 500 patients, one encounter per copy.
//! 2. Starts `fhirscribe serve --insecure-no-auth` on that store and runs a mix of searches
//!    (by patient, by encounter with `_revinclude`, by code without an index, by type +
//!    date, reads by id), printing p50/p99 per kind and overall.
//! 3. Grows the store to the export size, restarts, and times a system-level `$export`
//!    from kick-off to manifest; prints resources/s and the server's peak RSS (VmHWM) before
//!    and after.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fhirscribe::healthscribe::{DateTime, MedicalScribeJobStatus};
use fhirscribe::store::{
    ChartTarget, JobContext, JobRecord, JobStore, MediaSource, Owner, ResourceStore, SledJobStore,
};
use serde_json::Value;

struct Args {
    bundle: PathBuf,
    bin: PathBuf,
    /// The speech model the server loads (it is not used: no job runs).
    model: PathBuf,
    search_resources: usize,
    export_resources: usize,
    queries: usize,
}

fn args() -> Args {
    let mut a = Args {
        bundle: PathBuf::new(),
        bin: PathBuf::from("target/release/fhirscribe"),
        model: PathBuf::new(),
        search_resources: 10_000,
        export_resources: 100_000,
        queries: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--bundle" => a.bundle = v.into(),
            "--bin" => a.bin = v.into(),
            "--model" => a.model = v.into(),
            "--search-resources" => a.search_resources = v.parse().expect("number"),
            "--export-resources" => a.export_resources = v.parse().expect("number"),
            "--queries" => a.queries = v.parse().expect("number"),
            _ => panic!("unknown argument {k}"),
        }
    }
    assert!(
        a.bundle.is_file(),
        "--bundle FILE (a job's fhir-bundle.json) is required"
    );
    assert!(
        a.model.is_file(),
        "--model FILE (a whisper model the server can load) is required"
    );
    a
}

/// Adds copies of the Bundle until the store holds at least `target` resources; returns the
/// number of copies now stored.
fn seed(store_dir: &Path, bundle_text: &str, job: &str, from: usize, target: usize) -> usize {
    let db = fhirscribe::store::open_db(store_dir).expect("open store");
    let store =
        ResourceStore::open(&db, &store_dir.join("fhir-resources")).expect("resource store");
    let jobs = SledJobStore::in_db(&db).expect("job store");
    let per_copy: usize = serde_json::from_str::<Value>(bundle_text).unwrap()["entry"]
        .as_array()
        .unwrap()
        .len()
        - 1; // the shared Device
    let mut copies = from;
    let count = |s: &ResourceStore| -> usize {
        fhirscribe::fhir_api::read::TYPES
            .iter()
            .map(|t| s.count(t))
            .sum()
    };
    let mut have = count(&store);
    let t = Instant::now();
    while have < target {
        let name = format!("bench-{copies:06}");
        let copy: Value = serde_json::from_str(&bundle_text.replace(job, &name)).unwrap();
        let patient = format!("p{}", copies % 500);
        let encounter = format!("e{copies}");
        let at_ms = 1_790_000_000_000 + copies as i64 * 60_000;
        // The job as the service records a completed one: the record with its Bundle
        // (recovery keeps resources only of jobs that exist), then its resources.
        let record = JobRecord {
            name: name.clone(),
            id: format!("bench-id-{copies}"),
            status: MedicalScribeJobStatus::Completed,
            request: serde_json::from_value(serde_json::json!({
                "MedicalScribeJobName": name,
                "Media": {"MediaFileUri": "media://bench"},
                "OutputBucketName": "bench",
                "DataAccessRoleArn": "arn:aws:iam::000000000000:role/bench",
                "Settings": {"ChannelIdentification": true},
                "ChannelDefinitions": [{"ChannelId": 0, "ParticipantRole": "CLINICIAN"},
                                       {"ChannelId": 1, "ParticipantRole": "PATIENT"}]
            }))
            .expect("request"),
            media: MediaSource::Upload { id: "bench".into() },
            chart: Some(ChartTarget {
                ehr: "bench".into(),
                patient: format!("Patient/{patient}"),
                encounter: format!("Encounter/{encounter}"),
            }),
            owner: Owner {
                subject: "bench".into(),
                patient: None,
            },
            seq: copies as u64,
            creation_time: DateTime::from_unix_millis(at_ms - 60_000),
            start_time: Some(DateTime::from_unix_millis(at_ms - 30_000)),
            completion_time: Some(DateTime::from_unix_millis(at_ms)),
            failure_reason: None,
            run: 1,
            audio_secs: Some(146.0),
            outputs: vec!["fhir-bundle.json".into()],
            delivery_queued: true,
            retain_audio: false,
        };
        jobs.create_job(&record, usize::MAX).expect("create job");
        let raw = serde_json::to_vec(&copy).unwrap();
        jobs.finish_job(&record, &[("fhir-bundle.json", &raw)], None)
            .expect("finish job");
        let ctx = JobContext {
            job: &name,
            owner: "bench",
            patient: &patient,
            encounter: &encounter,
            at_ms,
        };
        store.put_job_unflushed(&ctx, &copy).expect("put");
        copies += 1;
        have += per_copy;
    }
    store.flush().unwrap();
    eprintln!(
        "seeded {} resources ({} jobs) in {:.1} s",
        count(&store),
        copies,
        t.elapsed().as_secs_f64()
    );
    copies
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(bin: &Path, model: &Path, dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nstore_dir = \"{}\"\nrate_limit_per_minute = 1000000\nhttp_workers = 2\n\n[models]\nworkers = 1\nwhisper = \"{}\"\n",
                dir.join("store").display(),
                model.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(bin)
            .args(["--config"])
            .arg(&config)
            .args(["serve", "--insecure-no-auth"])
            .env("FHIRSCRIBE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fhirscribe serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("fhirscribe listening"),
            "serve said {line:?}"
        );
        Server {
            child,
            base: format!("http://127.0.0.1:{port}/fhir/r4"),
        }
    }

    /// Peak and current resident memory of the server (VmHWM, VmRSS), MiB.
    fn memory(&self) -> (f64, f64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| -> f64 {
            s.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn get(http: &reqwest::blocking::Client, url: &str) -> (u16, Value, f64) {
    let t = Instant::now();
    let r = http.get(url).send().expect("request");
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap_or(Value::Null);
    (status, body, t.elapsed().as_secs_f64() * 1000.0)
}

fn main() {
    let a = args();
    let bundle_text = std::fs::read_to_string(&a.bundle).unwrap();
    let bundle: Value = serde_json::from_str(&bundle_text).unwrap();
    let job = bundle["identifier"]["value"]
        .as_str()
        .expect("the Bundle's identifier.value is its job name")
        .to_owned();
    let codes: Vec<String> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Condition")
        .filter_map(|e| e["resource"]["code"]["coding"][0]["code"].as_str())
        .map(str::to_owned)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    // --- search ---
    let copies = seed(&store_dir, &bundle_text, &job, 0, a.search_resources);
    let server = Server::start(&a.bin, &a.model, dir.path());
    let mut kinds: Vec<(&str, Vec<f64>)> = vec![
        ("Condition?patient=", vec![]),
        ("Condition?encounter=&_revinclude=Provenance:target", vec![]),
        ("Condition?code= (every job has the codes)", vec![]),
        ("DocumentReference?patient=&_lastUpdated=ge", vec![]),
        ("Provenance?target=", vec![]),
        ("read Condition/{id}", vec![]),
    ];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let (status, some, _) = get(&http, &format!("{}/Condition?_count=200", server.base));
    assert_eq!(status, 200, "{some}");
    let ids: Vec<String> = some["entry"]
        .as_array()
        .unwrap_or_else(|| panic!("{some}"))
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect();
    assert!(!ids.is_empty(), "the seeded store serves Conditions");
    for i in 0..a.queries {
        let k = i % kinds.len();
        let copy = next(copies);
        let url = match k {
            0 => format!("{}/Condition?patient=p{}", server.base, copy % 500),
            1 => format!(
                "{}/Condition?encounter=e{copy}&_revinclude=Provenance:target",
                server.base
            ),
            2 => format!(
                "{}/Condition?code={}&_count=20",
                server.base,
                codes[next(codes.len().max(1)).min(codes.len().saturating_sub(1))]
            ),
            3 => format!(
                "{}/DocumentReference?patient=p{}&_lastUpdated=ge2026-09-01",
                server.base,
                copy % 500
            ),
            4 => format!(
                "{}/Provenance?target=Condition/{}",
                server.base,
                ids[next(ids.len())]
            ),
            _ => format!("{}/Condition/{}", server.base, ids[next(ids.len())]),
        };
        let (status, _, ms) = get(&http, &url);
        assert_eq!(status, 200, "{url}");
        kinds[k].1.push(ms);
    }
    println!(
        "FHIR search over {} stored resources ({} jobs, 500 patients), {} requests over HTTP, one client:",
        a.search_resources, copies, a.queries
    );
    let mut all = Vec::new();
    for (name, mut v) in kinds {
        v.sort_by(f64::total_cmp);
        println!(
            "  {name:<55} p50 {:>7.2} ms  p99 {:>7.2} ms",
            percentile(&v, 0.5),
            percentile(&v, 0.99)
        );
        all.extend(v);
    }
    all.sort_by(f64::total_cmp);
    println!(
        "  {:<55} p50 {:>7.2} ms  p99 {:>7.2} ms",
        "all",
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    drop(server);

    // --- export ---
    seed(&store_dir, &bundle_text, &job, copies, a.export_resources);
    let server = Server::start(&a.bin, &a.model, dir.path());
    let (hwm_before, rss_before) = server.memory();
    let t = Instant::now();
    let kick = http
        .get(format!("{}/$export", server.base))
        .header("Prefer", "respond-async")
        .send()
        .unwrap();
    assert_eq!(kick.status().as_u16(), 202);
    let status_url = kick.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let manifest = loop {
        let r = http.get(&status_url).send().unwrap();
        if r.status().as_u16() == 200 {
            break r.json::<Value>().unwrap();
        }
        assert_eq!(r.status().as_u16(), 202);
        std::thread::sleep(Duration::from_millis(50));
    };
    let secs = t.elapsed().as_secs_f64();
    let (hwm_after, _) = server.memory();
    let exported: u64 = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["count"].as_u64().unwrap())
        .sum();
    let bytes: u64 = std::fs::read_dir(dir.path().join("store/exports"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| f.metadata().unwrap().len())
        .sum();
    println!(
        "Bulk Data $export (system level) of {exported} resources: {secs:.2} s kick-off to manifest, {:.0} resources/s, {:.1} MiB NDJSON",
        exported as f64 / secs,
        bytes as f64 / 1048576.0
    );
    println!(
        "  server memory: RSS {rss_before:.0} MiB before (peak so far {hwm_before:.0} MiB), peak {hwm_after:.0} MiB after the export (+{:.0} MiB)",
        hwm_after - hwm_before
    );
}
