//! One delivery attempt of a transaction Bundle to a FHIR server, classified into what the
//! outbox should do next. Knows HTTP and FHIR, not the outbox.
//!
//! Policy: 2xx → delivered; 401 → get a new token and try once more; 429 → retry after the
//! server's `Retry-After`; 408, 5xx, timeouts and connection errors → retry with backoff; any
//! other 4xx → dead letter with the server's OperationOutcome (sending it again cannot help).

use std::time::Duration;

use fhir_sdk::r4b::resources::{Bundle, OperationOutcome};
use serde_json::Value;

use crate::smart::backend::{without_url, BackendClient};

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered {
        status: u16,
        /// `response.location` of each entry.
        locations: Vec<String>,
    },
    /// Worth trying again; `after` is the server's Retry-After when it gave one.
    Retry {
        status: Option<u16>,
        reason: String,
        after: Option<Duration>,
    },
    /// Will not succeed by repeating it.
    Dead {
        status: Option<u16>,
        reason: String,
        outcome: Option<Value>,
    },
}

/// POSTs transaction Bundles to one FHIR base URL, with SMART Backend Services auth or none.
pub struct FhirClient {
    base: String,
    http: reqwest::Client,
    auth: Option<BackendClient>,
    /// A token someone else obtained (the clinician's, for the review app's sign).
    bearer: Option<String>,
}

impl FhirClient {
    pub fn new(base: &str, http: reqwest::Client, auth: Option<BackendClient>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            auth,
            bearer: None,
        }
    }

    /// Writes with a token obtained elsewhere (the signed note goes with the clinician's own
    /// token, so the EHR checks the clinician's scopes and records them as its author).
    pub fn with_bearer(base: &str, http: reqwest::Client, token: &str) -> Self {
        Self {
            bearer: Some(token.to_owned()),
            ..Self::new(base, http, None)
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One attempt (with at most one token refresh on 401).
    pub async fn post_transaction(&self, bundle: &Value) -> Attempt {
        let mut refreshed = false;
        loop {
            let mut req = self
                .http
                .post(format!("{}/", self.base))
                .header("Content-Type", "application/fhir+json")
                .header("Accept", "application/fhir+json")
                .json(bundle);
            if let Some(t) = &self.bearer {
                req = req.bearer_auth(t);
            }
            if let Some(auth) = &self.auth {
                match auth.token().await {
                    Ok(t) => req = req.bearer_auth(t),
                    Err(e) if e.is_transient() => {
                        return Attempt::Retry {
                            status: None,
                            reason: e.to_string(),
                            after: None,
                        }
                    }
                    Err(e) => {
                        return Attempt::Dead {
                            status: None,
                            reason: e.to_string(),
                            outcome: None,
                        }
                    }
                }
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    return Attempt::Retry {
                        status: None,
                        reason: format!("FHIR server: {}", without_url(&e)),
                        after: None,
                    }
                }
            };
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let body: Option<Value> = resp.json().await.ok();
            match status {
                200..=299 => {
                    return match body.as_ref().map(transaction_response) {
                        Some(Ok(locations)) => Attempt::Delivered { status, locations },
                        Some(Err(reason)) => Attempt::Dead {
                            status: Some(status),
                            reason,
                            outcome: body,
                        },
                        None => Attempt::Dead {
                            status: Some(status),
                            reason: "the FHIR server answered 2xx without a Bundle".into(),
                            outcome: None,
                        },
                    };
                }
                401 if !refreshed && self.auth.is_some() => {
                    if let Some(a) = &self.auth {
                        a.invalidate();
                    }
                    refreshed = true;
                    tracing::info!("FHIR server answered 401; retrying once with a new token");
                    continue;
                }
                429 => {
                    return Attempt::Retry {
                        status: Some(status),
                        reason: "HTTP 429 Too Many Requests".into(),
                        after: retry_after,
                    }
                }
                408 | 500..=599 => {
                    return Attempt::Retry {
                        status: Some(status),
                        reason: format!("HTTP {status}{}", outcome_summary(body.as_ref())),
                        after: retry_after,
                    }
                }
                _ => {
                    let reason = match status {
                        401 if self.bearer.is_some() => {
                            "HTTP 401: the FHIR server rejected the clinician's access token"
                                .to_string()
                        }
                        401 if self.auth.is_none() => {
                            "HTTP 401: the FHIR server requires authorization".to_string()
                        }
                        401 => "HTTP 401: the FHIR server rejected our access token".to_string(),
                        403 => {
                            "HTTP 403: the access token lacks the scope to write these resources"
                                .to_string()
                        }
                        _ => format!("HTTP {status}"),
                    };
                    return Attempt::Dead {
                        status: Some(status),
                        reason: format!("{reason}{}", outcome_summary(body.as_ref())),
                        outcome: body.filter(|b| b["resourceType"] == "OperationOutcome"),
                    };
                }
            }
        }
    }
}

impl FhirClient {
    /// Writes a transaction Bundle's entries one request at a time, for servers that refuse
    /// transactions (and conditional writes) to the token at hand: SMART patient-scoped tokens
    /// may often write single resources only. `known` maps `fullUrl` → `Type/id` of what the
    /// server already holds (the draft's delivery, an earlier attempt) and gains every write:
    /// - an update (`PUT`) goes to its known id, else to the entry's own `urn:uuid:` as a
    ///   client-assigned id;
    /// - a create (`POST`) already known is not sent again; else it is a plain create (a
    ///   patient-scoped token may not run the conditional create's search).
    ///
    /// So a write that stops half way is finished, not duplicated, by running it again with
    /// the same map. Entries go in dependency order, each in-Bundle reference replaced by its
    /// target's `Type/id`. Not atomic: use [`FhirClient::post_transaction`] where allowed.
    pub async fn write_entries(
        &self,
        bundle: &Value,
        known: &mut std::collections::HashMap<String, String>,
    ) -> Attempt {
        let mut pending: Vec<Value> = bundle["entry"].as_array().cloned().unwrap_or_default();
        let mut resolved: std::collections::HashMap<String, String> = Default::default();
        let mut locations = Vec::new();
        while !pending.is_empty() {
            // The first entry whose in-Bundle references are all resolved.
            let ready = pending.iter().position(|e| {
                let mut refs = Vec::new();
                urn_references(&e["resource"], &mut refs);
                refs.iter().all(|r| resolved.contains_key(r))
            });
            let Some(i) = ready else {
                return Attempt::Dead {
                    status: None,
                    reason: "the Bundle's references form a cycle".into(),
                    outcome: None,
                };
            };
            let mut entry = pending.remove(i);
            resolve_references(&mut entry["resource"], &resolved);
            let full = entry["fullUrl"].as_str().unwrap_or_default().to_owned();
            let ty = entry["resource"]["resourceType"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let create = entry["request"]["method"] == "POST";
            let (method, url) = match (known.get(&full), create) {
                (Some(t), true) => {
                    // Created by an earlier attempt or delivery: only its id is needed.
                    resolved.insert(full, t.clone());
                    locations.push(t.clone());
                    continue;
                }
                (Some(t), false) => ("PUT", t.clone()),
                (None, true) => ("POST", ty.clone()),
                (None, false) => match full.strip_prefix("urn:uuid:") {
                    Some(id) => ("PUT", format!("{ty}/{id}")),
                    None => {
                        return Attempt::Dead {
                            status: None,
                            reason: format!("a {ty} entry has no urn:uuid fullUrl to write it by"),
                            outcome: None,
                        }
                    }
                },
            };
            if let Some(id) = url.split('/').nth(1) {
                entry["resource"]["id"] = Value::String(id.to_owned());
            }
            let mut req = match method {
                "PUT" => self.http.put(format!("{}/{url}", self.base)),
                _ => self.http.post(format!("{}/{url}", self.base)),
            }
            .header("Content-Type", "application/fhir+json")
            .header("Accept", "application/fhir+json")
            .json(&entry["resource"]);
            if let Some(t) = &self.bearer {
                req = req.bearer_auth(t);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    return Attempt::Retry {
                        status: None,
                        reason: format!("FHIR server: {}", without_url(&e)),
                        after: None,
                    }
                }
            };
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Option<Value> = resp.json().await.ok();
            if !(200..300).contains(&status) {
                let reason = format!(
                    "HTTP {status} writing a {ty}{}",
                    outcome_summary(body.as_ref())
                );
                return if status == 408 || status == 429 || status >= 500 {
                    Attempt::Retry {
                        status: Some(status),
                        reason,
                        after: None,
                    }
                } else {
                    Attempt::Dead {
                        status: Some(status),
                        reason,
                        outcome: body.filter(|b| b["resourceType"] == "OperationOutcome"),
                    }
                };
            }
            // `Type/id` from the body, else from Location (absolute or relative).
            let local = body
                .as_ref()
                .and_then(|b| {
                    Some(format!(
                        "{}/{}",
                        b["resourceType"].as_str()?,
                        b["id"].as_str()?
                    ))
                })
                .or_else(|| {
                    let l = location.as_deref()?;
                    let l = l
                        .strip_prefix(&self.base)
                        .unwrap_or(l)
                        .trim_start_matches('/');
                    let mut parts = l.split('/');
                    Some(format!("{}/{}", parts.next()?, parts.next()?))
                })
                .unwrap_or(url);
            known.insert(full.clone(), local.clone());
            resolved.insert(full, local.clone());
            locations.push(location.unwrap_or(local));
        }
        Attempt::Delivered {
            status: 200,
            locations,
        }
    }
}

/// Every `urn:uuid:` reference inside `v`.
fn urn_references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("reference").and_then(Value::as_str) {
                if r.starts_with("urn:uuid:") {
                    out.push(r.to_owned());
                }
            }
            o.values().for_each(|x| urn_references(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| urn_references(x, out)),
        _ => {}
    }
}

/// Replaces resolved `urn:uuid:` references with the server's `Type/id`.
fn resolve_references(v: &mut Value, resolved: &std::collections::HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("reference") {
                if let Some(to) = resolved.get(r.as_str()) {
                    *r = to.clone();
                }
            }
            o.values_mut().for_each(|x| resolve_references(x, resolved));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| resolve_references(x, resolved)),
        _ => {}
    }
}

/// Locations from a `transaction-response`, or why it is not one.
fn transaction_response(body: &Value) -> Result<Vec<String>, String> {
    let bundle: Bundle = serde_json::from_value(body.clone())
        .map_err(|e| format!("the FHIR server's response is not a Bundle: {e}"))?;
    let mut locations = Vec::new();
    for entry in bundle.entry.iter().flatten() {
        let Some(resp) = &entry.response else {
            return Err("a transaction-response entry has no response".into());
        };
        if !resp.status.starts_with('2') {
            return Err(format!(
                "a transaction-response entry has status {}",
                resp.status
            ));
        }
        if let Some(l) = &resp.location {
            locations.push(l.clone());
        }
    }
    Ok(locations)
}

/// `: <first issue's text>` from an OperationOutcome, for the stored error message.
fn outcome_summary(body: Option<&Value>) -> String {
    let Some(oo) = body.and_then(|b| serde_json::from_value::<OperationOutcome>(b.clone()).ok())
    else {
        return String::new();
    };
    let texts: Vec<String> = oo
        .issue
        .iter()
        .flatten()
        .filter_map(|i| {
            i.diagnostics
                .clone()
                .or_else(|| i.details.as_ref().and_then(|d| d.text.clone()))
        })
        .take(3)
        .collect();
    if texts.is_empty() {
        String::new()
    } else {
        format!(": {}", texts.join("; "))
    }
}

/// `Retry-After`: delay-seconds, or an HTTP-date (IMF-fixdate, `Wed, 21 Oct 2026 07:28:00 GMT`)
/// turned into the time left until then.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = parse_http_date(v)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the epoch of an IMF-fixdate (RFC 9110 §5.6.7), the form servers must send.
fn parse_http_date(v: &str) -> Option<u64> {
    let f: Vec<&str> = v.split_whitespace().collect();
    if f.len() != 6 || f[5] != "GMT" {
        return None;
    }
    let day: i64 = f[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == f[2])? as i64
        + 1;
    let year: i64 = f[3].parse().ok()?;
    let hms: Vec<i64> = f[4]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 || !(1..=31).contains(&day) || hms[0] > 23 || hms[1] > 59 || hms[2] > 60 {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transaction_responses_and_outcomes_are_read() {
        let ok = json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [
            {"response": {"status": "201 Created", "location": "Condition/1/_history/1"}},
            {"response": {"status": "200 OK", "location": "Device/2/_history/1"}}]});
        assert_eq!(
            transaction_response(&ok).unwrap(),
            vec!["Condition/1/_history/1", "Device/2/_history/1"]
        );
        let bad = json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [
            {"response": {"status": "400 Bad Request"}}]});
        assert!(transaction_response(&bad).unwrap_err().contains("400"));
        let oo = json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "processing", "details": {"text": "Condition.subject: minimum 1"}}]});
        assert_eq!(outcome_summary(Some(&oo)), ": Condition.subject: minimum 1");
        assert_eq!(outcome_summary(Some(&json!({"x": 1}))), "");
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT"),
            Some(1_792_567_680)
        );
        assert_eq!(parse_http_date("Wed, 21 Oct 2026 07:28:00 PST"), None);
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
