//! Start-up and shutdown of `fhirscribe serve`: config → store, engine, outboxes, job service
//! (recovered from the store), worker threads, delivery loop, HTTP server; SIGTERM/SIGINT →
//! stop accepting, let running jobs finish within the grace period, flush, exit.
//!
//! A job still running when the grace period ends stays IN_PROGRESS in the store and runs
//! again at the next start (its first run wrote nothing: outputs are written in the same
//! transaction that completes a job).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpRequest, HttpServer};
use tracing::Instrument;

use super::auth::Auth;
use super::error::ApiError;
use super::routes::{self, AppState};
use crate::config::{Config, EhrConfig, ServeMode, StoreUrl};
use crate::delivery::RetryPolicy;
use crate::engine::Engine;
use crate::fhir::client::FhirClient;
use crate::jobs::service::{EhrOutbox, JobService, ServiceSettings};
use crate::metrics::Metrics;
use crate::smart::inbound::{IssuerSettings, Verifier};
use crate::smart::{BackendClient, BackendConfig};
use crate::store::{JobStore, Outbox, SledJobStore, StoreError};

/// Flags of `fhirscribe serve` that are not in the config file.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Overrides `server.listen`.
    pub listen: Option<String>,
    /// Serve without authentication (development only; logged as a warning).
    pub insecure_no_auth: bool,
    /// Overrides `server.store_url`.
    pub store_url: Option<String>,
    /// Overrides `server.mode`.
    pub mode: Option<ServeMode>,
}

impl ServeOptions {
    /// Puts the flags that override configuration keys into `cfg` (before it is checked).
    pub fn apply(&self, cfg: &mut Config) {
        if let Some(u) = &self.store_url {
            cfg.server.store_url = Some(u.clone());
        }
        if let Some(m) = self.mode {
            cfg.server.mode = m;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("loading models: {0}")]
    Engine(#[from] crate::engine::EngineError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Checks what `serve` would check before loading models (`--check-config`).
pub fn check(cfg: &Config, opts: &ServeOptions) -> Result<(), ServeError> {
    verifier(cfg, opts)?;
    aws_endpoint(cfg)?;
    for e in &cfg.ehr {
        backend_config(e)?;
    }
    Ok(())
}

fn verifier(cfg: &Config, opts: &ServeOptions) -> Result<Option<Verifier>, ServeError> {
    if cfg.auth.issuers.is_empty() {
        if opts.insecure_no_auth {
            return Ok(None);
        }
        return Err(ServeError::Config(
            "no token issuer is configured ([[auth.issuers]]): every route needs a bearer token; \
             configure an issuer, or pass --insecure-no-auth for a development server"
                .into(),
        ));
    }
    if opts.insecure_no_auth {
        return Err(ServeError::Config(
            "--insecure-no-auth with [[auth.issuers]] configured: choose one".into(),
        ));
    }
    let issuers = cfg
        .auth
        .issuers
        .iter()
        .map(|i| {
            let algorithms = i
                .algorithms
                .iter()
                .map(|a| {
                    a.parse()
                        .map_err(|_| ServeError::Config(format!("auth.issuers.algorithms: {a}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(IssuerSettings {
                issuer: i.issuer.clone(),
                algorithms,
                jwks_uri: i.jwks_uri.clone(),
            })
        })
        .collect::<Result<Vec<_>, ServeError>>()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| ServeError::Config(format!("HTTP client: {e}")))?;
    let v = Verifier::new(issuers, cfg.public_url(), cfg.auth.leeway_secs, http)
        .map_err(|e| ServeError::Config(format!("auth: {e}")))?
        .with_min_refresh(Duration::from_secs(cfg.auth.jwks_min_refresh_secs))
        .with_audience(fhir_base(cfg));
    Ok(Some(v))
}

/// The FHIR base URL clients use.
fn fhir_base(cfg: &Config) -> String {
    format!(
        "{}{}",
        cfg.public_url(),
        cfg.fhir_api.base_path.trim_end_matches('/')
    )
}

/// The first issuer's token endpoint from its discovery document (best effort: a server that
/// cannot be reached at start-up leaves it unpublished, and says so).
fn discover_token_endpoint(cfg: &Config) -> Option<String> {
    let issuer = cfg
        .auth
        .issuers
        .first()?
        .issuer
        .trim_end_matches('/')
        .to_owned();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .ok()?;
    for doc in ["openid-configuration", "smart-configuration"] {
        let url = format!("{issuer}/.well-known/{doc}");
        if let Ok(r) = http.get(&url).send().and_then(|r| r.error_for_status()) {
            if let Ok(v) = r.json::<serde_json::Value>() {
                if let Some(t) = v["token_endpoint"].as_str() {
                    return Some(t.to_owned());
                }
            }
        }
    }
    tracing::warn!("the issuer's token endpoint could not be discovered: set fhir_api.token_endpoint to publish it");
    None
}

/// The review app, when an EHR has `[ehr.app]`.
fn ui_endpoint(cfg: &Config, db: &sled::Db) -> Result<Option<routes::ui::UiEndpoint>, ServeError> {
    let public = cfg.public_url();
    let apps: Vec<crate::smart::launch::AppRegistration> = cfg
        .ehr
        .iter()
        .filter_map(|e| {
            let a = e.app.as_ref()?;
            Some(crate::smart::launch::AppRegistration {
                ehr: e.name.clone(),
                fhir_base: e.fhir_base.clone(),
                client_id: a.client_id.clone(),
                redirect_uri: a
                    .redirect_uri
                    .clone()
                    .unwrap_or_else(|| format!("{public}/callback")),
                scope: a
                    .scope
                    .clone()
                    .unwrap_or_else(|| crate::smart::launch::DEFAULT_SCOPE.to_owned()),
            })
        })
        .collect();
    if apps.is_empty() {
        return Ok(None);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ServeError::Config(format!("HTTP client: {e}")))?;
    let limits = crate::store::sessions::SessionLimits {
        idle_ms: cfg.ui.session_idle_secs * 1000,
        max_ms: cfg.ui.session_max_secs * 1000,
        login_ms: crate::smart::launch::LOGIN_TTL.as_millis() as u64,
    };
    let mut launcher = crate::smart::launch::Launcher::new(apps, http.clone());
    for e in &cfg.ehr {
        let Some(a) = &e.app else { continue };
        let (file, kid) = match (&a.private_key_file, &a.key_id) {
            (Some(f), Some(k)) => (f, k),
            (None, None) => continue,
            _ => {
                return Err(ServeError::Config(format!(
                "ehr {}: ehr.app needs both private_key_file and key_id for a confidential client",
                e.name
            )))
            }
        };
        let pem = std::fs::read(file).map_err(|err| {
            ServeError::Config(format!(
                "ehr {}: cannot read app.private_key_file {}: {err}",
                e.name,
                file.display()
            ))
        })?;
        let alg = a
            .alg
            .as_deref()
            .unwrap_or("RS384")
            .parse()
            .map_err(|m: String| ServeError::Config(format!("ehr {}: {m}", e.name)))?;
        let signer = crate::smart::backend::AssertionSigner::new(&a.client_id, kid, alg, &pem)
            .map_err(|err| ServeError::Config(format!("ehr {}: app key: {err}", e.name)))?;
        launcher = launcher.with_signer(&e.name, signer);
    }
    Ok(Some(routes::ui::UiEndpoint {
        launcher,
        sessions: crate::store::sessions::SessionStore::open(db, limits)?,
        secure_cookie: public.starts_with("https://"),
        ehrs: cfg
            .ehr
            .iter()
            .map(|e| (e.name.clone(), e.fhir_base.clone()))
            .collect(),
        http,
        sign_write: cfg.ui.sign_write,
        refresh_lock: tokio::sync::Mutex::new(()),
    }))
}

/// The FHIR read API and exports, unless switched off.
fn fhir_endpoint(
    cfg: &Config,
    db: &sled::Db,
    resources: crate::store::ResourceStore,
) -> Result<Option<routes::fhir::FhirEndpoint>, ServeError> {
    let f = &cfg.fhir_api;
    if !f.enabled {
        return Ok(None);
    }
    let base = fhir_base(cfg);
    let settings = crate::fhir_api::ExportSettings {
        dir: f
            .export_dir
            .clone()
            .unwrap_or_else(|| cfg.store_dir().join("exports")),
        groups: f
            .groups
            .iter()
            .map(|g| (g.id.clone(), g.patients.clone()))
            .collect(),
        retention: Duration::from_secs(f.export_retention_hours * 3600),
        max_running: f.max_running_exports.max(1),
        base: base.clone(),
    };
    let exports = crate::fhir_api::Exports::new(db, resources, settings)?;
    let restarted = exports.recover()?;
    if restarted > 0 {
        tracing::info!(restarted, "exports cut off by a stop run again");
    }
    let token_endpoint = f
        .token_endpoint
        .clone()
        .or_else(|| discover_token_endpoint(cfg));
    Ok(Some(routes::fhir::FhirEndpoint {
        base,
        exports,
        token_endpoint,
        authorization_endpoint: f.authorization_endpoint.clone(),
    }))
}

fn aws_endpoint(cfg: &Config) -> Result<Option<routes::AwsEndpoint>, ServeError> {
    let a = &cfg.aws_api;
    if a.access_keys.is_empty() {
        return Ok(None);
    }
    let keys = a
        .access_keys
        .iter()
        .map(|k| {
            Ok(crate::aws::AccessKey {
                id: k.id.clone(),
                secret: k
                    .resolve_secret()
                    .map_err(|e| ServeError::Config(e.to_string()))?,
                scopes: k.scopes.clone(),
            })
        })
        .collect::<Result<Vec<_>, ServeError>>()?;
    Ok(Some(routes::AwsEndpoint {
        verifier: crate::aws::SigV4Verifier::new(keys, Duration::from_secs(a.max_skew_secs)),
        s3: a
            .s3
            .iter()
            .map(|m| {
                let base = match (&m.dir, &m.url) {
                    (Some(d), _) => {
                        format!("file://{}/", d.display().to_string().trim_end_matches('/'))
                    }
                    (None, Some(u)) => format!("{}/", u.trim_end_matches('/')),
                    (None, None) => String::new(),
                };
                (m.bucket.clone(), base)
            })
            .collect(),
    }))
}

fn backend_config(e: &EhrConfig) -> Result<Option<BackendConfig>, ServeError> {
    let Some(s) = &e.smart else {
        return Ok(None);
    };
    let pem = std::fs::read(&s.private_key_file).map_err(|err| {
        ServeError::Config(format!(
            "ehr {}: cannot read smart.private_key_file {}: {err}",
            e.name,
            s.private_key_file.display()
        ))
    })?;
    Ok(Some(BackendConfig {
        client_id: s.client_id.clone(),
        key_id: s.key_id.clone(),
        alg: s
            .alg
            .parse()
            .map_err(|m: String| ServeError::Config(format!("ehr {}: {m}", e.name)))?,
        private_key_pem: pem,
        scope: s
            .scope
            .clone()
            .unwrap_or_else(|| crate::smart::backend::DEFAULT_SCOPE.to_string()),
        token_endpoint: s.token_endpoint.clone(),
    }))
}

/// Gives every request an id (also sent back as `x-request-id`) and a span carrying it, so
/// every log line of the request names it; logs the outcome without any body or query.
async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let span =
        tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route);
    let t = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            ms = t.elapsed().as_millis() as u64,
            "request done"
        )
    });
    Ok(res)
}

async fn no_route(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route {} {}",
        req.method(),
        req.path()
    )))
}

/// The delivery thread: [`crate::delivery::run_all`] over every EHR's outbox until `stop`,
/// counting outcomes and beating the readiness heartbeat.
fn spawn_delivery(
    service: Arc<JobService>,
    ehrs: Vec<(EhrConfig, Option<BackendConfig>, Outbox)>,
    policy: RetryPolicy,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("fhir-delivery".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the delivery runtime");
                    return;
                }
            };
            rt.block_on(async move {
                let mut targets = Vec::new();
                for (e, smart, outbox) in ehrs {
                    let http = reqwest::Client::builder()
                        .timeout(Duration::from_secs(e.timeout_secs))
                        .build()
                        .expect("HTTP client");
                    let auth = match smart.map(|c| BackendClient::new(c, &e.fhir_base, http.clone())) {
                        Some(Ok(a)) => Some(a),
                        Some(Err(err)) => {
                            tracing::error!(ehr = %e.name, error = %err, "EHR SMART client unusable; its Bundles stay queued");
                            continue;
                        }
                        None => None,
                    };
                    targets.push(crate::delivery::Target {
                        name: e.name.clone(),
                        outbox,
                        client: FhirClient::new(&e.fhir_base, http, auth),
                    });
                }
                let metrics = service.metrics().clone();
                let on_pass = |_: &str, r: &crate::delivery::PassReport| {
                    service.delivery_heartbeat();
                    for (label, n) in [
                        ("delivered", r.delivered),
                        ("retrying", r.retrying),
                        ("dead_letter", r.dead),
                        ("superseded", r.superseded),
                    ] {
                        metrics.add("fhirscribe_deliveries_total", format!("outcome=\"{label}\""), n as u64);
                    }
                };
                crate::delivery::run_all(targets, policy, stop, on_pass).await;
            });
        })
        .expect("spawn delivery thread")
}

/// Runs the service until SIGTERM or SIGINT.
pub fn run(cfg: Config, opts: ServeOptions) -> Result<(), ServeError> {
    let listen = opts
        .listen
        .clone()
        .unwrap_or_else(|| cfg.server.listen.clone());
    let mut cfg = cfg;
    if cfg.server.public_url.is_none() {
        cfg.server.listen = listen.clone();
    }
    let verifier = verifier(&cfg, &opts)?;
    if verifier.is_none() {
        tracing::warn!("authentication is OFF (--insecure-no-auth): anyone who can reach this port can read every job");
    }
    let mut ehrs = Vec::new();
    for e in &cfg.ehr {
        ehrs.push((e.clone(), backend_config(e)?));
    }
    let mode = cfg.server.mode;
    let store_url = cfg.store_url().map_err(ServeError::Config)?;
    // The sled folder holds the whole store, or (PostgreSQL) this process's own state.
    let store_dir = cfg.store_dir();
    std::fs::create_dir_all(&store_dir)?;
    let db = crate::store::open_db_with_cache(&store_dir, cfg.server.store_cache_mib << 20)?;
    let (store, pg): (Arc<dyn JobStore>, _) = match &store_url {
        StoreUrl::Sled(_) => (Arc::new(SledJobStore::in_db(&db)?), None),
        StoreUrl::Postgres(url) => {
            let pg = crate::store::pg::PgJobStore::connect_with(
                url,
                cfg.server.store_pool_size,
                cfg.server.store_ca_file.as_deref(),
            )?;
            (Arc::new(pg.clone()), Some(pg))
        }
    };
    tracing::info!(store = %store_url.redacted(), mode = ?mode, "store opened");
    let mut outboxes = BTreeMap::new();
    let mut delivery = Vec::new();
    let mut longest_timeout = Duration::from_secs(1);
    for (e, smart) in ehrs {
        longest_timeout = longest_timeout.max(Duration::from_secs(e.timeout_secs));
        let outbox = match &pg {
            Some(pg) => pg.outbox(&e.name),
            None => Outbox::in_db_named(&db, &e.name)?,
        };
        outboxes.insert(
            e.name.clone(),
            EhrOutbox {
                outbox: outbox.clone(),
                write_back: e.write_back,
            },
        );
        delivery.push((e, smart, outbox));
    }
    let t = Instant::now();
    // An API-only process validates requests with the engine's settings but runs no job: one
    // set of models is enough.
    cfg.models.workers = Some(match mode {
        ServeMode::Api => 1,
        _ => cfg.service_workers(),
    });
    let engine = Arc::new(Engine::load(&cfg)?);
    tracing::info!(
        secs = t.elapsed().as_secs_f64(),
        workers = engine.workers(),
        "models loaded"
    );
    let metrics = Arc::new(Metrics::default());
    let settings = ServiceSettings {
        public_url: cfg.public_url(),
        queue_capacity: cfg.server.queue_capacity,
        max_jobs: cfg.server.max_jobs,
        retain_audio: cfg.server.retain_audio,
        max_upload_bytes: cfg.server.max_upload_bytes,
        node: cfg
            .server
            .node_name
            .clone()
            .unwrap_or_else(crate::jobs::service::default_node_name),
        job_lease: Duration::from_secs(cfg.server.job_lease_secs),
        delivers: mode != ServeMode::Api,
    };
    let resources = crate::store::ResourceStore::open(&db, &store_dir.join("fhir-resources"))?;
    let fhir = fhir_endpoint(&cfg, &db, resources.clone())?;
    let ui = ui_endpoint(&cfg, &db)?;
    let service = JobService::new(
        engine,
        store,
        outboxes,
        resources,
        crate::store::reviews::ReviewStore::open(&db)?,
        settings,
        metrics.clone(),
    );
    let recovered = service.recover()?;
    tracing::info!(queued = recovered, node = %service.settings().node, "jobs recovered from the store");
    let workers = match mode {
        ServeMode::Api => Vec::new(),
        _ => service.spawn_workers(),
    };
    // A process that serves the FHIR read API follows what the other processes complete and
    // delete (a shared store), so its index serves every node's jobs.
    if pg.is_some() && mode != ServeMode::Worker {
        let svc = service.clone();
        std::thread::Builder::new()
            .name("store-follower".into())
            .spawn(move || {
                let mut cursor = 0;
                while !svc.is_stopping() {
                    match svc.follow_store(&mut cursor) {
                        Ok(n) if n > 0 => continue,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "following the store failed; retrying")
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
            .expect("spawn store follower");
    }
    let (stop_delivery, stop_rx) = tokio::sync::watch::channel(false);
    let policy = RetryPolicy::for_timeout(longest_timeout);
    let delivery_thread = match mode {
        ServeMode::Api => None,
        _ => Some(spawn_delivery(service.clone(), delivery, policy, stop_rx)),
    };

    let aws = aws_endpoint(&cfg)?;
    let paths = routes::Paths {
        aws: cfg.aws_api.path.clone(),
        fhir: cfg.fhir_api.base_path.trim_end_matches('/').to_owned(),
    };
    let state = web::Data::new(AppState {
        service: service.clone(),
        auth: Auth::new(verifier, cfg.server.rate_limit_per_minute, metrics),
        body_timeout: Duration::from_secs(cfg.server.request_timeout_secs),
        max_upload_bytes: cfg.server.max_upload_bytes,
        ready: AtomicBool::new(true),
        aws,
        fhir,
        ui,
        paths: paths.clone(),
    });
    let ops_only = mode == ServeMode::Worker;
    let grace = Duration::from_secs(cfg.server.shutdown_grace_secs);
    let http_workers = cfg.server.http_workers;
    let request_timeout = Duration::from_secs(cfg.server.request_timeout_secs);

    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(from_fn(request_span))
                .configure(|c| {
                    if ops_only {
                        routes::configure_ops(c, &paths)
                    } else {
                        routes::configure(c, &paths)
                    }
                })
                .default_service(web::to(no_route))
        })
        .workers(http_workers)
        .client_request_timeout(request_timeout)
        .shutdown_timeout(grace.as_secs().max(1))
        .disable_signals()
        .bind(&listen)
        .map_err(|source| ServeError::Bind {
            addr: listen.clone(),
            source,
        })?;
        let addrs = server.addrs();
        let server = server.run();
        let handle = server.handle();
        for a in &addrs {
            // The one line on stdout: scripts and tests wait for it.
            println!("fhirscribe listening http://{a}");
        }
        tracing::info!(addrs = ?addrs, "listening");
        let signals = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            }
            Ok::<(), std::io::Error>(())
        };
        let server_task = actix_web::rt::spawn(server);
        signals.await?;
        service.stop();
        handle.stop(true).await;
        let _ = server_task.await;
        let deadline = Instant::now() + grace;
        while !workers.iter().all(|w| w.is_finished()) && Instant::now() < deadline {
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        let unfinished = workers.iter().filter(|w| !w.is_finished()).count();
        if unfinished > 0 {
            tracing::warn!(
                unfinished,
                "grace period over: running jobs will run again at the next start"
            );
        }
        let _ = stop_delivery.send(true);
        if let Some(d) = delivery_thread {
            let _ = actix_web::rt::task::spawn_blocking(move || d.join()).await;
        }
        db.flush_async().await.map_err(StoreError::from)?;
        tracing::info!("stopped");
        Ok(())
    })
}
