//! The review app's entry (issue 18, first part) end to end: the real `fhirscribe serve`, the
//! real SMART authorization server (oidc-provider, public client `scribe-app`, PKCE) and HFS as
//! the EHR. An EHR launch with a patient and encounter context ends on the encounter page with
//! the patient banner read from HFS with the clinician's token; the refusals (unknown `iss`,
//! wrong or replayed `state`, missing CSRF token, ended or expired session) leave no session.

mod common;

use std::time::Duration;

use common::browser::browse;
use common::peers::{fhir, free_port, Authz, Hfs, HfsOptions};
use common::serve::{spawn_app, AppOptions};
use serde_json::json;

fn get(url: &str, cookie: &str) -> (u16, String, Option<String>) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let r = match agent.get(url).set("Cookie", cookie).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let set_cookie = r.header("set-cookie").map(str::to_owned);
    (r.status(), r.into_string().unwrap_or_default(), set_cookie)
}

/// The session's CSRF token, from a page's `<meta name="csrf">`.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .unwrap()
        .to_owned()
}

fn post_form(url: &str, cookie: &str, form: &[(&str, &str)]) -> (u16, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let r = match agent.post(url).set("Cookie", cookie).send_form(form) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url}: {e}"),
    };
    (r.status(), r.into_string().unwrap_or_default())
}

#[test]
fn an_ehr_launch_opens_the_patients_encounter_page_and_refusals_leave_no_session() {
    let port = free_port();
    let app_url = format!("http://127.0.0.1:{port}");
    let hfs_port = free_port();
    let hfs_base = format!("http://127.0.0.1:{hfs_port}");
    let authz = Authz::start_for_app(&hfs_base, &format!("{app_url}/callback"));
    let hfs = Hfs::start(HfsOptions::with_auth(&authz));
    assert_eq!(hfs.base_url(), hfs_base);
    let admin = authz.backend_token("system/*.cruds");
    common::review::seed(
        &hfs_base,
        &admin,
        &[
            json!({"resourceType": "Patient", "id": "p9",
            "name": [{"given": ["Ada"], "family": "Lovelace"}], "birthDate": "1960-12-10"}),
            json!({"resourceType": "Encounter", "id": "e9", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"text": "Follow-up visit"}],
            "subject": {"reference": "Patient/p9"}, "period": {"start": "2026-12-06T09:00:00Z"}}),
        ],
    );
    let app = spawn_app(AppOptions {
        issuers: vec![authz.issuer().to_string()],
        port: Some(port),
        extra_toml: format!(
            "{}\n[ui]\nsession_idle_secs = 5\n",
            common::review::app_toml(&hfs_base)
        ),
        ..Default::default()
    });
    let launch = format!("{app_url}/launch?iss={hfs_base}&launch=p9:e9");

    // The launch: login and consent at the authorization server, callback, encounter page.
    let at_app = browse(&launch, |u| u.path() == "/app");
    assert_eq!(at_app.url.as_str(), format!("{app_url}/app"));
    let cookie = at_app.cookie_header();
    assert!(cookie.contains("fhirscribe_session="), "{cookie}");
    let (s, page, _) = get(&format!("{app_url}/app"), &cookie);
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("Ada Lovelace"),
        "the banner names the launch patient: {page}"
    );
    assert!(
        page.contains("1960-12-10") && page.contains("Follow-up visit"),
        "{page}"
    );
    assert!(!page.contains(&admin), "no token in the page");

    // A recording uploaded from the encounter page becomes a job of this patient and
    // encounter; the review page shows the note beside the transcript, every sentence naming
    // segments that are on the page.
    let csrf = csrf_of(&page);
    let audio = common::serve::clip(&common::repo_path("samples/encounter.flac"), 40.0);
    let post_audio = |csrf: Option<&str>| {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let mut r = agent
            .post(&format!("{app_url}/app/jobs?two_channel=1"))
            .set("Cookie", &cookie);
        if let Some(c) = csrf {
            r = r.set("X-CSRF-Token", c);
        }
        match r.send_bytes(&audio) {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(post_audio(None).0, 403, "no CSRF token, no job");
    let (s, body) = post_audio(Some(&csrf));
    assert_eq!(s, 200, "{body}");
    let job = serde_json::from_str::<serde_json::Value>(&body).unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let (s, body, _) = get(&format!("{app_url}/app/jobs/{job}"), &cookie);
        assert_eq!(s, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["status"] == "COMPLETED" {
            break;
        }
        assert_ne!(v["status"], "FAILED", "{v}");
        assert!(std::time::Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (s, review, _) = get(&format!("{app_url}/app/review/{job}"), &cookie);
    assert_eq!(s, 200, "{review}");
    let sentences: Vec<&str> = review
        .split("data-evidence=\"")
        .skip(1)
        .filter_map(|p| p.split('"').next())
        .collect();
    assert!(sentences.len() >= 3, "{review}");
    for ids in &sentences {
        for id in ids.split_whitespace() {
            assert!(
                review.contains(&format!("id=\"seg-{id}\"")),
                "evidence {id} is on the page"
            );
        }
    }
    assert!(
        review.contains("CLINICIAN") && review.contains("PATIENT"),
        "roles shown"
    );
    // Entities are underlined whole: a highlight never stops inside a word.
    let transcript = review
        .split("class=\"segment")
        .skip(1)
        .collect::<Vec<_>>()
        .join("");
    let marks = transcript.matches("<mark class=\"ent ").count();
    assert!(
        marks >= 3,
        "entities in the transcript are highlighted: {review}"
    );
    for after in transcript.split("</mark>").skip(1) {
        assert!(
            !after.starts_with(|c: char| c.is_alphanumeric()),
            "a highlight ends inside a word: {}",
            &after[..after.len().min(40)]
        );
    }
    // The recording is kept for the review page and served in byte ranges to this session.
    assert!(
        review.contains(&format!("src=\"/app/jobs/{job}/audio\"")),
        "{review}"
    );
    let ranged = ureq::get(&format!("{app_url}/app/jobs/{job}/audio"))
        .set("Cookie", &cookie)
        .set("Range", "bytes=0-99")
        .call()
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.header("content-range"),
        Some(format!("bytes 0-99/{}", audio.len()).as_str())
    );
    assert_eq!(ranged.header("content-type"), Some("audio/wav"));
    let mut head = Vec::new();
    std::io::Read::read_to_end(&mut ranged.into_reader(), &mut head).unwrap();
    assert_eq!(head, audio[..100]);
    assert_eq!(get(&format!("{app_url}/app/jobs/{job}/audio"), "").0, 401);
    // Review: every edit is saved at once (a reload shows it), needs the CSRF token, and is
    // on the audit trail; signing writes the note final with the edit, the removed condition
    // as entered-in-error, a verifier Provenance per kept resource, and nothing twice.
    let post_json = |path: &str, csrf: Option<&str>, body: &serde_json::Value| {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let mut r = agent
            .post(&format!("{app_url}{path}"))
            .set("Cookie", &cookie);
        if let Some(c) = csrf {
            r = r.set("X-CSRF-Token", c);
        }
        let r = match r.send_json(body.clone()) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        (
            r.status(),
            r.into_json::<serde_json::Value>().unwrap_or_default(),
        )
    };
    let first_id = review
        .split("class=\"sentence-row")
        .nth(1)
        .and_then(|p| p.split("data-id=\"").nth(1))
        .and_then(|p| p.split('"').next())
        .unwrap()
        .to_owned();
    let edit = json!({"op": "edit", "id": first_id, "text": "Edited by the clinician: knee pain for two weeks."});
    let edits = format!("/app/review/{job}/edits");
    assert_eq!(
        post_json(&edits, None, &edit).0,
        403,
        "no CSRF token, no edit"
    );
    assert_eq!(post_json(&edits, Some("guess"), &edit).0, 403);
    let (s, bad) = post_json(
        &edits,
        Some(&csrf),
        &json!({"op": "edit", "id": "nope", "text": "x"}),
    );
    assert_eq!(s, 400, "{bad}");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("no sentence nope"),
        "{bad}"
    );
    let (s, saved) = post_json(&edits, Some(&csrf), &edit);
    assert_eq!(s, 200, "{saved}");
    let (_, reloaded, _) = get(&format!("{app_url}/app/review/{job}"), &cookie);
    assert!(
        reloaded.contains("Edited by the clinician: knee pain for two weeks."),
        "saved at once"
    );
    assert!(reloaded.contains(">edited</span>"), "{reloaded}");
    let (s, added) = post_json(
        &edits,
        Some(&csrf),
        &json!({"op": "add", "section": "PLAN", "text": "Return if the swelling gets worse."}),
    );
    assert_eq!(s, 200, "{added}");
    let items = saved["items"].as_array().unwrap().clone();
    let condition = items
        .iter()
        .find(|i| i["resource_type"] == "Condition")
        .unwrap_or_else(|| panic!("a Condition to remove: {saved}"))["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, removed) = post_json(
        &edits,
        Some(&csrf),
        &json!({"op": "remove-item", "key": condition}),
    );
    assert_eq!(s, 200, "{removed}");
    let sign = format!("/app/review/{job}/sign");
    assert_eq!(
        post_json(&sign, None, &json!({})).0,
        403,
        "no CSRF token, no signature"
    );
    let (s, signed) = post_json(&sign, Some(&csrf), &json!({}));
    assert_eq!(s, 200, "{signed}");
    assert_eq!(signed["signature"]["state"], "written", "{signed}");
    let signer = signed["signature"]["by"].as_str().unwrap().to_owned();
    assert!(
        signer.starts_with("Practitioner/"),
        "fhirUser from the verified id_token: {signer}"
    );
    let (s, _) = post_json(&sign, Some(&csrf), &json!({}));
    assert_eq!(s, 409, "signed once");
    assert_eq!(
        post_json(&edits, Some(&csrf), &edit).0,
        409,
        "a signed note does not change"
    );
    let (_, signed_page, _) = get(&format!("{app_url}/app/review/{job}"), &cookie);
    assert!(
        signed_page.contains("id=\"written\""),
        "the page lists what was written"
    );
    // What the EHR holds.
    common::review::check_signed_chart(
        &hfs_base,
        &admin,
        "e9",
        &condition,
        &signer,
        &[
            "Edited by the clinician: knee pain for two weeks.",
            "Return if the swelling gets worse.",
        ],
    );
    // The audit trail, through the job API with a read scope.
    let reader = authz.backend_token_for("system/scribe.r", &app_url);
    let audit: serde_json::Value =
        ureq::get(&format!("{app_url}/v1/medical-scribe-jobs/{job}/audit"))
            .set("Authorization", &format!("Bearer {reader}"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
    let actions: Vec<&str> = audit["AuditTrail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["edit", "add", "remove-item", "sign", "signed"],
        "{audit}"
    );
    assert!(audit["AuditTrail"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["who"] == signer.as_str()));
    assert_eq!(
        audit["AuditTrail"][0]["after"],
        "Edited by the clinician: knee pain for two weeks."
    );
    assert!(
        audit["AuditTrail"][0]["before"]
            .as_str()
            .is_some_and(|b| !b.is_empty()),
        "the AI draft is kept"
    );
    assert_eq!(audit["Review"]["signature"]["state"], "written");
    let no_scope = authz.backend_token_for("system/scribe.c", &app_url);
    let refused = ureq::get(&format!("{app_url}/v1/medical-scribe-jobs/{job}/audit"))
        .set("Authorization", &format!("Bearer {no_scope}"))
        .call();
    assert!(
        matches!(refused, Err(ureq::Error::Status(403, _))),
        "a read scope is needed"
    );

    // Another patient's job (started from a session launched for p10) is not reachable from
    // this session.
    let other = browse(
        &format!("{app_url}/launch?iss={hfs_base}&launch=p10:e10"),
        |u| u.path() == "/app",
    )
    .cookie_header();
    let (_, other_page, _) = get(&format!("{app_url}/app"), &other);
    let other_csrf = csrf_of(&other_page);
    let agent = ureq::AgentBuilder::new().build();
    let started = agent
        .post(&format!("{app_url}/app/jobs"))
        .set("Cookie", &other)
        .set("X-CSRF-Token", &other_csrf)
        .send_bytes(&common::serve::clip(
            &common::repo_path("samples/encounter.flac"),
            5.0,
        ))
        .unwrap()
        .into_json::<serde_json::Value>()
        .unwrap();
    let other_job = started["job"].as_str().unwrap();
    assert_eq!(
        get(&format!("{app_url}/app/jobs/{other_job}"), &other).0,
        200
    );
    assert_eq!(
        get(&format!("{app_url}/app/jobs/{other_job}"), &cookie).0,
        404
    );
    assert_eq!(
        get(&format!("{app_url}/app/review/{other_job}"), &cookie).0,
        404
    );
    assert_eq!(
        get(&format!("{app_url}/app/jobs/{other_job}/audio"), &cookie).0,
        404
    );
    // ... nor can that session edit or sign this patient's note.
    let other_agent = ureq::AgentBuilder::new().build();
    let tried = other_agent
        .post(&format!("{app_url}/app/review/{job}/edits"))
        .set("Cookie", &other)
        .set("X-CSRF-Token", &other_csrf)
        .send_json(json!({"op": "remove", "id": first_id}));
    assert!(
        matches!(tried, Err(ureq::Error::Status(404, _))),
        "{tried:?}"
    );

    // Refusals.
    let (s, page, set) = get(
        &format!("{app_url}/launch?iss=http://127.0.0.1:9/fhir&launch=x"),
        "",
    );
    assert_eq!(s, 400, "{page}");
    assert!(page.contains("not an EHR"), "{page}");
    assert!(set.is_none());
    let (s, _, _) = get(&format!("{app_url}/launch"), "");
    assert_eq!(s, 400);
    let (s, page, set) = get(&format!("{app_url}/callback?state=forged&code=x"), "");
    assert_eq!(s, 400, "{page}");
    assert!(set.is_none(), "no session from a forged state");
    // A callback replayed: the first one starts a session, the second is refused.
    let at_callback = browse(&launch, |u| u.path() == "/callback");
    let (s, _, set) = get(at_callback.url.as_str(), "");
    assert_eq!(s, 303);
    assert!(set.unwrap().starts_with("fhirscribe_session="));
    let (s, page, set) = get(at_callback.url.as_str(), "");
    assert_eq!(s, 400, "{page}");
    assert!(set.is_none(), "a replayed callback starts no session");
    // No session, or a made-up one: signed out.
    assert_eq!(get(&format!("{app_url}/app"), "").0, 401);
    assert_eq!(
        get(&format!("{app_url}/app"), "fhirscribe_session=made-up").0,
        401
    );
    // Sign-out needs the session's CSRF token.
    let (s, _) = post_form(&format!("{app_url}/app/logout"), &cookie, &[]);
    assert_eq!(s, 403);
    let (s, _) = post_form(
        &format!("{app_url}/app/logout"),
        &cookie,
        &[("csrf", "guess")],
    );
    assert_eq!(s, 403);
    let (s, page, _) = get(&format!("{app_url}/app"), &cookie);
    assert_eq!(s, 200, "a refused sign-out leaves the session: {page}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .unwrap()
        .to_owned();
    let (s, _) = post_form(
        &format!("{app_url}/app/logout"),
        &cookie,
        &[("csrf", &csrf)],
    );
    assert_eq!(s, 200);
    assert_eq!(get(&format!("{app_url}/app"), &cookie).0, 401, "signed out");
    // An idle session expires (ui.session_idle_secs = 5).
    let again = browse(&launch, |u| u.path() == "/app").cookie_header();
    assert_eq!(get(&format!("{app_url}/app"), &again).0, 200);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(get(&format!("{app_url}/app"), &again).0, 401, "expired");
    drop(app);
}

/// The EHR's access tokens live 2 s here (HFS refuses them after that): the encounter page
/// still reads the patient from the EHR later, because the session redeems its refresh token.
#[test]
fn an_expired_access_token_is_refreshed_with_the_refresh_token() {
    let port = free_port();
    let app_url = format!("http://127.0.0.1:{port}");
    let hfs_base = format!("http://127.0.0.1:{}", free_port());
    let authz = Authz::start_for_app_with_ttl(
        &hfs_base,
        &format!("{app_url}/callback"),
        Duration::from_secs(2),
    );
    let hfs = Hfs::start(HfsOptions::with_auth(&authz));
    assert_eq!(hfs.base_url(), hfs_base);
    let admin = authz.backend_token("system/*.cruds");
    common::review::seed(
        &hfs_base,
        &admin,
        &[json!({"resourceType": "Patient", "id": "p5", "name": [{"text": "Mary Somerville"}]})],
    );
    let app = spawn_app(AppOptions {
        issuers: vec![authz.issuer().to_string()],
        port: Some(port),
        extra_toml: common::review::app_toml(&hfs_base),
        ..Default::default()
    });
    let cookie = browse(
        &format!("{app_url}/launch?iss={hfs_base}&launch=p5:e5"),
        |u| u.path() == "/app",
    )
    .cookie_header();
    for _ in 0..2 {
        let (s, page, _) = get(&format!("{app_url}/app"), &cookie);
        assert_eq!(s, 200, "{page}");
        assert!(page.contains("Mary Somerville"), "{}", app.logs());
        std::thread::sleep(Duration::from_secs(4));
    }
}

/// `[ui] sign_write = "backend"`: the signed note goes on the EHR's outbox and the service
/// writes it with its own Backend Services client (durable, retried), not the clinician's token.
#[test]
fn with_backend_write_back_the_signed_note_goes_through_the_outbox() {
    let port = free_port();
    let app_url = format!("http://127.0.0.1:{port}");
    let hfs_base = format!("http://127.0.0.1:{}", free_port());
    let authz = Authz::start_for_app(&hfs_base, &format!("{app_url}/callback"));
    let hfs = Hfs::start(HfsOptions::with_auth(&authz));
    assert_eq!(hfs.base_url(), hfs_base);
    let admin = authz.backend_token("system/*.cruds");
    let app = spawn_app(AppOptions {
        issuers: vec![authz.issuer().to_string()],
        port: Some(port),
        extra_toml: format!(
            "{}\n[ehr.smart]\nclient_id = \"{}\"\nprivate_key_file = \"{}\"\nkey_id = \"{}\"\nalg = \"RS384\"\n\n[ui]\nsign_write = \"backend\"\n",
            common::review::app_toml(&hfs_base),
            Authz::BACKEND_CLIENT_ID,
            authz.client_private_key_path().display(),
            authz.kid()
        ),
        ..Default::default()
    });
    let cookie = browse(
        &format!("{app_url}/launch?iss={hfs_base}&launch=p6:e6"),
        |u| u.path() == "/app",
    )
    .cookie_header();
    let (_, page, _) = get(&format!("{app_url}/app"), &cookie);
    let csrf = csrf_of(&page);
    let audio = common::serve::clip(&common::repo_path("samples/encounter.flac"), 30.0);
    let agent = ureq::AgentBuilder::new().build();
    let started: serde_json::Value = agent
        .post(&format!("{app_url}/app/jobs?two_channel=1"))
        .set("Cookie", &cookie)
        .set("X-CSRF-Token", &csrf)
        .send_bytes(&audio)
        .unwrap()
        .into_json()
        .unwrap();
    let job = started["job"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while get(&format!("{app_url}/app/jobs/{job}"), &cookie)
        .1
        .contains("\"QUEUED\"")
        || get(&format!("{app_url}/app/jobs/{job}"), &cookie)
            .1
            .contains("IN_PROGRESS")
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(300));
    }
    let signed: serde_json::Value = agent
        .post(&format!("{app_url}/app/review/{job}/sign"))
        .set("Cookie", &cookie)
        .set("X-CSRF-Token", &csrf)
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(signed["signature"]["state"], "queued", "{signed}");
    let signer = signed["signature"]["by"].as_str().unwrap().to_owned();
    // The outbox delivers it: the note turns final in the EHR.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (s, b) = fhir(
            "GET",
            &format!("{hfs_base}/DocumentReference?encounter=Encounter/e6"),
            Some(&admin),
            None,
        );
        assert_eq!(s, 200, "{b}");
        if b.to_string().contains("\"docStatus\":\"final\"") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{b}\n{}", app.logs());
        std::thread::sleep(Duration::from_millis(500));
    }
    common::review::check_signed_chart(&hfs_base, &admin, "e6", "(none removed)", &signer, &[]);
}
