//! The FHIR read API's logic: read, search and the CapabilityStatement over the resources in
//! [`crate::store::ResourceStore`]. Knows no HTTP: the routes parse the query string into
//! pairs, call [`search`]/[`read`] with the caller's [`Reach`], and map [`ReadError`] to an
//! OperationOutcome.
//!
//! Invariants: one table ([`PARAMS`]) is what [`parse_search`] accepts and what the
//! CapabilityStatement lists; a caller never sees, through a match or an `_include`, a
//! resource outside its reach (another patient's resource answers as if it did not exist);
//! an unknown or unsupported parameter is refused with its name (FHIR's strict handling),
//! unless the client asks for `Prefer: handling=lenient`.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::store::{ResourceStore, StoreError, StoredResource};

pub use crate::store::resources::TYPES;

/// Default and largest page size.
pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 500;

/// What a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every resource (system scopes).
    All,
    /// One patient's compartment (patient scopes, or user scopes with a patient context).
    Patient(String),
    /// What jobs created by this subject produced (user scopes without a patient context).
    Owner(String),
}

impl Reach {
    /// Resources in no patient's compartment (the scribe Device) are visible to every reach.
    pub fn sees(&self, r: &StoredResource) -> bool {
        match (self, &r.patient) {
            (_, None) | (Reach::All, _) => true,
            (Reach::Patient(p), Some(rp)) => p == rp,
            (Reach::Owner(s), Some(_)) => &r.owner == s,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A malformed request (400, issue code `invalid`).
    #[error("{0}")]
    Invalid(String),
    /// A well-formed request for something not supported (400, `not-supported`).
    #[error("{0}")]
    NotSupported(String),
    /// 404, `not-found`; also for resources outside the caller's reach.
    #[error("{0} is not known to this server")]
    NotFound(String),
    /// 403, `forbidden`: the request names data outside the token's reach.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A search parameter this server supports.
pub struct ParamDef {
    pub name: &'static str,
    /// FHIR search parameter type.
    pub kind: &'static str,
    pub types: &'static [&'static str],
    pub documentation: &'static str,
}

const ALL: &[&str] = TYPES;
const CLINICAL: &[&str] = &[
    "DocumentReference",
    "Condition",
    "MedicationStatement",
    "Provenance",
];

/// Every supported search parameter: what [`parse_search`] accepts and the
/// CapabilityStatement lists.
pub const PARAMS: &[ParamDef] = &[
    ParamDef {
        name: "_id",
        kind: "token",
        types: ALL,
        documentation: "Logical id; comma-separated ids match any",
    },
    ParamDef {
        name: "_lastUpdated",
        kind: "date",
        types: ALL,
        documentation: "When the job that produced it completed; prefixes eq ne gt lt ge le",
    },
    ParamDef {
        name: "patient",
        kind: "reference",
        types: CLINICAL,
        documentation: "The patient (id, Patient/id or an absolute URL); for Provenance, the patient whose resources it is about",
    },
    ParamDef {
        name: "subject",
        kind: "reference",
        types: &["DocumentReference", "Condition", "MedicationStatement"],
        documentation: "The patient, as `patient`",
    },
    ParamDef {
        name: "encounter",
        kind: "reference",
        types: &["DocumentReference", "Condition", "MedicationStatement"],
        documentation: "The encounter (for MedicationStatement: its context)",
    },
    ParamDef {
        name: "context",
        kind: "reference",
        types: &["MedicationStatement"],
        documentation: "The encounter, as `encounter`",
    },
    ParamDef {
        name: "code",
        kind: "token",
        types: &["Condition", "MedicationStatement"],
        documentation: "system|code, code, |code or system| (ICD-10-CM, RxNorm)",
    },
    ParamDef {
        name: "type",
        kind: "token",
        types: &["DocumentReference"],
        documentation: "The document type (LOINC): system|code or code",
    },
    ParamDef {
        name: "date",
        kind: "date",
        types: &["DocumentReference"],
        documentation: "DocumentReference.date; prefixes eq ne gt lt ge le",
    },
    ParamDef {
        name: "identifier",
        kind: "token",
        types: &["DocumentReference", "Condition", "MedicationStatement", "Device"],
        documentation: "Business identifier: system|value or value",
    },
    ParamDef {
        name: "target",
        kind: "reference",
        types: &["Provenance"],
        documentation: "The resource the Provenance is about (Type/id)",
    },
];

/// `_include` values (on Provenance searches) and the one `_revinclude`.
pub const INCLUDES: &[&str] = &["Provenance:target", "Provenance:agent"];
pub const REVINCLUDES: &[&str] = &["Provenance:target"];

/// Parameters that shape the result, not the match.
const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_offset",
    "_include",
    "_revinclude",
    "_format",
    "_total",
];

/// A `token` value: `system|code`, `|code` (no system), `system|` or `code` (any system).
#[derive(Debug, Clone, PartialEq)]
struct Token {
    system: Option<String>,
    code: Option<String>,
}

impl Token {
    fn parse(v: &str) -> Token {
        match v.split_once('|') {
            Some((s, c)) => Token {
                system: Some(s.to_owned()),
                code: (!c.is_empty()).then(|| c.to_owned()),
            },
            None => Token {
                system: None,
                code: Some(v.to_owned()),
            },
        }
    }

    /// Against a Coding or an Identifier (`code`/`value`).
    fn matches(&self, system: Option<&str>, code: Option<&str>) -> bool {
        let system_ok = match &self.system {
            None => true,
            Some(s) if s.is_empty() => system.is_none(),
            Some(s) => system == Some(s.as_str()),
        };
        system_ok && self.code.as_deref().is_none_or(|c| code == Some(c))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

/// A date parameter: the prefix and the value's range `[start, end)` in Unix ms.
#[derive(Debug, Clone, PartialEq)]
struct DateFilter {
    prefix: Prefix,
    start: i64,
    end: i64,
}

impl DateFilter {
    fn parse(name: &str, v: &str) -> Result<DateFilter, ReadError> {
        let (prefix, rest) = match v.get(..2) {
            Some("eq") => (Prefix::Eq, &v[2..]),
            Some("ne") => (Prefix::Ne, &v[2..]),
            Some("gt") => (Prefix::Gt, &v[2..]),
            Some("lt") => (Prefix::Lt, &v[2..]),
            Some("ge") => (Prefix::Ge, &v[2..]),
            Some("le") => (Prefix::Le, &v[2..]),
            Some(p) if p.chars().all(|c| c.is_ascii_lowercase()) => {
                return Err(ReadError::NotSupported(format!(
                    "{name}: the prefix {p:?} is not supported (eq, ne, gt, lt, ge, le)"
                )))
            }
            _ => (Prefix::Eq, v),
        };
        let (start, end) = date_range(rest).ok_or_else(|| {
            ReadError::Invalid(format!(
                "{name}: {rest:?} is not a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm))"
            ))
        })?;
        Ok(DateFilter { prefix, start, end })
    }

    /// Whether an instant `t` (ms) matches.
    fn matches(&self, t: i64) -> bool {
        match self.prefix {
            Prefix::Eq => t >= self.start && t < self.end,
            Prefix::Ne => t < self.start || t >= self.end,
            Prefix::Gt => t >= self.end,
            Prefix::Lt => t < self.start,
            Prefix::Ge => t >= self.start,
            Prefix::Le => t < self.end,
        }
    }
}

/// Unix ms of a civil date-time in UTC.
fn unix_ms(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, ms: i64) -> i64 {
    let days = crate::healthscribe::days_from_civil(y, mo, d);
    ((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The range `[start, end)` (Unix ms) a FHIR date/dateTime/instant of any precision covers.
pub fn date_range(v: &str) -> Option<(i64, i64)> {
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = match v.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let y = num(parts.first()?, 4)?;
    let m = parts.get(1).map(|p| num(p, 2)).unwrap_or(Some(1))?;
    let d = parts.get(2).map(|p| num(p, 2)).unwrap_or(Some(1))?;
    if parts.len() > 3 || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let Some(time) = time else {
        let start = unix_ms(y, m, d, 0, 0, 0, 0);
        let end = match parts.len() {
            1 => unix_ms(y + 1, 1, 1, 0, 0, 0, 0),
            2 => start + days_in_month(y, m) * 86_400_000,
            _ => start + 86_400_000,
        };
        return Some((start, end));
    };
    if parts.len() != 3 {
        return None;
    }
    // The zone: Z or ±hh:mm (a time without one is refused: its instant is unknown).
    let (clock, offset_min) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (c, z) = time.split_at(i);
        let (zh, zm) = z[1..].split_once(':')?;
        let off = num(zh, 2)? * 60 + num(zm, 2)?;
        (c, if z.starts_with('-') { -off } else { off })
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, f)) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            (a, Some(f))
        }
        Some(_) => return None,
        None => (clock, None),
    };
    let t: Vec<&str> = hms.split(':').collect();
    let h = num(t.first()?, 2)?;
    let mi = num(t.get(1)?, 2)?;
    let s = t.get(2).map(|p| num(p, 2)).unwrap_or(Some(0))?;
    if t.len() > 3 || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let ms = frac.map_or(0, |f| format!("{f:0<3}")[..3].parse().unwrap_or(0));
    let start = unix_ms(y, m, d, h, mi, s, ms) - offset_min * 60_000;
    let width = match (t.len(), frac) {
        (2, _) => 60_000,
        (_, None) => 1000,
        (_, Some(_)) => 1,
    };
    Some((start, start + width))
}

/// The id a reference parameter names: `id`, `Type/id` or `…/Type/id`.
fn reference_id<'a>(v: &'a str, ty: &str) -> Result<&'a str, ReadError> {
    let id = match v.rsplit_once('/') {
        Some((head, id)) => {
            if !(head == ty || head.ends_with(&format!("/{ty}"))) {
                return Err(ReadError::Invalid(format!(
                    "{v:?} is not a reference to a {ty} (id, {ty}/id or an absolute URL)"
                )));
            }
            id
        }
        None => v,
    };
    valid_id(id)
        .then_some(id)
        .ok_or_else(|| ReadError::Invalid(format!("{id:?} is not a FHIR id")))
}

/// FHIR's id rule: 1-64 of `A-Za-z0-9-.`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A parsed search.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub resource_type: String,
    ids: Vec<Vec<String>>,
    last_updated: Vec<DateFilter>,
    patient: Vec<String>,
    encounter: Vec<String>,
    code: Vec<Vec<Token>>,
    doc_type: Vec<Vec<Token>>,
    date: Vec<DateFilter>,
    identifier: Vec<Vec<Token>>,
    target: Vec<String>,
    pub count: usize,
    pub offset: usize,
    include: Vec<String>,
    revinclude: bool,
    /// The parameters the search used, for the self and paging links.
    pub used: Vec<(String, String)>,
}

/// Parses a search of `ty` from its query pairs (GET query or POST `_search` form body).
pub fn parse_search(
    ty: &str,
    pairs: &[(String, String)],
    lenient: bool,
) -> Result<SearchQuery, ReadError> {
    if !TYPES.contains(&ty) {
        return Err(ReadError::NotSupported(format!(
            "{ty} is not a resource type this server has (it serves {})",
            TYPES.join(", ")
        )));
    }
    let mut q = SearchQuery {
        resource_type: ty.to_owned(),
        count: DEFAULT_COUNT,
        ..Default::default()
    };
    for (name, value) in pairs {
        let (base, modifier) = match name.split_once(':') {
            Some((b, m)) => (b, Some(m)),
            None => (name.as_str(), None),
        };
        let known = PARAMS
            .iter()
            .find(|p| p.name == base && p.types.contains(&ty));
        if let Some(m) = modifier {
            if known.is_some() || RESULT_PARAMS.contains(&base) {
                if lenient {
                    continue;
                }
                return Err(ReadError::NotSupported(format!(
                    "the modifier :{m} of {base} is not supported"
                )));
            }
        }
        if value.is_empty() {
            continue; // FHIR: an empty parameter value is ignored
        }
        let values = || value.split(',').map(str::trim);
        match (base, known) {
            ("_count", _) => {
                q.count = value
                    .parse::<usize>()
                    .map_err(|_| ReadError::Invalid(format!("_count: {value:?} is not a number")))?
                    .min(MAX_COUNT);
            }
            ("_offset", _) => {
                q.offset = value.parse().map_err(|_| {
                    ReadError::Invalid(format!("_offset: {value:?} is not a number"))
                })?;
                continue; // paging links set it themselves
            }
            ("_format", _) => {
                if !matches!(
                    value.as_str(),
                    "json" | "application/json" | "application/fhir+json"
                ) {
                    return Err(ReadError::NotSupported(format!(
                        "_format {value:?}: this server speaks JSON only"
                    )));
                }
            }
            ("_total", _) => {}
            ("_include", _) => {
                if ty != "Provenance" || !INCLUDES.contains(&value.as_str()) {
                    if lenient {
                        continue;
                    }
                    return Err(ReadError::NotSupported(format!(
                        "_include={value} is not supported here (on Provenance: {})",
                        INCLUDES.join(", ")
                    )));
                }
                q.include.push(value.clone());
            }
            ("_revinclude", _) => {
                if !REVINCLUDES.contains(&value.as_str()) || ty == "Provenance" {
                    if lenient {
                        continue;
                    }
                    return Err(ReadError::NotSupported(format!(
                        "_revinclude={value} is not supported (only {})",
                        REVINCLUDES.join(", ")
                    )));
                }
                q.revinclude = true;
            }
            (_, None) => {
                if lenient {
                    continue;
                }
                return Err(ReadError::NotSupported(format!(
                    "the search parameter {base:?} is not supported on {ty} (supported: {})",
                    supported_params(ty).join(", ")
                )));
            }
            ("_id", Some(_)) => {
                let ids: Vec<String> = values().map(str::to_owned).collect();
                if let Some(bad) = ids.iter().find(|i| !valid_id(i)) {
                    return Err(ReadError::Invalid(format!("_id: {bad:?} is not a FHIR id")));
                }
                q.ids.push(ids);
            }
            ("_lastUpdated", Some(_)) => q.last_updated.push(DateFilter::parse(base, value)?),
            ("date", Some(_)) => q.date.push(DateFilter::parse(base, value)?),
            ("patient" | "subject", Some(_)) => {
                q.patient.push(reference_id(value, "Patient")?.to_owned())
            }
            ("encounter" | "context", Some(_)) => q
                .encounter
                .push(reference_id(value, "Encounter")?.to_owned()),
            ("target", Some(_)) => {
                if !value.contains('/') {
                    return Err(ReadError::Invalid(format!(
                        "target: {value:?} must be Type/id"
                    )));
                }
                let (t, id) = value.rsplit_once('/').unwrap_or_default();
                let t = t.rsplit('/').next().unwrap_or_default();
                q.target.push(format!("{t}/{}", reference_id(id, t)?));
            }
            ("code", Some(_)) => q.code.push(values().map(Token::parse).collect()),
            ("type", Some(_)) => q.doc_type.push(values().map(Token::parse).collect()),
            ("identifier", Some(_)) => q.identifier.push(values().map(Token::parse).collect()),
            _ => unreachable!("every PARAMS entry is handled"),
        }
        q.used.push((name.clone(), value.clone()));
    }
    Ok(q)
}

/// The search parameter names supported on `ty`.
pub fn supported_params(ty: &str) -> Vec<&'static str> {
    PARAMS
        .iter()
        .filter(|p| p.types.contains(&ty))
        .map(|p| p.name)
        .collect()
}

fn codings(v: &Value) -> impl Iterator<Item = &Value> {
    v["coding"].as_array().into_iter().flatten()
}

fn any_token(
    tokens: &[Token],
    items: &mut dyn Iterator<Item = (Option<&str>, Option<&str>)>,
) -> bool {
    let items: Vec<_> = items.collect();
    tokens
        .iter()
        .any(|t| items.iter().any(|(s, c)| t.matches(*s, *c)))
}

impl SearchQuery {
    fn matches(&self, s: &StoredResource) -> bool {
        let r = &s.resource;
        let coded = |field: &Value, tokens: &[Token]| {
            any_token(
                tokens,
                &mut codings(field).map(|c| (c["system"].as_str(), c["code"].as_str())),
            )
        };
        let code_field = match self.resource_type.as_str() {
            "MedicationStatement" => &r["medicationCodeableConcept"],
            _ => &r["code"],
        };
        self.ids.iter().all(|ids| ids.iter().any(|i| i == s.id()))
            && self
                .last_updated
                .iter()
                .all(|f| f.matches(s.last_updated_ms))
            && self.patient.iter().all(|p| s.patient.as_deref() == Some(p))
            && self
                .encounter
                .iter()
                .all(|e| s.encounter.as_deref() == Some(e))
            && self.code.iter().all(|t| coded(code_field, t))
            && self.doc_type.iter().all(|t| coded(&r["type"], t))
            && self.date.iter().all(|f| {
                r["date"]
                    .as_str()
                    .and_then(date_range)
                    .is_some_and(|(t, _)| f.matches(t))
            })
            && self.identifier.iter().all(|t| {
                any_token(
                    t,
                    &mut r["identifier"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|i| (i["system"].as_str(), i["value"].as_str())),
                )
            })
            && self.target.iter().all(|t| {
                r["target"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| x["reference"].as_str() == Some(t))
            })
    }
}

/// Reads one resource the caller may see.
pub fn read(
    store: &ResourceStore,
    ty: &str,
    id: &str,
    reach: &Reach,
) -> Result<StoredResource, ReadError> {
    if !TYPES.contains(&ty) {
        return Err(ReadError::NotSupported(format!(
            "{ty} is not a resource type this server has (it serves {})",
            TYPES.join(", ")
        )));
    }
    if !valid_id(id) {
        return Err(ReadError::Invalid(format!("{id:?} is not a FHIR id")));
    }
    match store.get(ty, id)? {
        Some(r) if reach.sees(&r) => Ok(r),
        _ => Err(ReadError::NotFound(format!("{ty}/{id}"))),
    }
}

/// Runs a search and answers a `searchset` Bundle. `base`: the FHIR base URL (no trailing
/// slash); `readable`: the types the caller may read (includes of other types are left out).
pub fn search(
    store: &ResourceStore,
    q: &SearchQuery,
    reach: &Reach,
    readable: &BTreeSet<String>,
    base: &str,
) -> Result<Value, ReadError> {
    let ty = q.resource_type.as_str();
    if let Reach::Patient(p) = reach {
        if let Some(other) = q.patient.iter().find(|x| *x != p) {
            return Err(ReadError::Forbidden(format!(
                "the access token is limited to one patient; Patient/{other} is not it"
            )));
        }
    }
    // Candidates from the narrowest index the query (or the reach) gives.
    let compartment = q.patient.first().cloned().or(match reach {
        Reach::Patient(p) if ty != "Device" => Some(p.clone()),
        _ => None,
    });
    let ids: Option<Vec<String>> = if let Some(ids) = q.ids.first() {
        Some(ids.clone())
    } else if let Some(p) = &compartment {
        Some(store.ids_by_patient(p, ty)?)
    } else if let Some(e) = q.encounter.first() {
        Some(store.ids_by_encounter(e, ty)?)
    } else if let Some(t) = q.target.first() {
        Some(store.provenance_of(t)?)
    } else if let Some(tokens) = q
        .code
        .first()
        .filter(|t| t.iter().all(|t| t.code.is_some()))
    {
        let mut ids = Vec::new();
        for t in tokens {
            ids.extend(store.ids_by_code(ty, t.code.as_deref().unwrap_or_default())?);
        }
        ids.sort();
        ids.dedup();
        Some(ids)
    } else {
        None
    };
    let mut hits: Vec<StoredResource> = Vec::new();
    match ids {
        Some(ids) => {
            for id in ids {
                if let Some(r) = store.get(ty, &id)? {
                    if reach.sees(&r) && q.matches(&r) {
                        hits.push(r);
                    }
                }
            }
        }
        None => {
            for r in store.scan(ty, None) {
                let r = r?;
                if reach.sees(&r) && q.matches(&r) {
                    hits.push(r);
                }
            }
        }
    }
    hits.sort_by(|a, b| (a.last_updated_ms, a.id()).cmp(&(b.last_updated_ms, b.id())));
    let total = hits.len();
    let page: Vec<StoredResource> = hits.into_iter().skip(q.offset).take(q.count).collect();

    let mut entries: Vec<Value> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for r in &page {
        seen.insert(format!("{ty}/{}", r.id()));
    }
    let entry = |r: &StoredResource, mode: &str| {
        json!({
            "fullUrl": format!("{base}/{}/{}", r.resource_type(), r.id()),
            "resource": r.resource,
            "search": {"mode": mode},
        })
    };
    for r in &page {
        entries.push(entry(r, "match"));
    }
    let mut included: Vec<StoredResource> = Vec::new();
    let mut include =
        |reference: &str, included: &mut Vec<StoredResource>| -> Result<(), ReadError> {
            let Some((t, id)) = reference.split_once('/') else {
                return Ok(());
            };
            if !readable.contains(t) || !TYPES.contains(&t) || !seen.insert(reference.to_owned()) {
                return Ok(());
            }
            if let Some(x) = store.get(t, id)? {
                if reach.sees(&x) {
                    included.push(x);
                }
            }
            Ok(())
        };
    for r in &page {
        for inc in &q.include {
            let refs: Vec<&str> = match inc.as_str() {
                "Provenance:target" => r.resource["target"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["reference"].as_str())
                    .collect(),
                _ => r.resource["agent"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a["who"]["reference"].as_str())
                    .collect(),
            };
            for x in refs {
                include(x, &mut included)?;
            }
        }
        if q.revinclude {
            for id in store.provenance_of(&format!("{ty}/{}", r.id()))? {
                include(&format!("Provenance/{id}"), &mut included)?;
            }
        }
    }
    for r in &included {
        entries.push(entry(r, "include"));
    }

    let link = |offset: usize| -> String {
        let mut u = format!("{base}/{ty}?");
        let mut ser = form_urlencoded_pairs(&q.used);
        if !ser.is_empty() {
            ser.push('&');
        }
        ser.push_str(&format!("_count={}&_offset={offset}", q.count));
        u.push_str(&ser);
        u
    };
    let mut links = vec![json!({"relation": "self", "url": link(q.offset)})];
    if q.offset + q.count < total && q.count > 0 {
        links.push(json!({"relation": "next", "url": link(q.offset + q.count)}));
    }
    if q.offset > 0 {
        links.push(json!({"relation": "previous", "url": link(q.offset.saturating_sub(q.count))}));
    }
    Ok(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    }))
}

/// `application/x-www-form-urlencoded` of the pairs (`_count` left to the caller).
fn form_urlencoded_pairs(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| {
        let mut o = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~:/|".contains(&b) {
                o.push(b as char);
            } else {
                o.push_str(&format!("%{b:02X}"));
            }
        }
        o
    };
    pairs
        .iter()
        .filter(|(k, _)| k != "_count")
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// What the CapabilityStatement says about security and Bulk Data.
pub struct CapabilityOptions<'a> {
    /// The FHIR base URL.
    pub base: &'a str,
    /// The OAuth token endpoint clients get tokens from, when known.
    pub token_endpoint: Option<&'a str>,
    /// Group ids `Group/{id}/$export` accepts.
    pub groups: &'a [String],
}

/// The CapabilityStatement: exactly what [`PARAMS`], [`INCLUDES`] and the export routes do.
pub fn capability_statement(o: &CapabilityOptions<'_>) -> Value {
    let resources: Vec<Value> = TYPES
        .iter()
        .map(|ty| {
            let params: Vec<Value> = PARAMS
                .iter()
                .filter(|p| p.types.contains(ty))
                .map(|p| json!({"name": p.name, "type": p.kind, "documentation": p.documentation}))
                .collect();
            let mut r = json!({
                "type": ty,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "versioning": "no-version",
                "readHistory": false,
                "searchParam": params,
            });
            if *ty == "Provenance" {
                r["searchInclude"] = json!(INCLUDES);
            } else {
                r["searchRevInclude"] = json!(REVINCLUDES);
            }
            r
        })
        .collect();
    let mut security = json!({
        "cors": false,
        "service": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR"}]}],
        "description": "Bearer tokens from the configured issuers; SMART v1/v2 scopes (system/, user/, patient/) per resource type; patient tokens see one patient's compartment. $export needs system scopes."
    });
    if let Some(t) = o.token_endpoint {
        security["extension"] = json!([{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [{"url": "token", "valueUri": t}]
        }]);
    }
    let export = |doc: &str| {
        json!({"name": "export",
               "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
               "documentation": doc})
    };
    let mut resources = resources;
    resources.push(json!({
        "type": "Patient",
        "documentation": "Patients are the EHR's; only Patient-level $export is offered here",
        "operation": [{"name": "export",
            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"}]
    }));
    resources.push(json!({
        "type": "Group",
        "documentation": format!("Group-level $export: the configured groups ({}) and `all` (every patient with resources here)",
            if o.groups.is_empty() { "none".to_owned() } else { o.groups.join(", ") }),
        "operation": [{"name": "export",
            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}]
    }));
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": crate::healthscribe::DateTime::now().as_str()[..10],
        "publisher": "fhirscribe",
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "software": {"name": "fhirscribe", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "fhirscribe: the FHIR resources its scribe jobs produced (read-only)", "url": o.base},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "rest": [{
            "mode": "server",
            "security": security,
            "resource": resources,
            "operation": [export("System-level $export of every resource type here (_type, _since, _outputFormat ndjson)")],
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn dates_of_every_precision_cover_their_range() {
        let day = date_range("2026-12-03").unwrap();
        assert_eq!(day.1 - day.0, 86_400_000);
        assert_eq!(day.0, 1_796_256_000_000);
        let month = date_range("2024-02").unwrap();
        assert_eq!(month.1 - month.0, 29 * 86_400_000);
        let z = date_range("2026-12-03T10:00:00Z").unwrap();
        let plus = date_range("2026-12-03T11:00:00+01:00").unwrap();
        assert_eq!(z, plus);
        assert_eq!(z.1 - z.0, 1000);
        assert_eq!(date_range("2026-12-03T10:00:00.5Z").unwrap().0, z.0 + 500);
        for bad in [
            "2026-13",
            "2026-02-30",
            "26-01-01",
            "2026-12-03T10:00",
            "2026-12-03T25:00Z",
            "x",
        ] {
            assert!(date_range(bad).is_none(), "{bad}");
        }
        let f = DateFilter::parse("date", "ge2026-12-03").unwrap();
        assert!(f.matches(day.0) && !f.matches(day.0 - 1));
        let f = DateFilter::parse("date", "lt2026-12-03").unwrap();
        assert!(!f.matches(day.0) && f.matches(day.0 - 1));
        assert!(matches!(
            DateFilter::parse("date", "sa2026"),
            Err(ReadError::NotSupported(_))
        ));
    }

    #[test]
    fn unknown_parameters_are_refused_by_name_unless_lenient() {
        let e = parse_search("Condition", &pairs(&[("category", "x")]), false).unwrap_err();
        assert!(e.to_string().contains("\"category\""), "{e}");
        assert!(parse_search("Condition", &pairs(&[("category", "x")]), true).is_ok());
        let e = parse_search("Condition", &pairs(&[("type", "x")]), false).unwrap_err();
        assert!(e.to_string().contains("not supported on Condition"), "{e}");
        assert!(parse_search("Patient", &[], false).is_err());
        let e = parse_search("Condition", &pairs(&[("code:text", "x")]), false).unwrap_err();
        assert!(e.to_string().contains(":text"), "{e}");
        let q = parse_search(
            "Condition",
            &pairs(&[
                ("patient", "https://ehr/fhir/Patient/p1"),
                ("_count", "9999"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(q.patient, vec!["p1"]);
        assert_eq!(q.count, MAX_COUNT);
        assert!(parse_search("Condition", &pairs(&[("patient", "Encounter/e1")]), false).is_err());
    }

    #[test]
    fn tokens_match_system_and_code() {
        let t = Token::parse("http://snomed.info/sct|123");
        assert!(t.matches(Some("http://snomed.info/sct"), Some("123")));
        assert!(!t.matches(Some("http://x"), Some("123")));
        assert!(Token::parse("123").matches(Some("s"), Some("123")));
        assert!(Token::parse("|123").matches(None, Some("123")));
        assert!(!Token::parse("|123").matches(Some("s"), Some("123")));
        assert!(Token::parse("s|").matches(Some("s"), Some("9")));
    }

    #[test]
    fn the_capability_statement_lists_every_supported_parameter() {
        let groups = vec!["cohort".to_string()];
        let cs = capability_statement(&CapabilityOptions {
            base: "http://x/fhir/r4",
            token_endpoint: Some("http://i/token"),
            groups: &groups,
        });
        let res = cs["rest"][0]["resource"].as_array().unwrap();
        for ty in TYPES {
            let r = res.iter().find(|r| r["type"] == *ty).unwrap();
            let names: Vec<&str> = r["searchParam"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, supported_params(ty), "{ty}");
        }
        assert!(cs.to_string().contains("cohort"));
    }
}
