//! `fhirscribe serve` end to end: the real binary on a random port, the real authorization
//! server (oidc-provider) and FHIR server (HFS) started by the test harness, whisper tiny.en on
//! a clip of the bundled sample encounter.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::peers::{fhir, Authz, Hfs, HfsOptions};
use common::serve::{clip, job_request, request, spawn_app, AppOptions, Body};
use serde_json::{json, Value};

const ALL: &str = "system/scribe.cruds";

fn sample_clip(secs: f64) -> Vec<u8> {
    clip(&common::repo_path("samples/encounter.flac"), secs)
}

fn seed_patient(base: &str, patient: &str, encounter: &str) {
    let (s, b) = fhir(
        "PUT",
        &format!("{base}/Patient/{patient}"),
        None,
        Some(&json!({"resourceType": "Patient", "id": patient, "name": [{"family": "Test"}]})),
    );
    assert!(s == 200 || s == 201, "{s} {b}");
    let (s, b) = fhir(
        "PUT",
        &format!("{base}/Encounter/{encounter}"),
        None,
        Some(
            &json!({"resourceType": "Encounter", "id": encounter, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{patient}")}}),
        ),
    );
    assert!(s == 200 || s == 201, "{s} {b}");
}

fn search_total(url: &str) -> usize {
    let (s, b) = fhir("GET", url, None, None);
    assert_eq!(s, 200, "GET {url}: {b}");
    b["entry"].as_array().map_or(0, Vec::len)
}

/// Runs of four consecutive words of `text`, lowercased, for the log check.
fn four_grams(text: &str) -> Vec<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.windows(4).map(|w| w.join(" ")).collect()
}

fn words_of(log: &str) -> String {
    log.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_job_runs_end_to_end_writes_back_once_and_deletes_without_trace() {
    let hfs = Hfs::start(HfsOptions::default());
    let port = common::peers::free_port();
    let service_url = format!("http://127.0.0.1:{port}");
    let authz = Authz::start(&service_url);
    let app = spawn_app(AppOptions {
        issuers: vec![authz.issuer().to_string()],
        ehrs: vec![("main".into(), hfs.base_url())],
        port: Some(port),
        log: Some("debug".into()),
        ..Default::default()
    });
    let token = authz.backend_token(ALL);
    let t = Some(token.as_str());
    seed_patient(&hfs.base_url(), "p-e2e", "e-e2e");

    let started = app.start_job(
        t,
        "visit-e2e",
        &sample_clip(40.0),
        json!({"Fhir": {"Ehr": "main", "Patient": "Patient/p-e2e", "Encounter": "Encounter/e-e2e"}}),
    );
    assert_eq!(
        started["MedicalScribeJob"]["MedicalScribeJobStatus"], "QUEUED",
        "{started}"
    );
    let done = app.wait_job(t, "visit-e2e", Duration::from_secs(600));
    let job = &done["MedicalScribeJob"];
    assert_eq!(job["MedicalScribeJobStatus"], "COMPLETED", "{done}");
    for k in ["CreationTime", "StartTime", "CompletionTime"] {
        assert!(job[k].is_string(), "{k} missing: {done}");
    }
    let out = &job["MedicalScribeOutput"];
    let transcript_uri = out["TranscriptFileUri"].as_str().unwrap();
    let doc_uri = out["ClinicalDocumentUri"].as_str().unwrap();
    assert!(transcript_uri.starts_with(&service_url), "{transcript_uri}");

    // Both files download and parse as HealthScribe's types.
    let tr = request("GET", transcript_uri, t, None);
    assert_eq!(tr.status, 200);
    let transcript: fhirscribe::healthscribe::TranscriptFile =
        serde_json::from_str(&tr.text).expect("transcript.json is HealthScribe's shape");
    let doc = request("GET", doc_uri, t, None);
    assert_eq!(doc.status, 200);
    let _: fhirscribe::healthscribe::ClinicalDocumentationFile =
        serde_json::from_str(&doc.text).expect("clinical-documentation.json shape");
    // The audio is gone once the job completed (retain_audio is off by default).
    let media = job["Media"]["MediaFileUri"].as_str().unwrap();
    let r = app.call(
        "POST",
        "/v1/medical-scribe-jobs",
        t,
        Some(&job_request("reuse", media)),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("no uploaded media"));
    let bundle = app.call(
        "GET",
        "/v1/medical-scribe-jobs/visit-e2e/fhir-bundle.json",
        t,
        None,
    );
    assert_eq!(bundle.status, 200);
    let doc_refs = bundle.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "DocumentReference")
        .count();
    assert!(doc_refs >= 1, "the Bundle has the note's DocumentReference");

    // Delivered once: the job says so and HFS finds exactly the Bundle's DocumentReferences.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let g = app.call("GET", "/v1/medical-scribe-jobs/visit-e2e", t, None);
        let state = g.body["MedicalScribeJob"]["Extensions"]["FhirDelivery"]["State"].clone();
        if state == "DELIVERED" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered: {}",
            g.body
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        search_total(&hfs.url("DocumentReference?encounter=Encounter/e-e2e")),
        doc_refs
    );

    // Listed, then deleted without trace.
    let l = app.call("GET", "/v1/medical-scribe-jobs?Status=COMPLETED", t, None);
    assert_eq!(l.status, 200, "{}", l.body);
    assert_eq!(
        l.body["MedicalScribeJobSummaries"][0]["MedicalScribeJobName"],
        "visit-e2e"
    );
    let d = app.call("DELETE", "/v1/medical-scribe-jobs/visit-e2e", t, None);
    assert_eq!(d.status, 200, "{}", d.body);
    let g = app.call("GET", "/v1/medical-scribe-jobs/visit-e2e", t, None);
    assert_eq!(g.status, 404);
    assert_eq!(g.body["__type"], "NotFoundException");
    assert_eq!(g.error_type.as_deref(), Some("NotFoundException"));
    for f in [
        "transcript.json",
        "clinical-documentation.json",
        "fhir-bundle.json",
    ] {
        let r = app.call(
            "GET",
            &format!("/v1/medical-scribe-jobs/visit-e2e/{f}"),
            t,
            None,
        );
        assert_eq!(r.status, 404, "{f} still served");
    }
    let l = app.call("GET", "/v1/medical-scribe-jobs", t, None);
    assert_eq!(l.body["MedicalScribeJobSummaries"], json!([]));

    // No PHI in the logs of the whole job, at debug level: no run of four words of any
    // segment, and none of the condition or medication texts.
    let logs = words_of(&app.logs());
    assert!(logs.contains("job finished"), "the log covers the job");
    let conv = &transcript.conversation;
    let mut checked = 0;
    for seg in &conv.transcript_segments {
        for g in four_grams(&seg.content) {
            checked += 1;
            assert!(!logs.contains(&g), "segment words in the log: {g:?}");
        }
    }
    assert!(
        checked > 20,
        "the clip has speech to check ({checked} runs)"
    );
    let entity_texts: BTreeSet<String> = conv
        .clinical_insights
        .iter()
        .filter(|i| {
            let c = serde_json::to_value(i.category).unwrap();
            c == "MEDICAL_CONDITION" || c == "MEDICATION"
        })
        .flat_map(|i| i.spans.iter().map(|s| s.content.to_lowercase()))
        .collect();
    assert!(
        !entity_texts.is_empty(),
        "the clip names a condition or medication"
    );
    for e in &entity_texts {
        assert!(
            !format!(" {logs} ").contains(&format!(" {} ", words_of(e))),
            "entity text in the log: {e:?}"
        );
    }
}

#[test]
fn requests_breaking_aws_rules_get_aws_errors_with_precise_messages() {
    let app = spawn_app(AppOptions {
        ehrs: vec![("main".into(), "http://127.0.0.1:9/fhir".into())],
        extra_toml: "".into(),
        ..Default::default()
    });
    let up = app.upload(None, &sample_clip(3.0));
    assert_eq!(up.status, 201, "{}", up.body);
    let media = up.body["MediaFileUri"].as_str().unwrap().to_string();
    assert!(media.starts_with("media://"));
    let base = job_request("rules", &media);
    // (change to the valid request, expected message fragment)
    let with = |f: &dyn Fn(&mut Value)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|r| r["MedicalScribeJobName"] = json!("bad name")),
            "MedicalScribeJobName `bad name` does not match",
        ),
        (
            with(&|r| r["MedicalScribeJobName"] = json!("x".repeat(201))),
            "MedicalScribeJobName must be 1 to 200 characters long, got 201",
        ),
        (
            with(&|r| r["Media"] = json!({})),
            "Media.MediaFileUri is required",
        ),
        (
            with(&|r| r["Media"]["MediaFileUri"] = json!("ftp://x/a.wav")),
            "Media.MediaFileUri `ftp://x/a.wav` does not match the pattern",
        ),
        (
            with(&|r| r["OutputBucketName"] = json!("No_Caps")),
            "OutputBucketName `No_Caps` does not match",
        ),
        (
            with(&|r| r["OutputEncryptionKMSKeyId"] = json!("-bad key")),
            "OutputEncryptionKMSKeyId",
        ),
        (
            with(&|r| r["KMSEncryptionContext"] = json!({})),
            "KMSEncryptionContext must have 1 to 10 entries, got 0",
        ),
        (
            with(&|r| r["DataAccessRoleArn"] = json!("arn:aws:iam::1:user/x")),
            "DataAccessRoleArn",
        ),
        (
            with(&|r| r["Settings"]["ChannelIdentification"] = json!(true)),
            "mutually exclusive",
        ),
        (
            with(&|r| r["Settings"] = json!({})),
            "exactly one of ShowSpeakerLabels or ChannelIdentification",
        ),
        (
            with(&|r| r["Settings"] = json!({"ShowSpeakerLabels": true})),
            "Settings.MaxSpeakerLabels is required",
        ),
        (
            with(&|r| r["Settings"]["MaxSpeakerLabels"] = json!(31)),
            "Settings.MaxSpeakerLabels must be between 2 and 30, got 31",
        ),
        (
            with(&|r| {
                r["Settings"] = json!({"ChannelIdentification": true, "MaxSpeakerLabels": 2})
            }),
            "may only be set when Settings.ShowSpeakerLabels is true",
        ),
        (
            with(&|r| r["Settings"]["VocabularyFilterName"] = json!("f")),
            "Settings.VocabularyFilterMethod is required",
        ),
        (
            with(&|r| r["Settings"] = json!({"ChannelIdentification": true})),
            "ChannelDefinitions is required",
        ),
        (
            with(&|r| {
                r["ChannelDefinitions"] = json!([{"ChannelId": 0, "ParticipantRole": "PATIENT"}])
            }),
            "ChannelDefinitions may only be set",
        ),
        (
            with(&|r| {
                r["Settings"] = json!({"ChannelIdentification": true});
                r["ChannelDefinitions"] = json!([{"ChannelId": 0, "ParticipantRole": "PATIENT"}]);
            }),
            "ChannelDefinitions must contain exactly 2 entries, got 1",
        ),
        (
            with(&|r| {
                r["Settings"] = json!({"ChannelIdentification": true});
                r["ChannelDefinitions"] = json!([{"ChannelId": 1, "ParticipantRole": "PATIENT"}, {"ChannelId": 1, "ParticipantRole": "CLINICIAN"}]);
            }),
            "ChannelId 1 is repeated",
        ),
        (
            with(&|r| {
                r["Settings"] = json!({"ChannelIdentification": true});
                r["ChannelDefinitions"] = json!([{"ChannelId": 0, "ParticipantRole": "PATIENT"}, {"ChannelId": 2, "ParticipantRole": "CLINICIAN"}]);
            }),
            "ChannelDefinitions.ChannelId must be between 0 and 1, got 2",
        ),
        (
            with(&|r| r["Tags"] = json!([])),
            "Tags must have 1 to 200 entries, got 0",
        ),
        (
            with(&|r| r["Tags"] = json!([{"Key": "k".repeat(129), "Value": "v"}])),
            "Tags.Key must be 1 to 128 characters long, got 129",
        ),
        // This server's own rules.
        (with(&|r| r["Unknown"] = json!(1)), "unknown field Unknown"),
        (
            with(&|r| r["Media"]["MediaFileUri"] = json!("media://0000-not-uploaded")),
            "no uploaded media media://0000-not-uploaded",
        ),
        (
            with(&|r| r["Media"]["MediaFileUri"] = json!("file:///etc/passwd")),
            "not inside the configured media folder",
        ),
        (
            with(&|r| {
                r["Media"]["MediaFileUri"] = json!("http://169.254.169.254/latest/meta-data")
            }),
            "jobs.media_url_prefixes",
        ),
        (
            with(&|r| r["Media"]["MediaFileUri"] = json!("s3://bucket/key.wav")),
            "upload the audio to /v1/media",
        ),
        (
            with(&|r| r["Settings"]["VocabularyName"] = json!("clinic")),
            "Settings.VocabularyName",
        ),
        (
            with(
                &|r| r["Extensions"] = json!({"Fhir": {"Ehr": "other", "Patient": "Patient/p", "Encounter": "Encounter/e"}}),
            ),
            "Extensions.Fhir.Ehr: no EHR named other is configured",
        ),
        (
            with(
                &|r| r["Extensions"] = json!({"Fhir": {"Ehr": "main", "Patient": "Patient/a b", "Encounter": "Encounter/e"}}),
            ),
            "Extensions.Fhir",
        ),
        (
            with(&|r| {
                r["Extensions"] =
                    json!({"Fhir": {"Url": "http://evil/fhir", "Patient": "p", "Encounter": "e"}})
            }),
            "unknown field `Url`",
        ),
    ];
    for (body, expected) in &cases {
        let r = app.call("POST", "/v1/medical-scribe-jobs", None, Some(body));
        assert_eq!(r.status, 400, "{expected}: {}", r.body);
        assert_eq!(r.body["__type"], "BadRequestException", "{expected}");
        assert_eq!(r.error_type.as_deref(), Some("BadRequestException"));
        let msg = r.body["message"].as_str().unwrap();
        assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
    }
    let r = request(
        "POST",
        &app.url("/v1/medical-scribe-jobs"),
        None,
        Some(Body::Bytes(b"{not json".to_vec())),
    );
    assert_eq!(r.status, 400);
    assert!(r.body["message"].as_str().unwrap().contains("not JSON"));

    // Uploads must be audio; nothing is stored otherwise.
    let r = app.upload(None, b"%PDF-1.7 not audio");
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"].as_str().unwrap().contains("not audio"),
        "{}",
        r.body
    );
    let r = app.upload(None, b"");
    assert_eq!(r.status, 400);

    // A valid request is accepted once; the same name again is a conflict.
    let ok = app.call("POST", "/v1/medical-scribe-jobs", None, Some(&base));
    assert_eq!(ok.status, 200, "{}", ok.body);
    let again = app.call("POST", "/v1/medical-scribe-jobs", None, Some(&base));
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.body["__type"], "ConflictException");

    // Get/List/Delete rules.
    let r = app.call("GET", "/v1/medical-scribe-jobs/no-such-job", None, None);
    assert_eq!(
        (r.status, r.body["__type"].as_str()),
        (404, Some("NotFoundException"))
    );
    let r = app.call("DELETE", "/v1/medical-scribe-jobs/no-such-job", None, None);
    assert_eq!(r.status, 404);
    for (q, expected) in [
        (
            "MaxResults=101",
            "MaxResults must be between 1 and 100, got 101",
        ),
        (
            "MaxResults=0",
            "MaxResults must be between 1 and 100, got 0",
        ),
        ("MaxResults=many", "MaxResults must be a whole number"),
        ("Status=DONE", "Status must be one of"),
        (
            "NextToken=forged",
            "NextToken is not a token this service issued",
        ),
        ("JobNameContains=a%20b", "JobNameContains"),
        ("Colour=red", "query"),
    ] {
        let r = app.call("GET", &format!("/v1/medical-scribe-jobs?{q}"), None, None);
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        let msg = r.body["message"].as_str().unwrap();
        assert!(msg.contains(expected), "{q}: {msg}");
    }
    let r = app.call(
        "GET",
        "/v1/medical-scribe-jobs/rules/other.json",
        None,
        None,
    );
    assert_eq!(r.status, 404);
    let r = app.call("GET", "/v1/nothing-here", None, None);
    assert_eq!(
        (r.status, r.body["__type"].as_str()),
        (404, Some("NotFoundException"))
    );
}

#[test]
fn limits_answer_limit_exceeded_and_lose_nothing() {
    let app = spawn_app(AppOptions {
        server_toml: "queue_capacity = 1\nmax_jobs = 4\nmax_upload_bytes = 2000000\n".into(),
        ..Default::default()
    });
    let audio = sample_clip(6.0);
    let big = vec![0u8; 2_000_001];
    let r = app.upload(None, &big);
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.body["__type"], "LimitExceededException");
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..4 {
        let up = app.upload(None, &audio);
        assert_eq!(up.status, 201);
        let name = format!("lim-{i}");
        let r = app.call(
            "POST",
            "/v1/medical-scribe-jobs",
            None,
            Some(&job_request(
                &name,
                up.body["MediaFileUri"].as_str().unwrap(),
            )),
        );
        match r.status {
            200 => accepted.push(name),
            429 => {
                assert_eq!(r.body["__type"], "LimitExceededException");
                assert!(r.body["message"]
                    .as_str()
                    .unwrap()
                    .contains("queue is full"));
                refused += 1;
            }
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    assert!(refused >= 1, "a queue of one refuses a burst");
    for name in &accepted {
        let done = app.wait_job(None, name, Duration::from_secs(300));
        assert_eq!(
            done["MedicalScribeJob"]["MedicalScribeJobStatus"],
            "COMPLETED"
        );
    }
    // The store limit counts every kept job.
    let mut n = accepted.len();
    let mut i = 10;
    while n < 4 {
        let up = app.upload(None, &audio);
        let name = format!("lim-{i}");
        let r = app.call(
            "POST",
            "/v1/medical-scribe-jobs",
            None,
            Some(&job_request(
                &name,
                up.body["MediaFileUri"].as_str().unwrap(),
            )),
        );
        if r.status == 200 {
            n += 1;
            app.wait_job(None, &name, Duration::from_secs(300));
        }
        i += 1;
    }
    let up = app.upload(None, &audio);
    let r = app.call(
        "POST",
        "/v1/medical-scribe-jobs",
        None,
        Some(&job_request(
            "lim-over",
            up.body["MediaFileUri"].as_str().unwrap(),
        )),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("maximum of 4 jobs"));
}

/// An RSA key the authorization server never saw, as PEM.
fn foreign_key(dir: &std::path::Path) -> Vec<u8> {
    let key = dir.join("foreign.pem");
    let st = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(st.status.success());
    std::fs::read(key).unwrap()
}

fn b64(v: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn every_auth_failure_gets_its_status_and_message() {
    let port = common::peers::free_port();
    let service_url = format!("http://127.0.0.1:{port}");
    let authz = Authz::start(&service_url);
    let elsewhere = Authz::start("http://127.0.0.1:1/another-service");
    let expired = Authz::start_with(
        &service_url,
        Duration::from_secs(1),
        Duration::from_secs(120),
    );
    let app = spawn_app(AppOptions {
        issuers: vec![
            authz.issuer().to_string(),
            elsewhere.issuer().to_string(),
            expired.issuer().to_string(),
        ],
        port: Some(port),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let claims = |iss: &str| {
        json!({"iss": iss, "sub": "x", "aud": service_url, "exp": now() + 300, "iat": now(),
               "scope": ALL})
    };
    let rs256 = |iss: &str, kid: &str, pem: &[u8]| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(
            &h,
            &claims(iss),
            &jsonwebtoken::EncodingKey::from_rsa_pem(pem).unwrap(),
        )
        .unwrap()
    };
    let foreign = foreign_key(dir.path());
    let jwks = request("GET", &authz.jwks_url(), None, None);
    let server_kid = jwks.body["keys"][0]["kid"].as_str().unwrap().to_string();
    let none_token = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims(authz.issuer()).to_string().as_bytes())
    );
    let hs256 = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(server_kid.clone());
        jsonwebtoken::encode(
            &h,
            &claims(authz.issuer()),
            &jsonwebtoken::EncodingKey::from_secret(jwks.text.as_bytes()),
        )
        .unwrap()
    };
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("no token", None, 401, "no bearer token"),
        ("expired", Some(expired.backend_token(ALL)), 401, "expired"),
        (
            "wrong audience",
            Some(elsewhere.backend_token(ALL)),
            401,
            "audience",
        ),
        (
            "wrong issuer",
            Some(rs256("http://127.0.0.1:1/not-trusted", "k", &foreign)),
            401,
            "not trusted",
        ),
        (
            "wrong key",
            Some(rs256(authz.issuer(), &server_kid, &foreign)),
            401,
            "signature",
        ),
        ("alg none", Some(none_token), 401, "alg: none"),
        ("HS256 with the public key", Some(hs256), 401, "HMAC"),
        ("garbage", Some("not.a.jwt".into()), 401, ""),
    ];
    for (what, token, status, expected) in &cases {
        let r = app.call("GET", "/v1/medical-scribe-jobs", token.as_deref(), None);
        assert_eq!(r.status, *status, "{what}: {}", r.body);
        assert_eq!(r.body["__type"], "UnauthorizedException", "{what}");
        let msg = r.body["message"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(&expected.to_lowercase()), "{what}: {msg}");
        let challenge = r.www_authenticate.clone().unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
        if token.is_some() {
            assert!(
                challenge.contains("error=\"invalid_token\""),
                "{what}: {challenge}"
            );
        }
    }

    // Scopes: a read-only token cannot start jobs; the 403 names the missing scope.
    let reader = authz.backend_token("system/scribe.rs");
    let r = app.call(
        "POST",
        "/v1/medical-scribe-jobs",
        Some(&reader),
        Some(&job_request("x", "media://x")),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["__type"], "AccessDeniedException");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("system/scribe.c"));
    assert!(r.www_authenticate.unwrap().contains("insufficient_scope"));
    let r = app.call("GET", "/v1/medical-scribe-jobs", Some(&reader), None);
    assert_eq!(r.status, 200, "a read scope lists");

    // Patient tokens see and create only their own patient's jobs.
    let p1 = authz.patient_token("patient/scribe.cruds", "p1");
    let p2 = authz.patient_token("patient/scribe.cruds", "p2");
    app.start_job(Some(&p1), "p1-visit", &sample_clip(3.0), Value::Null);
    let r = app.call("GET", "/v1/medical-scribe-jobs/p1-visit", Some(&p1), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.call("GET", "/v1/medical-scribe-jobs/p1-visit", Some(&p2), None);
    assert_eq!(
        r.status, 404,
        "another patient's job does not exist for p2: {}",
        r.body
    );
    let r = app.call(
        "DELETE",
        "/v1/medical-scribe-jobs/p1-visit",
        Some(&p2),
        None,
    );
    assert_eq!(r.status, 404);
    let r = app.call("GET", "/v1/medical-scribe-jobs", Some(&p2), None);
    assert_eq!(r.body["MedicalScribeJobSummaries"], json!([]));
    let r = app.call("GET", "/v1/medical-scribe-jobs", Some(&p1), None);
    assert_eq!(
        r.body["MedicalScribeJobSummaries"][0]["MedicalScribeJobName"],
        "p1-visit"
    );
    // p2 cannot use p1's upload either.
    let up = app.upload(Some(&p1), &sample_clip(2.0));
    let r = app.call(
        "POST",
        "/v1/medical-scribe-jobs",
        Some(&p2),
        Some(&job_request(
            "p2-steal",
            up.body["MediaFileUri"].as_str().unwrap(),
        )),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("no uploaded media"));

    // Open routes need no token; auth failures are counted by reason.
    assert_eq!(app.call("GET", "/healthz", None, None).status, 200);
    let m = request("GET", &app.url("/metrics"), None, None);
    assert_eq!(m.status, 200);
    for reason in [
        "missing",
        "expired",
        "wrong_audience",
        "unknown_issuer",
        "bad_signature",
        "alg_none",
        "hmac",
        "insufficient_scope",
    ] {
        assert!(
            m.text.contains(&format!(
                "fhirscribe_auth_failures_total{{reason=\"{reason}\"}}"
            )),
            "{reason} not counted:\n{}",
            m.text
        );
    }
}

#[test]
fn probes_metrics_and_the_openapi_document_match_the_routes() {
    let hfs = Hfs::start(HfsOptions::default());
    let mut app = spawn_app(AppOptions {
        ehrs: vec![("main".into(), hfs.base_url())],
        // The FHIR base and the AWS endpoint are where the configuration puts them.
        extra_toml: "\n[fhir_api]\nbase_path = \"/ehr/fhir\"\n\n[aws_api]\npath = \"/aws\"\n"
            .into(),
        ..Default::default()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = app.call("GET", "/readyz", None, None);
        if r.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let doc = app.call("GET", "/openapi.json", None, None).body;
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    let mut ops = 0;
    for (path, methods) in paths {
        for (method, _) in methods.as_object().unwrap() {
            ops += 1;
            assert!(
                path.starts_with("/v1/")
                    || path.starts_with("/ehr/fhir/")
                    || path.starts_with("/app")
                    || [
                        "/aws",
                        "/healthz",
                        "/readyz",
                        "/metrics",
                        "/openapi.json",
                        "/launch",
                        "/callback"
                    ]
                    .contains(&path.as_str()),
                "{path} is not under its configured mount"
            );
            let concrete = path
                .replace("{name}", "no-such-job")
                .replace("{file}", "transcript.json")
                .replace("{type}", "Condition")
                .replace("{id}", "x");
            let r = app.call(&method.to_uppercase(), &concrete, None, None);
            let msg = r.body["message"].as_str().unwrap_or_default();
            assert!(
                !msg.starts_with("no route"),
                "{method} {path} is documented but not routed"
            );
        }
    }
    assert_eq!(ops, 35, "every route is documented once");
    let cs = app.call("GET", "/ehr/fhir/metadata", None, None);
    assert_eq!(
        cs.body["resourceType"], "CapabilityStatement",
        "{}",
        cs.text
    );
    assert_eq!(app.call("GET", "/fhir/r4/metadata", None, None).status, 404);
    assert_eq!(
        app.call("POST", "/", None, None).status,
        404,
        "the AWS endpoint moved"
    );
    let m = request("GET", &app.url("/metrics"), None, None);
    assert!(m.text.contains("fhirscribe_queue_depth"), "{}", m.text);
    // --check-config: a good config passes, a bad one is named.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let check = |file: &std::path::Path, insecure: bool| {
        let mut c = std::process::Command::new(common::bin());
        c.args(["serve", "--check-config", "--config"]).arg(file);
        if insecure {
            c.arg("--insecure-no-auth");
        }
        c.output().unwrap()
    };
    let out = check(&good, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration ok"));
    let out = check(&good, false);
    assert!(
        !out.status.success(),
        "no issuer and no --insecure-no-auth is refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure-no-auth"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[ehr]]\nname = \"main\"\nfhir_base = \"ftp://x\"\n").unwrap();
    let out = check(&bad, true);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ehr.fhir_base"));
    // SIGTERM: stops within the grace period.
    let took = app.terminate();
    assert!(took < Duration::from_secs(15), "SIGTERM took {took:?}");
}
