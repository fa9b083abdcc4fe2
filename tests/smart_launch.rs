//! `smart::launch` against the real SMART authorization server (oidc-provider, `scribe-app`:
//! public client, authorization code + PKCE S256) and HFS as the EHR's FHIR server (whose
//! `.well-known/smart-configuration` names that server). The browser part (login and consent
//! pages) is driven over HTTP with a cookie jar; everything else is the product's code.

mod common;

use std::collections::BTreeMap;

use common::peers::{Authz, Peers};
use fhirscribe::smart::launch::{AppRegistration, LaunchError, Launcher, DEFAULT_SCOPE};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The callback query the authorization server redirects to after login and consent.
fn browser_login(authorize_url: &str) -> BTreeMap<String, String> {
    common::browser::browse(authorize_url, |u| {
        u.as_str().starts_with(Authz::APP_REDIRECT_URI)
    })
    .query()
}

#[test]
fn an_ehr_launch_logs_in_with_pkce_and_gets_the_launch_context() {
    let peers = Peers::start();
    let fhir_base = peers.hfs.base_url();
    let launcher = Launcher::new(
        vec![AppRegistration {
            ehr: "main".into(),
            fhir_base: fhir_base.clone(),
            client_id: Authz::APP_CLIENT_ID.into(),
            redirect_uri: Authz::APP_REDIRECT_URI.into(),
            scope: DEFAULT_SCOPE.into(),
        }],
        reqwest::Client::new(),
    );
    let rt = rt();

    // An EHR launch for patient p7, encounter e7 (the test server's launch ids name them).
    let (url, login) = rt
        .block_on(launcher.begin(&fhir_base, Some("p7:e7")))
        .unwrap();
    assert!(url.starts_with(&peers.authz.authorize_endpoint()), "{url}");
    let callback = browser_login(&url);
    assert_eq!(callback["state"], login.state, "state comes back unchanged");
    let tokens = rt
        .block_on(launcher.complete(&login, &callback["code"]))
        .unwrap();
    assert_eq!(tokens.patient.as_deref(), Some("p7"));
    assert_eq!(tokens.encounter.as_deref(), Some("e7"));
    assert!(tokens.id_token.is_some(), "openid was asked for");
    // The id_token was checked (signature, issuer, audience, expiry): its fhirUser is the
    // signer of notes. A token whose payload was changed does not verify.
    let claims = tokens.id_claims.clone().expect("a verified id_token");
    assert!(
        claims["fhirUser"]
            .as_str()
            .is_some_and(|u| u.starts_with("Practitioner/")),
        "{claims}"
    );
    let jwks: serde_json::Value = ureq::get(&peers.authz.jwks_url())
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let idt = tokens.id_token.clone().unwrap();
    let check = |t: &str| {
        fhirscribe::smart::launch::check_id_token(
            t,
            &jwks,
            "scribe-app",
            Some(peers.authz.issuer()),
        )
    };
    assert!(check(&idt).is_ok());
    let parts: Vec<&str> = idt.split('.').collect();
    let forged_claims = {
        use base64::Engine as _;
        let mut c = claims.clone();
        c["fhirUser"] = serde_json::json!("Practitioner/mallory");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string())
    };
    let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    assert!(matches!(check(&forged), Err(LaunchError::Refused { .. })));
    assert!(
        fhirscribe::smart::launch::check_id_token(&idt, &jwks, "another-app", None).is_err(),
        "an id_token for another client is refused"
    );
    // The token is for the EHR's FHIR server (`aud` = iss) and carries the granted scopes.
    use base64::Engine as _;
    let payload = tokens.access_token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], fhir_base.as_str(), "{claims}");
    assert!(
        claims["scope"]
            .as_str()
            .unwrap()
            .contains("patient/Condition.cu"),
        "{claims}"
    );

    // The refresh token gives a new access token for the same FHIR server and scopes.
    let refreshed = rt
        .block_on(launcher.refresh(
            "main",
            &login.token_endpoint,
            tokens.refresh_token.as_deref().expect("a refresh token"),
        ))
        .unwrap();
    let payload = refreshed.access_token.split('.').nth(1).unwrap_or_else(|| {
        panic!(
            "the refreshed access token is not a JWT: {}",
            refreshed.access_token.len()
        )
    });
    let again: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(again["aud"], fhir_base.as_str(), "{again}");
    assert_eq!(again["scope"], claims["scope"], "{again}");
    assert_eq!(again["patient"], "p7", "the launch context stays: {again}");

    // The same code twice: refused (a replayed callback gets no second session).
    let again = rt.block_on(launcher.complete(&login, &callback["code"]));
    assert!(
        matches!(again, Err(LaunchError::Refused { .. })),
        "{again:?}"
    );

    // A verifier that does not match the challenge: refused.
    let (url, mut login) = rt
        .block_on(launcher.begin(&fhir_base, Some("p7:e7")))
        .unwrap();
    let callback = browser_login(&url);
    login.verifier = fhirscribe::smart::launch::random_token();
    let wrong = rt.block_on(launcher.complete(&login, &callback["code"]));
    assert!(
        matches!(wrong, Err(LaunchError::Refused { .. })),
        "{wrong:?}"
    );

    // A code redeemed without the PKCE verifier: refused by the authorization server.
    let (url, _login) = rt
        .block_on(launcher.begin(&fhir_base, Some("p7:e7")))
        .unwrap();
    let callback = browser_login(&url);
    let bare = ureq::post(&peers.authz.token_endpoint()).send_form(&[
        ("grant_type", "authorization_code"),
        ("code", &callback["code"]),
        ("redirect_uri", Authz::APP_REDIRECT_URI),
        ("client_id", "scribe-app"),
    ]);
    assert!(matches!(bare, Err(ureq::Error::Status(400, _))), "{bare:?}");

    // The app as a confidential client: the code is redeemed with a signed client assertion;
    // without one (a public client's request) the same registration is refused.
    let confidential = AppRegistration {
        ehr: "main".into(),
        fhir_base: fhir_base.clone(),
        client_id: Authz::APP_CONFIDENTIAL_CLIENT_ID.into(),
        redirect_uri: Authz::APP_REDIRECT_URI.into(),
        scope: DEFAULT_SCOPE.into(),
    };
    let signer = fhirscribe::smart::backend::AssertionSigner::new(
        Authz::APP_CONFIDENTIAL_CLIENT_ID,
        peers.authz.kid(),
        "RS384".parse().unwrap(),
        peers.authz.client_private_key_pem().as_bytes(),
    )
    .unwrap();
    let with_key = Launcher::new(vec![confidential.clone()], reqwest::Client::new())
        .with_signer("main", signer);
    let (url, login) = rt
        .block_on(with_key.begin(&fhir_base, Some("p7:e7")))
        .unwrap();
    let callback = browser_login(&url);
    let t = rt
        .block_on(with_key.complete(&login, &callback["code"]))
        .unwrap();
    assert_eq!(t.patient.as_deref(), Some("p7"));
    let without_key = Launcher::new(vec![confidential], reqwest::Client::new());
    let (url, login) = rt
        .block_on(without_key.begin(&fhir_base, Some("p7:e7")))
        .unwrap();
    let callback = browser_login(&url);
    let refused = rt.block_on(without_key.complete(&login, &callback["code"]));
    assert!(
        matches!(refused, Err(LaunchError::Refused { .. })),
        "{refused:?}"
    );

    // An issuer that is not configured: refused before any request.
    let unknown = rt.block_on(launcher.begin("http://127.0.0.1:9/fhir", Some("x")));
    assert!(matches!(unknown, Err(LaunchError::UnknownIssuer { .. })));
}
