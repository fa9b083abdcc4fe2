//! `spawn_app`: the real `fhirscribe serve` binary on a free loopback port, with a config file
//! written for the test, its JSON logs captured, killed on drop; plus small HTTP helpers.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What the test server is configured with.
#[derive(Default, Clone)]
pub struct AppOptions {
    /// `[[auth.issuers]]` issuer URLs (empty: `--insecure-no-auth`).
    pub issuers: Vec<String>,
    /// `[[ehr]]`: (name, FHIR base URL).
    pub ehrs: Vec<(String, String)>,
    /// Extra TOML for `[server]` (lines like `queue_capacity = 1`).
    pub server_toml: String,
    /// Extra top-level TOML (e.g. a `[jobs]` table).
    pub extra_toml: String,
    /// `FHIRSCRIBE_LOG` (default `info`).
    pub log: Option<String>,
    /// A fixed port (default: a free one).
    pub port: Option<u16>,
}

pub struct App {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    opts: AppOptions,
    starts: u32,
}

/// Starts the service and waits until it listens.
pub fn spawn_app(opts: AppOptions) -> App {
    let dir = tempfile::Builder::new()
        .prefix("fhirscribe-serve-")
        .tempdir()
        .expect("temp dir");
    let port = opts.port.unwrap_or_else(super::peers::free_port);
    let mut app = App {
        child: None,
        dir,
        port,
        opts,
        starts: 0,
    };
    app.write_config();
    app.start();
    app
}

impl App {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn media_dir(&self) -> PathBuf {
        self.dir.path().join("media")
    }

    /// Every start's stderr (JSON log lines), concatenated.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                fs::read_to_string(self.dir.path().join(format!("serve-{i}.err")))
                    .unwrap_or_default()
            })
            .collect()
    }

    fn write_config(&self) {
        let mut t = format!(
            "[models]\nwhisper = \"{}\"\nworkers = 1\n\n[server]\nlisten = \"127.0.0.1:{}\"\nstore_dir = \"{}\"\nshutdown_grace_secs = 5\n{}\n\n[jobs]\nmedia_dir = \"{}\"\n\n[auth]\njwks_min_refresh_secs = 1\n",
            super::tiny_model().display(),
            self.port,
            self.store_dir().display(),
            self.opts.server_toml,
            self.media_dir().display(),
        );
        for i in &self.opts.issuers {
            t.push_str(&format!("\n[[auth.issuers]]\nissuer = \"{i}\"\n"));
        }
        for (name, base) in &self.opts.ehrs {
            t.push_str(&format!(
                "\n[[ehr]]\nname = \"{name}\"\nfhir_base = \"{base}\"\n"
            ));
        }
        // `{media_dir}` in extra TOML is this app's media folder.
        t.push_str(
            &self
                .opts
                .extra_toml
                .replace("{media_dir}", &self.media_dir().display().to_string()),
        );
        fs::create_dir_all(self.media_dir()).unwrap();
        fs::write(self.dir.path().join("config.toml"), t).unwrap();
    }

    /// Starts (or restarts) the binary on the same port and store.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.starts += 1;
        let out = self.dir.path().join(format!("serve-{}.out", self.starts));
        let err = self.dir.path().join(format!("serve-{}.err", self.starts));
        let mut cmd = Command::new(super::bin());
        cmd.arg("serve")
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .env("FHIRSCRIBE_LOG", self.opts.log.as_deref().unwrap_or("info"))
            .env_remove("FHIRSCRIBE_CONFIG")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        if self.opts.issuers.is_empty() {
            cmd.arg("--insecure-no-auth");
        }
        self.child = Some(cmd.spawn().expect("spawn fhirscribe serve"));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if fs::read_to_string(&out)
                .unwrap_or_default()
                .contains("fhirscribe listening")
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "fhirscribe serve exited ({status}) before listening:\n{}",
                    fs::read_to_string(&err).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "serve did not start within 120 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit; returns how long it took.
    pub fn terminate(&mut self) -> Duration {
        let t = Instant::now();
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    panic!("serve did not exit within 60 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        t.elapsed()
    }

    /// `(status, headers we look at, JSON body)` of a request.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        request(
            method,
            &self.url(path),
            token,
            body.map(|b| Body::Json(b.clone())),
        )
    }

    pub fn upload(&self, token: Option<&str>, audio: &[u8]) -> Response {
        request(
            "POST",
            &self.url("/v1/media"),
            token,
            Some(Body::Bytes(audio.to_vec())),
        )
    }

    /// Uploads `audio` and starts a job on it; panics unless both succeed.
    pub fn start_job(&self, token: Option<&str>, name: &str, audio: &[u8], ext: Value) -> Value {
        let up = self.upload(token, audio);
        assert_eq!(up.status, 201, "upload: {}", up.body);
        let mut req = job_request(name, up.body["MediaFileUri"].as_str().unwrap());
        if !ext.is_null() {
            req["Extensions"] = ext;
        }
        let r = self.call("POST", "/v1/medical-scribe-jobs", token, Some(&req));
        assert_eq!(r.status, 200, "start {name}: {}", r.body);
        r.body
    }

    /// Polls until the job is COMPLETED or FAILED (panics after `limit`).
    pub fn wait_job(&self, token: Option<&str>, name: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let r = self.call(
                "GET",
                &format!("/v1/medical-scribe-jobs/{name}"),
                token,
                None,
            );
            assert_eq!(r.status, 200, "get {name}: {}", r.body);
            let status = r.body["MedicalScribeJob"]["MedicalScribeJobStatus"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if status == "COMPLETED" || status == "FAILED" {
                return r.body;
            }
            assert!(
                Instant::now() < deadline,
                "job {name} still {status} after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl App {
    /// Waits for each named job to end by `deadline` and asserts it COMPLETED.
    pub fn wait_all_completed(&self, names: &[String], deadline: Instant) {
        for name in names {
            let left = deadline.saturating_duration_since(Instant::now());
            let done = self.wait_job(None, name, left);
            assert_eq!(
                done["MedicalScribeJob"]["MedicalScribeJobStatus"], "COMPLETED",
                "{done}"
            );
        }
    }

    /// Polls until the job's Bundle is DELIVERED (panics at `deadline`).
    pub fn wait_delivered(&self, token: Option<&str>, name: &str, deadline: Instant) {
        loop {
            let g = self.call(
                "GET",
                &format!("/v1/medical-scribe-jobs/{name}"),
                token,
                None,
            );
            if g.body["MedicalScribeJob"]["Extensions"]["FhirDelivery"]["State"] == "DELIVERED" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} not delivered: {}",
                g.body
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// How many DocumentReferences the job's stored Bundle holds.
    pub fn bundle_doc_refs(&self, token: Option<&str>, name: &str) -> usize {
        let b = self.call(
            "GET",
            &format!("/v1/medical-scribe-jobs/{name}/fhir-bundle.json"),
            token,
            None,
        );
        assert_eq!(b.status, 200, "{}", b.body);
        b.body["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "DocumentReference")
            .count()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.kill();
    }
}

pub enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

pub struct Response {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub www_authenticate: Option<String>,
    pub error_type: Option<String>,
    /// Every header, names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP request with ureq; any status is returned, not raised.
pub fn request(method: &str, url: &str, token: Option<&str>, body: Option<Body>) -> Response {
    request_with(method, url, token, body, &[])
}

/// [`request`] with extra headers.
pub fn request_with(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Body>,
    headers: &[(&str, &str)],
) -> Response {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let res = match body {
        Some(Body::Json(v)) => req
            .set("Content-Type", "application/json")
            .send_string(&v.to_string()),
        Some(Body::Bytes(b)) => req
            .set("Content-Type", "application/octet-stream")
            .send_bytes(&b),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| {
            let v = resp.header(&n)?.to_owned();
            Some((n.to_ascii_lowercase(), v))
        })
        .collect();
    let www_authenticate = resp.header("WWW-Authenticate").map(str::to_owned);
    let error_type = resp.header("x-amzn-ErrorType").map(str::to_owned);
    let text = resp.into_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Response {
        status,
        body,
        text,
        www_authenticate,
        error_type,
        headers,
    }
}

/// A valid `StartMedicalScribeJob` body for one-channel audio.
pub fn job_request(name: &str, media_uri: &str) -> Value {
    json!({
        "MedicalScribeJobName": name,
        "Media": {"MediaFileUri": media_uri},
        "OutputBucketName": "fhirscribe-outputs",
        "Settings": {"ShowSpeakerLabels": true, "MaxSpeakerLabels": 2}
    })
}

/// The first `secs` seconds of a recording, as 16-bit WAV bytes.
pub fn clip(path: &Path, secs: f64) -> Vec<u8> {
    let bytes = fs::read(path).unwrap();
    let ext = path.extension().and_then(|e| e.to_str());
    let pcm = fhirscribe::audio::decode(&bytes, ext, &Default::default()).unwrap();
    // Decoded audio is 16 kHz.
    let n = ((secs * 16_000.0) as usize).min(pcm.frames());
    let channels: Vec<Vec<f32>> = pcm.channels.iter().map(|c| c[..n].to_vec()).collect();
    fhirscribe::audio::encode_wav(&channels, 16_000)
}
