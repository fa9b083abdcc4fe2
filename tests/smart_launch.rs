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

/// Follows the authorization server's pages as a user would (log in as `alice`, consent) until
/// it redirects to the app's callback; returns the callback's query.
fn browser_login(authorize_url: &str) -> BTreeMap<String, String> {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut next = (
        String::from("GET"),
        authorize_url.to_owned(),
        Vec::<(String, String)>::new(),
    );
    for _ in 0..12 {
        let (method, url, form) = next.clone();
        let cookie = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = agent.request(&method, &url).set("Cookie", &cookie);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let resp = match if method == "POST" {
            req.send_form(&pairs)
        } else {
            req.call()
        } {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        for c in resp.all("set-cookie") {
            let pair = c.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                cookies.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        if let Some(loc) = resp.header("location") {
            let target = reqwest::Url::parse(&url).unwrap().join(loc).unwrap();
            if target.as_str().starts_with(Authz::APP_REDIRECT_URI) {
                return target.query_pairs().into_owned().collect();
            }
            next = ("GET".into(), target.to_string(), Vec::new());
            continue;
        }
        let status = resp.status();
        let html = resp.into_string().unwrap_or_default();
        assert_eq!(status, 200, "{url}: {html}");
        // The page's form: its action and hidden fields, plus the login fields if it asks.
        let action = html
            .split("action=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no form on {url}: {html}"));
        let mut fields = Vec::new();
        for input in html.split("<input").skip(1) {
            let attr = |name: &str| {
                input
                    .split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .map(str::to_owned)
            };
            match (attr("name"), attr("type").as_deref()) {
                (Some(n), _) if n == "login" => fields.push((n, "alice".to_owned())),
                (Some(n), _) if n == "password" => fields.push((n, "any".to_owned())),
                (Some(n), Some("hidden")) => fields.push((n, attr("value").unwrap_or_default())),
                _ => {}
            }
        }
        let target = reqwest::Url::parse(&url).unwrap().join(action).unwrap();
        next = ("POST".into(), target.to_string(), fields);
    }
    panic!("the login did not reach the callback");
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

    // An issuer that is not configured: refused before any request.
    let unknown = rt.block_on(launcher.begin("http://127.0.0.1:9/fhir", Some("x")));
    assert!(matches!(unknown, Err(LaunchError::UnknownIssuer { .. })));
}
