//! The AWS-compatible endpoint: an unmodified boto3 `transcribe` client (fetched by
//! scripts/peers/install.sh) runs HealthScribe job code against `fhirscribe serve` by changing
//! only `endpoint_url`; SigV4 failures get AWS's error names.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::serve::{clip, request, spawn_app, AppOptions};
use fhirscribe::aws::{authorization, AccessKey, SignedRequest};
use serde_json::{json, Value};

const KEY_ID: &str = "AKIAFHIRSCRIBETEST";
const SECRET: &str = "test-only-secret-key";

const SCRIPT: &str = r#"
import json, sys, time
import boto3
from botocore.exceptions import ClientError
url, key, secret = sys.argv[1:4]
def client(k=key, s=secret):
    return boto3.client("transcribe", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=k, aws_secret_access_key=s)
def code(f):
    try:
        f()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]
c = client()
out = {}
req = dict(MedicalScribeJobName="sdk-visit", Media={"MediaFileUri": "s3://clinic-audio/visit.wav"},
           OutputBucketName="clinic-outputs", DataAccessRoleArn="arn:aws:iam::123456789012:role/scribe",
           Settings={"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2})
out["start"] = c.start_medical_scribe_job(**req)["MedicalScribeJob"]["MedicalScribeJobStatus"]
for _ in range(1200):
    j = c.get_medical_scribe_job(MedicalScribeJobName="sdk-visit")["MedicalScribeJob"]
    if j["MedicalScribeJobStatus"] in ("COMPLETED", "FAILED"):
        break
    time.sleep(0.25)
out["status"] = j["MedicalScribeJobStatus"]
out["creation_time_type"] = type(j["CreationTime"]).__name__
out["transcript_uri"] = j.get("MedicalScribeOutput", {}).get("TranscriptFileUri")
c.start_medical_scribe_job(**dict(req, MedicalScribeJobName="sdk-visit-2"))
for _ in range(1200):
    if c.get_medical_scribe_job(MedicalScribeJobName="sdk-visit-2")["MedicalScribeJob"]["MedicalScribeJobStatus"] in ("COMPLETED", "FAILED"):
        break
    time.sleep(0.25)
pages, token = [], None
while True:
    kw = dict(Status="COMPLETED", MaxResults=1, **({"NextToken": token} if token else {}))
    page = c.list_medical_scribe_jobs(**kw)
    pages.append([s["MedicalScribeJobName"] for s in page["MedicalScribeJobSummaries"]])
    token = page.get("NextToken")
    if not token:
        break
out["listed"] = pages
out["duplicate"] = code(lambda: c.start_medical_scribe_job(**req))
out["missing"] = code(lambda: c.get_medical_scribe_job(MedicalScribeJobName="no-such-job"))
out["unmapped_bucket"] = code(lambda: c.start_medical_scribe_job(**dict(req, MedicalScribeJobName="x2",
                              Media={"MediaFileUri": "s3://other-bucket/a.wav"})))
out["delete"] = code(lambda: c.delete_medical_scribe_job(MedicalScribeJobName="sdk-visit"))
out["after_delete"] = code(lambda: c.get_medical_scribe_job(MedicalScribeJobName="sdk-visit"))
out["wrong_secret"] = code(lambda: client(s="not-the-secret").list_medical_scribe_jobs())
out["unknown_key"] = code(lambda: client(k="AKIAUNKNOWN0000").list_medical_scribe_jobs())
print(json.dumps(out))
"#;

fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64().floor();
    let iso = fhirscribe::healthscribe::DateTime::from_unix_seconds(secs).unwrap();
    // 2026-12-03T10:15:00.000Z → 20261203T101500Z
    let s = iso.as_str();
    format!(
        "{}{}{}T{}{}{}Z",
        &s[0..4],
        &s[5..7],
        &s[8..10],
        &s[11..13],
        &s[14..16],
        &s[17..19]
    )
}

/// A request signed by our own signer (the one the unit test checks against AWS's example), to
/// send what an SDK would not: an old date, the same signature twice.
fn signed_post(url: &str, host: &str, target: &str, body: &Value, date: &str) -> (u16, Value) {
    let key = AccessKey {
        id: KEY_ID.into(),
        secret: SECRET.into(),
        scopes: vec![],
    };
    let body = body.to_string();
    let headers = vec![
        ("host".to_string(), host.to_string()),
        ("x-amz-date".to_string(), date.to_string()),
        ("x-amz-target".to_string(), target.to_string()),
    ];
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: headers.clone(),
        body: body.as_bytes(),
    };
    let auth = authorization(&key, &req, "us-east-1", "transcribe");
    let mut r = ureq::post(url)
        .set("Content-Type", "application/x-amz-json-1.1")
        .set("Authorization", &auth);
    for (k, v) in &headers[1..] {
        r = r.set(k, v);
    }
    let resp = match r.send_string(&body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = resp.status();
    (status, resp.into_json().unwrap_or(Value::Null))
}

#[test]
fn an_unmodified_boto3_client_runs_healthscribe_jobs_and_sigv4_failures_get_aws_errors() {
    let app = spawn_app(AppOptions {
        extra_toml: format!(
            "\n[aws_api]\n[[aws_api.access_keys]]\nid = \"{KEY_ID}\"\nsecret = \"{SECRET}\"\n\
             [[aws_api.s3]]\nbucket = \"clinic-audio\"\ndir = \"{{media_dir}}/clinic-audio\"\n"
        ),
        ..Default::default()
    });
    let bucket = app.media_dir().join("clinic-audio");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(
        bucket.join("visit.wav"),
        clip(&common::repo_path("samples/encounter.flac"), 8.0),
    )
    .unwrap();

    let site = common::peers::home().join("peers-py-aws/site");
    assert!(
        site.exists(),
        "boto3 is missing: run scripts/peers/install.sh (scripts/test.sh does)"
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(app.base_url())
        .arg(KEY_ID)
        .arg(SECRET)
        .env("PYTHONPATH", &site)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "boto3 script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["start"], "QUEUED", "{r}");
    assert_eq!(r["status"], "COMPLETED", "{r}");
    assert_eq!(
        r["creation_time_type"], "datetime",
        "epoch-seconds timestamps: {r}"
    );
    assert!(r["transcript_uri"]
        .as_str()
        .unwrap()
        .ends_with("/v1/medical-scribe-jobs/sdk-visit/transcript.json"));
    // Newest first, one per page, NextToken to the next.
    assert_eq!(r["listed"], json!([["sdk-visit-2"], ["sdk-visit"]]));
    assert_eq!(r["duplicate"], "ConflictException");
    assert_eq!(r["missing"], "NotFoundException");
    assert_eq!(r["unmapped_bucket"], "BadRequestException");
    assert_eq!(r["delete"], "ok");
    assert_eq!(r["after_delete"], "NotFoundException");
    assert_eq!(r["wrong_secret"], "InvalidSignatureException");
    assert_eq!(r["unknown_key"], "UnrecognizedClientException");

    // What an SDK would not send: a date outside the clock skew, and a replayed signature.
    let host = format!("127.0.0.1:{}", app.port);
    let url = app.url("/");
    let list = json!({});
    let old = amz_date(SystemTime::now() - Duration::from_secs(3600));
    let (s, b) = signed_post(&url, &host, "Transcribe.ListMedicalScribeJobs", &list, &old);
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["__type"], "InvalidSignatureException");
    assert!(
        b["message"].as_str().unwrap().contains("Signature expired"),
        "{b}"
    );
    let now = amz_date(SystemTime::now());
    let (s, _) = signed_post(&url, &host, "Transcribe.ListMedicalScribeJobs", &list, &now);
    assert_eq!(s, 200, "a fresh signature works");
    let start = json!({"MedicalScribeJobName": "replay", "Media": {"MediaFileUri": "media://none"},
                       "OutputBucketName": "out", "Settings": {"ShowSpeakerLabels": true, "MaxSpeakerLabels": 2}});
    let (s, b) = signed_post(
        &url,
        &host,
        "Transcribe.StartMedicalScribeJob",
        &start,
        &now,
    );
    assert_eq!(s, 400, "{b}");
    let (s, b) = signed_post(
        &url,
        &host,
        "Transcribe.StartMedicalScribeJob",
        &start,
        &now,
    );
    assert_eq!(s, 403, "{b}");
    assert!(b["message"].as_str().unwrap().contains("replayed"), "{b}");
    let (s, b) = signed_post(&url, &host, "Transcribe.StartTranscriptionJob", &list, &now);
    assert_eq!(
        (s, b["__type"].as_str()),
        (400, Some("UnknownOperationException"))
    );
    // Unsigned requests are refused.
    let r = request("POST", &url, None, None);
    assert_eq!(r.status, 400, "{}", r.body); // no X-Amz-Target
}
