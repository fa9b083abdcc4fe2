//! Probes, metrics and the OpenAPI document: open routes that reveal no patient data.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::HttpResponse;

use super::State;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// 200 once the models are loaded and recovery ran, the store (the database, for a shared
/// store) takes a write and, on a node that delivers, the delivery worker has run within the
/// last 30 s; 503 naming what is not ready otherwise.
pub async fn readyz(state: State) -> HttpResponse {
    let svc = state.service.clone();
    let mut problems = Vec::new();
    if !state.ready.load(Ordering::SeqCst) {
        problems.push("starting: models or recovery not done");
    }
    if svc.is_stopping() {
        problems.push("shutting down");
    }
    let store = svc.clone();
    let writable = actix_web::web::block(move || store.store().check_writable())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    if !writable {
        problems.push("the store is not writable");
    }
    if svc.settings().delivers
        && !svc.outboxes().is_empty()
        && !svc.delivery_alive(Duration::from_secs(30))
    {
        problems.push("the FHIR delivery worker is not running");
    }
    if problems.is_empty() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not ready", "problems": problems}))
    }
}

pub async fn metrics(state: State) -> HttpResponse {
    let svc = &state.service;
    svc.metrics()
        .gauge_set("fhirscribe_workers_busy", "", svc.busy() as i64);
    // The queue's depth is the store's (the database's when several nodes share it).
    let counter = svc.clone();
    if let Ok(depth) = actix_web::web::block(move || counter.queue_depth()).await {
        svc.metrics()
            .gauge_set("fhirscribe_queue_depth", "", depth as i64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(svc.metrics().render())
}

pub async fn openapi(state: State) -> HttpResponse {
    HttpResponse::Ok().json(crate::api::openapi::document(
        &state.service.settings().public_url,
        &state.paths,
    ))
}
