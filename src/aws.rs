//! AWS compatibility: Signature Version 4 verification of requests signed by AWS SDKs
//! (boto3, the AWS CLI), so that HealthScribe client code runs against fhirscribe by changing
//! its endpoint URL. Knows no HTTP framework: callers pass the request's parts.
//!
//! Invariants: a secret never appears in an error or a log; signatures are compared in
//! constant time; a request dated outside the allowed clock skew is refused; a signature seen
//! before within that window is refused for state-changing operations (replay).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// One access key and what it may do.
#[derive(Clone)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    /// SMART-style scopes granted to requests signed with this key (`system/scribe.cruds`).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The parts of a request a signature covers. Header names lowercase.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a signature was refused, with AWS's error names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Incomplete(String),
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")]
    BadSignature,
    #[error("Signature expired: {date} is now earlier or later than the allowed {skew_secs} s of clock skew.")]
    Expired { date: String, skew_secs: u64 },
    #[error("This request's signature was already used: a replayed request is refused.")]
    Replayed,
}

impl SigV4Error {
    /// AWS's `__type` for the error.
    pub fn aws_type(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::Incomplete(_) => "IncompleteSignatureException",
            SigV4Error::UnknownKey => "UnrecognizedClientException",
            SigV4Error::BadSignature | SigV4Error::Expired { .. } | SigV4Error::Replayed => {
                "InvalidSignatureException"
            }
        }
    }

    /// A stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "sigv4_missing",
            SigV4Error::Incomplete(_) => "sigv4_incomplete",
            SigV4Error::UnknownKey => "sigv4_unknown_key",
            SigV4Error::BadSignature => "sigv4_bad_signature",
            SigV4Error::Expired { .. } => "sigv4_expired",
            SigV4Error::Replayed => "sigv4_replayed",
        }
    }
}

/// Verifies SigV4 `Authorization` headers against configured keys.
pub struct SigV4Verifier {
    keys: HashMap<String, AccessKey>,
    max_skew: Duration,
    /// Signatures of state-changing requests seen within the skew window, with their expiry.
    seen: Mutex<HashMap<String, SystemTime>>,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 encoding as SigV4 wants it (unreserved characters kept).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `20261203T101500Z` → Unix seconds.
fn amz_date_secs(d: &str) -> Option<u64> {
    if d.len() != 16 || !d.ends_with('Z') || &d[8..9] != "T" {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[0..4],
        &d[4..6],
        &d[6..8],
        &d[9..11],
        &d[11..13],
        &d[13..15]
    );
    let dt: crate::healthscribe::DateTime = iso.parse().ok()?;
    dt.unix_seconds().map(|s| s as u64)
}

struct Parsed<'a> {
    key_id: &'a str,
    scope: String,
    date: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(h: &str) -> Result<Parsed<'_>, SigV4Error> {
    let incomplete = |m: &str| SigV4Error::Incomplete(m.to_owned());
    let rest = h.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm")
    })?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential
        .ok_or_else(|| incomplete("Authorization header requires 'Credential' parameter"))?;
    let signed = signed
        .ok_or_else(|| incomplete("Authorization header requires 'SignedHeaders' parameter"))?;
    let signature = signature
        .ok_or_else(|| incomplete("Authorization header requires 'Signature' parameter"))?;
    let mut c = credential.splitn(5, '/');
    let (key_id, date, region, service, term) = (c.next(), c.next(), c.next(), c.next(), c.next());
    let (Some(key_id), Some(date), Some(region), Some(service), Some("aws4_request")) =
        (key_id, date, region, service, term)
    else {
        return Err(incomplete(
            "Credential must be ACCESS_KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    };
    Ok(Parsed {
        key_id,
        scope: format!("{date}/{region}/{service}/aws4_request"),
        date,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

impl SigV4Verifier {
    pub fn new(keys: Vec<AccessKey>, max_skew: Duration) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
            max_skew,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The key that signed `req`, if the signature is valid, current and (for `once`, a
    /// state-changing request) not seen before.
    pub fn verify(
        &self,
        req: &SignedRequest,
        now: SystemTime,
        once: bool,
    ) -> Result<&AccessKey, SigV4Error> {
        let auth = req.header("authorization").ok_or(SigV4Error::Missing)?;
        let p = parse_authorization(auth)?;
        let key = self.keys.get(p.key_id).ok_or(SigV4Error::UnknownKey)?;
        let amz_date = req
            .header("x-amz-date")
            .ok_or_else(|| SigV4Error::Incomplete("the X-Amz-Date header is required".into()))?;
        if !amz_date.starts_with(p.date) {
            return Err(SigV4Error::Incomplete(
                "the Credential date does not match X-Amz-Date".into(),
            ));
        }
        if !p.signed_headers.contains(&"host") || !p.signed_headers.contains(&"x-amz-date") {
            return Err(SigV4Error::Incomplete(
                "SignedHeaders must include host and x-amz-date".into(),
            ));
        }
        let signed_at = amz_date_secs(amz_date)
            .ok_or_else(|| SigV4Error::Incomplete("X-Amz-Date is not YYYYMMDDTHHMMSSZ".into()))?;
        let now_s = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if signed_at.abs_diff(now_s) > self.max_skew.as_secs() {
            return Err(SigV4Error::Expired {
                date: amz_date.to_owned(),
                skew_secs: self.max_skew.as_secs(),
            });
        }
        let expected = signature(key, &p, req, amz_date);
        let ok: bool = {
            let a = expected.as_bytes();
            let b = p.signature.as_bytes();
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        };
        if !ok {
            return Err(SigV4Error::BadSignature);
        }
        if once {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.retain(|_, until| *until > now);
            if seen.contains_key(p.signature) {
                return Err(SigV4Error::Replayed);
            }
            seen.insert(p.signature.to_owned(), now + self.max_skew * 2);
        }
        Ok(key)
    }
}

fn signature(key: &AccessKey, p: &Parsed, req: &SignedRequest, amz_date: &str) -> String {
    let mut names: Vec<&str> = p.signed_headers.clone();
    names.sort_unstable();
    let canonical_headers: String = names
        .iter()
        .map(|n| {
            let v = req
                .headers
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join(",");
            format!("{n}:{v}\n")
        })
        .collect();
    let payload = req
        .header("x-amz-content-sha256")
        .filter(|v| *v != "UNSIGNED-PAYLOAD")
        .map(str::to_owned)
        .unwrap_or_else(|| hex(&Sha256::digest(req.body)));
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(&percent_decode(path), true),
        canonical_query(req.query),
        canonical_headers,
        names.join(";"),
        payload
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
        p.scope,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut parts = p.scope.split('/');
    let (date, region, service) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let k = hmac(format!("AWS4{}", key.secret).as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    hex(&hmac(&k, to_sign.as_bytes()))
}

/// The `Authorization` header an SDK would send for `req` (tests, and tools that call the
/// endpoint without an SDK). `req` must carry `host` and `x-amz-date`.
pub fn authorization(key: &AccessKey, req: &SignedRequest, region: &str, service: &str) -> String {
    let amz_date = req.header("x-amz-date").unwrap_or("");
    let mut names: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let p = Parsed {
        key_id: &key.id,
        scope: format!(
            "{}/{region}/{service}/aws4_request",
            amz_date.get(..8).unwrap_or("")
        ),
        date: amz_date.get(..8).unwrap_or(""),
        signed_headers: names.clone(),
        signature: "",
    };
    let sig = signature(key, &p, req, amz_date);
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={sig}",
        key.id,
        p.scope,
        names.join(";")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (IAM ListUsers, "Create a signed AWS API request"): the
    /// published signature must come out of our signer.
    #[test]
    fn matches_aws_documented_example() {
        let key = AccessKey {
            id: "AKIDEXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            scopes: vec![],
        };
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded; charset=utf-8".into(),
                ),
                ("host".into(), "iam.amazonaws.com".into()),
                ("x-amz-date".into(), "20150830T123600Z".into()),
            ],
            body: b"",
        };
        let auth = authorization(&key, &req, "us-east-1", "iam");
        assert!(
            auth.ends_with(
                "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
            ),
            "{auth}"
        );
    }

    fn signed(key: &AccessKey, body: &'static [u8], date: &str) -> Vec<(String, String)> {
        let mut headers = vec![
            ("host".to_string(), "127.0.0.1:8080".to_string()),
            ("x-amz-date".to_string(), date.to_string()),
            (
                "x-amz-target".to_string(),
                "Transcribe.GetMedicalScribeJob".to_string(),
            ),
        ];
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: headers.clone(),
            body,
        };
        headers.push((
            "authorization".into(),
            authorization(key, &req, "us-east-1", "transcribe"),
        ));
        headers
    }

    #[test]
    fn wrong_secret_unknown_key_skew_and_replay_are_refused() {
        let key = AccessKey {
            id: "AKIA1".into(),
            secret: "s3cret".into(),
            scopes: vec![],
        };
        let v = SigV4Verifier::new(vec![key.clone()], Duration::from_secs(300));
        let now = UNIX_EPOCH + Duration::from_secs(1_764_806_100);
        let date = "20251203T235500Z";
        let body: &[u8] = b"{\"MedicalScribeJobName\":\"a\"}";
        let headers = signed(&key, b"{\"MedicalScribeJobName\":\"a\"}", date);
        let req = |h: Vec<(String, String)>, body| SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: h,
            body,
        };
        let t = amz_date_secs(date).unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(t);
        assert_eq!(
            v.verify(&req(headers.clone(), body), at, false).unwrap().id,
            "AKIA1"
        );
        // Reads may repeat; a state-changing request may not.
        assert!(v.verify(&req(headers.clone(), body), at, false).is_ok());
        assert!(v.verify(&req(headers.clone(), body), at, true).is_ok());
        assert_eq!(
            v.verify(&req(headers.clone(), body), at, true).unwrap_err(),
            SigV4Error::Replayed
        );
        // A changed body breaks the signature.
        let e = v
            .verify(&req(headers.clone(), b"{}"), at, false)
            .unwrap_err();
        assert_eq!(e, SigV4Error::BadSignature);
        // The wrong secret.
        let other = AccessKey {
            secret: "guess".into(),
            ..key.clone()
        };
        let e = v
            .verify(&req(signed(&other, b"{}", date), b"{}"), at, false)
            .unwrap_err();
        assert_eq!(e.aws_type(), "InvalidSignatureException");
        assert!(!e.to_string().contains("s3cret") && !e.to_string().contains("guess"));
        // An unknown key.
        let stranger = AccessKey {
            id: "AKIA2".into(),
            ..key.clone()
        };
        let e = v
            .verify(&req(signed(&stranger, b"{}", date), b"{}"), at, false)
            .unwrap_err();
        assert_eq!(e.aws_type(), "UnrecognizedClientException");
        // Outside the clock skew.
        let e = v
            .verify(
                &req(headers.clone(), body),
                now + Duration::from_secs(3600),
                false,
            )
            .unwrap_err();
        assert!(matches!(e, SigV4Error::Expired { .. }), "{e}");
        // No header at all.
        let e = v.verify(&req(vec![], body), at, false).unwrap_err();
        assert_eq!(e.aws_type(), "MissingAuthenticationTokenException");
    }
}
