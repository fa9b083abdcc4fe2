//! Validation of generated resources against the base R4 definitions and our profiles in
//! `fhir-profiles/` (see fhir-profiles/README.md for the contract).
//!
//! Three tables are loaded: `base/r4-elements.json` (every element of the resources and
//! datatypes we emit, derived from the FHIR specification by `scripts/derive-fhir-base.mjs`), the
//! profiles and extension definitions (`StructureDefinition-*.json`, differential only) and the
//! expanded value sets (`ValueSet-*.json`, plus the base table's own expansions).
//!
//! A resource gets two passes: the base walk (known elements, choice types, `_primitive`
//! siblings, cardinality and array-ness, primitive formats, required bindings, Reference format
//! and target types, the extensions we define) and one pass per known profile in `meta.profile`
//! (min/max, fixed[x], pattern[x], required bindings, type and targetProfile restrictions,
//! slicing with `value`/`pattern` discriminators).
//!
//! Expressions are FHIRPath-like with JSON names: `Condition.code.coding[0].system`,
//! `Provenance.occurredDateTime`, `Bundle.entry[3].resource.subject`. Messages name paths,
//! cardinalities, types, codes and systems from the definitions, never a value of the instance
//! (no PHI).
//!
//! Speed (measured with the `#[ignore]`d `tests::speed`, `cargo test --release`, on the 2-core
//! shared dev machine): a 60-resource transaction Bundle validates in about 1.9 ms (13 ms in an
//! unoptimised dev build); `Validator::bundled()` takes about 8 ms, once.

use regex::Regex;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

/// How bad a finding is: an `Error` blocks sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding. `expression` is a FHIRPath-like location (`Condition.code.coding[0].system`,
/// `Bundle.entry[3].resource.subject`); `message` never contains element values (no PHI).
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    pub expression: String,
    pub message: String,
}

/// Why the profile folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("profile file {path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
}

const BASE_FILE: &str = "base/r4-elements.json";

/// The files compiled into the binary (the layout `load` reads at run time).
const BUNDLED: &[(&str, &str)] = &[
    (
        BASE_FILE,
        include_str!("../../fhir-profiles/base/r4-elements.json"),
    ),
    (
        "StructureDefinition-evidence-segment.json",
        include_str!("../../fhir-profiles/StructureDefinition-evidence-segment.json"),
    ),
    (
        "StructureDefinition-scribe-condition.json",
        include_str!("../../fhir-profiles/StructureDefinition-scribe-condition.json"),
    ),
    (
        "StructureDefinition-scribe-device.json",
        include_str!("../../fhir-profiles/StructureDefinition-scribe-device.json"),
    ),
    (
        "StructureDefinition-scribe-medication-statement.json",
        include_str!("../../fhir-profiles/StructureDefinition-scribe-medication-statement.json"),
    ),
    (
        "StructureDefinition-scribe-note.json",
        include_str!("../../fhir-profiles/StructureDefinition-scribe-note.json"),
    ),
    (
        "StructureDefinition-scribe-provenance.json",
        include_str!("../../fhir-profiles/StructureDefinition-scribe-provenance.json"),
    ),
    (
        "StructureDefinition-scribe-transcript.json",
        include_str!("../../fhir-profiles/StructureDefinition-scribe-transcript.json"),
    ),
    (
        "ValueSet-composition-status.json",
        include_str!("../../fhir-profiles/ValueSet-composition-status.json"),
    ),
    (
        "ValueSet-condition-category.json",
        include_str!("../../fhir-profiles/ValueSet-condition-category.json"),
    ),
    (
        "ValueSet-condition-clinical.json",
        include_str!("../../fhir-profiles/ValueSet-condition-clinical.json"),
    ),
    (
        "ValueSet-condition-ver-status.json",
        include_str!("../../fhir-profiles/ValueSet-condition-ver-status.json"),
    ),
    (
        "ValueSet-document-reference-status.json",
        include_str!("../../fhir-profiles/ValueSet-document-reference-status.json"),
    ),
    (
        "ValueSet-medication-statement-status.json",
        include_str!("../../fhir-profiles/ValueSet-medication-statement-status.json"),
    ),
    (
        "ValueSet-provenance-agent-type.json",
        include_str!("../../fhir-profiles/ValueSet-provenance-agent-type.json"),
    ),
    (
        "ValueSet-provenance-entity-role.json",
        include_str!("../../fhir-profiles/ValueSet-provenance-entity-role.json"),
    ),
    (
        "ValueSet-scribe-condition-category.json",
        include_str!("../../fhir-profiles/ValueSet-scribe-condition-category.json"),
    ),
];

// ---- loaded model -----------------------------------------------------------------------------

/// `None` is `*`.
type Max = Option<u32>;

fn fmt_card(min: u32, max: Max) -> String {
    match max {
        Some(m) => format!("{min}..{m}"),
        None => format!("{min}..*"),
    }
}

fn parse_max(v: Option<&Value>) -> Result<Max, String> {
    match v.and_then(Value::as_str) {
        None | Some("*") => Ok(None),
        Some(s) => s
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("bad max {s:?}")),
    }
}

#[derive(Debug, Clone)]
struct TypeRef {
    code: String,
    /// Resource types a Reference/canonical may point at (`Resource` = any).
    targets: Vec<String>,
}

#[derive(Debug, Clone)]
struct ElemDef {
    path: String,
    /// Last path segment without `[x]`.
    name: String,
    choice: bool,
    min: u32,
    max: Max,
    types: Vec<TypeRef>,
    content_ref: Option<String>,
    /// Required binding (value set URL, version stripped).
    binding: Option<String>,
}

impl ElemDef {
    fn repeats(&self) -> bool {
        self.max != Some(1) && self.max != Some(0)
    }
}

#[derive(Debug, Clone, Default)]
struct Kids {
    /// JSON key -> (element index, concrete type code for choice elements).
    keys: HashMap<String, (usize, Option<String>)>,
    all: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Primitive {
    regex: Option<Regex>,
}

#[derive(Debug, Clone, PartialEq)]
enum Disc {
    Value,
    Pattern,
    Other,
}

#[derive(Debug, Clone)]
struct Slicing {
    discriminators: Vec<(Disc, String)>,
    closed: bool,
}

#[derive(Debug, Clone, Default)]
struct Constraint {
    min: Option<u32>,
    max: Option<Max>,
    fixed: Option<Value>,
    pattern: Option<Value>,
    binding: Option<String>,
    /// Allowed type codes (a restriction of a choice element, or just the declared type).
    types: Option<Vec<String>>,
    /// `type.profile` (an extension slice's definition URL).
    type_profiles: Vec<String>,
    /// `type.targetProfile` URLs.
    target_profiles: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct PNode {
    /// Path segment as in the definition (`agent`, `value[x]`).
    name: String,
    cons: Constraint,
    children: Vec<PNode>,
    slicing: Option<Slicing>,
    slices: Vec<(String, PNode)>,
}

impl PNode {
    fn child_mut(&mut self, name: &str) -> &mut PNode {
        if let Some(i) = self.children.iter().position(|c| c.name == name) {
            return &mut self.children[i];
        }
        self.children.push(PNode {
            name: name.to_string(),
            ..Default::default()
        });
        self.children.last_mut().unwrap()
    }

    fn slice_mut(&mut self, slice: &str) -> &mut PNode {
        if let Some(i) = self.slices.iter().position(|(n, _)| n == slice) {
            return &mut self.slices[i].1;
        }
        self.slices.push((
            slice.to_string(),
            PNode {
                name: self.name.clone(),
                ..Default::default()
            },
        ));
        &mut self.slices.last_mut().unwrap().1
    }

    fn find(&self, dotted: &str) -> Option<&PNode> {
        let mut node = self;
        for seg in dotted.split('.') {
            node = node.children.iter().find(|c| c.name == seg)?;
        }
        Some(node)
    }
}

#[derive(Debug, Clone)]
struct Profile {
    url: String,
    /// The constrained type (`Condition`, `Extension`).
    type_name: String,
    root: PNode,
}

/// Loaded profiles, base element table and value sets.
#[derive(Debug, Clone, Default)]
pub struct Validator {
    elements: Vec<ElemDef>,
    by_path: HashMap<String, usize>,
    kids: HashMap<String, Kids>,
    /// Type name -> kind (`resource`, `complex-type`).
    kinds: HashMap<String, String>,
    primitives: HashMap<String, Primitive>,
    /// Value set URL -> `system|code` members.
    value_sets: HashMap<String, HashSet<String>>,
    profiles: HashMap<String, Profile>,
}

// ---- loading ----------------------------------------------------------------------------------

impl Validator {
    /// The profiles compiled into the binary.
    pub fn bundled() -> Result<Self, ProfileError> {
        let files: Vec<(String, String)> = BUNDLED
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        Self::from_files(&files)
    }

    /// Profiles from a folder laid out like `fhir-profiles/`.
    pub fn load(dir: &Path) -> Result<Self, ProfileError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| ProfileError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        let mut files = vec![(BASE_FILE.to_string(), read(&dir.join(BASE_FILE))?)];
        let entries = std::fs::read_dir(dir).map_err(|source| ProfileError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.ends_with(".json")
                    && (n.starts_with("StructureDefinition-") || n.starts_with("ValueSet-"))
            })
            .collect();
        names.sort();
        for n in names {
            let text = read(&dir.join(&n))?;
            files.push((n, text));
        }
        Self::from_files(&files)
    }

    /// The profile URLs this validator knows.
    pub fn profile_urls(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    fn from_files(files: &[(String, String)]) -> Result<Self, ProfileError> {
        let mut v = Validator::default();
        let parse = |name: &str, text: &str| -> Result<Value, ProfileError> {
            serde_json::from_str(text).map_err(|e| ProfileError::Invalid {
                path: name.to_string(),
                reason: e.to_string(),
            })
        };
        let (base_name, base_text) =
            files
                .iter()
                .find(|(n, _)| n == BASE_FILE)
                .ok_or_else(|| ProfileError::Invalid {
                    path: BASE_FILE.into(),
                    reason: "missing".into(),
                })?;
        v.load_base(&parse(base_name, base_text)?)
            .map_err(|reason| ProfileError::Invalid {
                path: base_name.clone(),
                reason,
            })?;
        let mut sds = Vec::new();
        for (name, text) in files {
            if name == BASE_FILE {
                continue;
            }
            let json = parse(name, text)?;
            let bad = |reason: String| ProfileError::Invalid {
                path: name.clone(),
                reason,
            };
            match json.get("resourceType").and_then(Value::as_str) {
                Some("ValueSet") => v.load_value_set(&json).map_err(bad)?,
                Some("StructureDefinition") => sds.push((name.clone(), json)),
                _ => return Err(bad("neither a ValueSet nor a StructureDefinition".into())),
            }
        }
        for (name, json) in sds {
            let p = v
                .load_profile(&json)
                .map_err(|reason| ProfileError::Invalid {
                    path: name.clone(),
                    reason,
                })?;
            v.profiles.insert(p.url.clone(), p);
        }
        Ok(v)
    }

    fn load_base(&mut self, base: &Value) -> Result<(), String> {
        let prims = base
            .get("primitives")
            .and_then(Value::as_object)
            .ok_or("no primitives")?;
        for (name, p) in prims {
            let regex = match p.get("regex").and_then(Value::as_str) {
                Some(r) => Some(Regex::new(&format!("^(?:{r})$")).map_err(|e| e.to_string())?),
                None => None,
            };
            self.primitives.insert(name.clone(), Primitive { regex });
        }
        let types = base
            .get("types")
            .and_then(Value::as_object)
            .ok_or("no types")?;
        for (tname, t) in types {
            let kind = t.get("kind").and_then(Value::as_str).unwrap_or_default();
            self.kinds.insert(tname.clone(), kind.to_string());
            self.kids.entry(tname.clone()).or_default();
            for e in t
                .get("elements")
                .and_then(Value::as_array)
                .ok_or("no elements")?
            {
                let path = e
                    .get("path")
                    .and_then(Value::as_str)
                    .ok_or("element without path")?
                    .to_string();
                let (parent, last) = path.rsplit_once('.').ok_or("bad path")?;
                let choice = last.ends_with("[x]");
                let name = last.trim_end_matches("[x]").to_string();
                let types: Vec<TypeRef> = e
                    .get("types")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|t| TypeRef {
                                code: t
                                    .get("code")
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_string(),
                                targets: t
                                    .get("targets")
                                    .and_then(Value::as_array)
                                    .map(|x| {
                                        x.iter()
                                            .filter_map(|s| s.as_str().map(String::from))
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let binding = e
                    .get("binding")
                    .filter(|b| b.get("strength").and_then(Value::as_str) == Some("required"))
                    .and_then(|b| b.get("valueSet").and_then(Value::as_str))
                    .map(String::from);
                let def = ElemDef {
                    path: path.clone(),
                    name: name.clone(),
                    choice,
                    min: e.get("min").and_then(Value::as_u64).unwrap_or(0) as u32,
                    max: parse_max(e.get("max"))?,
                    content_ref: e.get("ref").and_then(Value::as_str).map(String::from),
                    types,
                    binding,
                };
                let idx = self.elements.len();
                let kids = self.kids.entry(parent.to_string()).or_default();
                kids.all.push(idx);
                if choice {
                    for t in &def.types {
                        kids.keys.insert(
                            format!("{name}{}", upper_first(&t.code)),
                            (idx, Some(t.code.clone())),
                        );
                    }
                } else {
                    kids.keys.insert(name, (idx, None));
                }
                self.by_path.insert(path, idx);
                self.elements.push(def);
            }
        }
        if let Some(vss) = base.get("valueSets").and_then(Value::as_object) {
            for (url, codes) in vss {
                let set = codes
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                self.value_sets.insert(url.clone(), set);
            }
        }
        Ok(())
    }

    fn load_value_set(&mut self, vs: &Value) -> Result<(), String> {
        let url = vs.get("url").and_then(Value::as_str).ok_or("no url")?;
        let contains = vs
            .pointer("/expansion/contains")
            .and_then(Value::as_array)
            .ok_or("no expansion.contains")?;
        let mut set = HashSet::new();
        for c in contains {
            let system = c.get("system").and_then(Value::as_str).unwrap_or_default();
            let code = c
                .get("code")
                .and_then(Value::as_str)
                .ok_or("code missing")?;
            set.insert(format!("{system}|{code}"));
        }
        self.value_sets.insert(url.to_string(), set);
        Ok(())
    }

    fn load_profile(&self, sd: &Value) -> Result<Profile, String> {
        let s = |k: &str| sd.get(k).and_then(Value::as_str);
        let url = s("url").ok_or("no url")?.to_string();
        let type_name = s("type").ok_or("no type")?.to_string();
        if s("fhirVersion") != Some("4.0.1") {
            return Err("fhirVersion must be 4.0.1".into());
        }
        if s("derivation") != Some("constraint") {
            return Err("derivation must be constraint".into());
        }
        if !self.kinds.contains_key(&type_name) {
            return Err(format!("type {type_name} is not in the base table"));
        }
        let mut root = PNode {
            name: type_name.clone(),
            ..Default::default()
        };
        let elements = sd
            .pointer("/differential/element")
            .and_then(Value::as_array)
            .ok_or("no differential.element")?;
        for e in elements {
            let id = e
                .get("id")
                .and_then(Value::as_str)
                .ok_or("element without id")?;
            let mut segs = id.split('.');
            if segs.next().map(|r| r.split(':').next()) != Some(Some(type_name.as_str())) {
                return Err(format!("element {id} is not under {type_name}"));
            }
            let mut node = &mut root;
            for seg in segs {
                let (name, slice) = match seg.split_once(':') {
                    Some((n, s)) => (n, Some(s)),
                    None => (seg, None),
                };
                node = node.child_mut(name);
                if let Some(s) = slice {
                    node = node.slice_mut(s);
                }
            }
            node.cons = self.constraint(e)?;
            if let Some(sl) = e.get("slicing") {
                let discriminators = sl
                    .get("discriminator")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|d| {
                                let ty = match d.get("type").and_then(Value::as_str) {
                                    Some("value") => Disc::Value,
                                    Some("pattern") => Disc::Pattern,
                                    _ => Disc::Other,
                                };
                                let path = d
                                    .get("path")
                                    .and_then(Value::as_str)
                                    .unwrap_or("$this")
                                    .to_string();
                                (ty, path)
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                if discriminators.iter().any(|(d, _)| *d == Disc::Other) {
                    return Err(format!(
                        "{id}: only value and pattern discriminators are supported"
                    ));
                }
                node.slicing = Some(Slicing {
                    discriminators,
                    closed: sl.get("rules").and_then(Value::as_str) == Some("closed"),
                });
            }
        }
        Ok(Profile {
            url,
            type_name,
            root,
        })
    }

    fn constraint(&self, e: &Value) -> Result<Constraint, String> {
        let mut c = Constraint {
            min: e.get("min").and_then(Value::as_u64).map(|m| m as u32),
            ..Default::default()
        };
        if e.get("max").is_some() {
            c.max = Some(parse_max(e.get("max"))?);
        }
        if let Some(obj) = e.as_object() {
            for (k, v) in obj {
                if k.starts_with("fixed") {
                    c.fixed = Some(v.clone());
                } else if k.starts_with("pattern") {
                    c.pattern = Some(v.clone());
                }
            }
        }
        if let Some(b) = e.get("binding") {
            if b.get("strength").and_then(Value::as_str) == Some("required") {
                let vs = b
                    .get("valueSet")
                    .and_then(Value::as_str)
                    .ok_or("binding without valueSet")?;
                let vs = vs.split('|').next().unwrap_or(vs).to_string();
                if !self.value_sets.contains_key(&vs) {
                    return Err(format!("required binding to {vs}, which is not shipped"));
                }
                c.binding = Some(vs);
            }
        }
        if let Some(types) = e.get("type").and_then(Value::as_array) {
            let mut codes = Vec::new();
            for t in types {
                codes.push(
                    t.get("code")
                        .and_then(Value::as_str)
                        .ok_or("type without code")?
                        .to_string(),
                );
                let strs = |k: &str| -> Vec<String> {
                    t.get(k)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                c.type_profiles.extend(strs("profile"));
                c.target_profiles.extend(strs("targetProfile"));
            }
            c.types = Some(codes);
        }
        Ok(c)
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

// ---- validation -------------------------------------------------------------------------------

/// A Reference found while walking: where, what it points at (not reported), which types it may
/// point at, and whether this came from the base walk (which reports unresolved `urn:uuid`s).
struct RefSeen {
    expr: String,
    reference: String,
    allowed: Vec<String>,
    from_base: bool,
}

#[derive(Default)]
struct Ctx {
    issues: Vec<Issue>,
    refs: Vec<RefSeen>,
    /// While walking a Bundle: do not descend into `entry.resource` (validate_bundle does).
    skip_entry_resources: bool,
}

impl Ctx {
    fn err(&mut self, expr: &str, msg: impl Into<String>) {
        self.issues.push(Issue {
            severity: Severity::Error,
            expression: expr.to_string(),
            message: msg.into(),
        });
    }
    /// The issues, each reported once (the base walk and a profile can find the same fault).
    fn finish(self) -> Vec<Issue> {
        let mut seen = HashSet::new();
        self.issues
            .into_iter()
            .filter(|i| {
                seen.insert((
                    i.severity == Severity::Error,
                    i.expression.clone(),
                    i.message.clone(),
                ))
            })
            .collect()
    }
    fn warn(&mut self, expr: &str, msg: impl Into<String>) {
        self.issues.push(Issue {
            severity: Severity::Warning,
            expression: expr.to_string(),
            message: msg.into(),
        });
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The items of a JSON property with their expressions (`expr.key` or `expr.key[i]`).
fn items<'a>(obj: &'a Map<String, Value>, key: &str, expr: &str) -> Vec<(String, &'a Value)> {
    match obj.get(key) {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{expr}.{key}[{i}]"), v))
            .collect(),
        Some(v) => vec![(format!("{expr}.{key}"), v)],
    }
}

/// FHIR pattern semantics: every property of the pattern is present in the value and matches;
/// each item of an array in the pattern matches some item of the value's array.
fn pattern_matches(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Object(p), Value::Object(v)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| pattern_matches(pv, vv))),
        (Value::Array(p), Value::Array(v)) => p
            .iter()
            .all(|pi| v.iter().any(|vi| pattern_matches(pi, vi))),
        // A repeating element against a single pattern item (pattern on a list element).
        (Value::Object(_), Value::Array(v)) => v.iter().any(|vi| pattern_matches(pattern, vi)),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (p, v) => p == v,
    }
}

/// Compact rendering of a definition's pattern/fixed value for messages (definition text only).
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(200).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

fn is_type_name(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
        && s.bytes().all(|c| c.is_ascii_alphanumeric())
}

/// What a `Reference.reference` string points at.
enum RefKind<'a> {
    /// `Type/id` (optionally `/_history/vid`), relative or at the end of an absolute URL.
    Typed(&'a str),
    Uuid,
    /// `#id` or an absolute URL whose tail is not `Type/id`.
    Other,
}

fn classify_reference<'a>(r: &'a str) -> Option<RefKind<'a>> {
    if let Some(u) = r.strip_prefix("urn:uuid:") {
        return is_uuid(u).then_some(RefKind::Uuid);
    }
    if let Some(local) = r.strip_prefix('#') {
        return is_id(local).then_some(RefKind::Other);
    }
    let typed_tail = |segs: &[&'a str]| -> Option<&'a str> {
        let segs = match segs {
            [rest @ .., "_history", v] if is_id(v) => rest,
            s => s,
        };
        match segs {
            [.., t, id] if is_type_name(t) && is_id(id) => Some(*t),
            _ => None,
        }
    };
    if r.starts_with("http://") || r.starts_with("https://") {
        if r.chars().any(char::is_whitespace) {
            return None;
        }
        let segs: Vec<&str> = r.split('/').collect();
        return Some(match typed_tail(&segs) {
            Some(t) => RefKind::Typed(t),
            None => RefKind::Other,
        });
    }
    let segs: Vec<&str> = r.split('/').collect();
    if segs.len() == 2 || (segs.len() == 4 && segs[2] == "_history") {
        return typed_tail(&segs).map(RefKind::Typed);
    }
    None
}

/// The scribe writes one Condition per code and one MedicationStatement per drug code per job:
/// two AI-labelled (AIAST) resources of one type with the same coding in one Bundle would chart
/// the same finding twice. Messages name entries, never the code.
fn check_one_per_code(entries: &[Value], ctx: &mut Ctx) {
    let mut seen: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(r) = entry.get("resource") else {
            continue;
        };
        let (rtype, concept) = match r.get("resourceType").and_then(Value::as_str) {
            Some("Condition") => ("Condition", r.get("code")),
            Some("MedicationStatement") => {
                ("MedicationStatement", r.get("medicationCodeableConcept"))
            }
            _ => continue,
        };
        let ai_made = r["meta"]["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|c| c["code"] == "AIAST"));
        if !ai_made {
            continue;
        }
        let codings = concept
            .and_then(|c| c.get("coding"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for c in codings {
            let (Some(system), Some(code)) = (c["system"].as_str(), c["code"].as_str()) else {
                continue;
            };
            if let Some(j) = seen.insert((rtype, system, code), i) {
                ctx.err(
                    &format!("Bundle.entry[{i}].resource"),
                    format!(
                        "an AI-made {rtype} with the same code as Bundle.entry[{j}]: one resource per code per job"
                    ),
                );
            }
        }
    }
}

impl Validator {
    /// Checks one resource against the base R4 definition and every profile in `meta.profile`.
    /// A Bundle is checked as `validate_bundle` does.
    pub fn validate(&self, resource: &Value) -> Vec<Issue> {
        if resource.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
            return self.validate_bundle(resource);
        }
        let mut ctx = Ctx::default();
        self.check_resource(resource, None, &mut ctx);
        ctx.finish()
    }

    /// Checks every entry's resource, and that each `urn:uuid:` reference resolves to an entry.
    pub fn validate_bundle(&self, bundle: &Value) -> Vec<Issue> {
        let mut ctx = Ctx {
            skip_entry_resources: true,
            ..Default::default()
        };
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            ctx.err("resourceType", "expected a Bundle");
            return ctx.issues;
        }
        self.check_resource(bundle, None, &mut ctx);
        ctx.skip_entry_resources = false;
        let btype = bundle
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let needs_request = btype == "transaction" || btype == "batch";
        let entries: &[Value] = bundle
            .get("entry")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // fullUrl -> (entry index, resource type)
        let mut full_urls: HashMap<&str, (usize, &str)> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let eexpr = format!("Bundle.entry[{i}]");
            let resource = entry.get("resource");
            let rtype = resource
                .and_then(|r| r.get("resourceType"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Some(fu) = entry.get("fullUrl").and_then(Value::as_str) {
                if let Some(u) = fu.strip_prefix("urn:uuid:") {
                    if !is_uuid(u) {
                        ctx.err(
                            &format!("{eexpr}.fullUrl"),
                            "urn:uuid fullUrl must be urn:uuid: and a lowercase RFC 4122 UUID",
                        );
                    }
                }
                if let Some((j, _)) = full_urls.get(fu) {
                    ctx.err(
                        &format!("{eexpr}.fullUrl"),
                        format!("duplicate fullUrl (same as Bundle.entry[{j}].fullUrl)"),
                    );
                } else {
                    full_urls.insert(fu, (i, rtype));
                }
            }
            if needs_request {
                let req = entry.get("request");
                for field in ["method", "url"] {
                    if req.and_then(|r| r.get(field)).is_none() {
                        ctx.err(
                            &format!("{eexpr}.request.{field}"),
                            format!("{btype} entries need request.method and request.url"),
                        );
                    }
                }
                let method = req.and_then(|r| r.get("method")).and_then(Value::as_str);
                let url = req.and_then(|r| r.get("url")).and_then(Value::as_str);
                if matches!(method, Some("POST") | Some("PUT")) && resource.is_none() {
                    ctx.err(
                        &format!("{eexpr}.resource"),
                        "POST and PUT entries need a resource",
                    );
                }
                if method == Some("POST") && resource.is_some() && url.is_some_and(|u| u != rtype) {
                    ctx.err(
                        &format!("{eexpr}.request.url"),
                        "a POST entry's request.url must be the resource's type",
                    );
                }
            }
            if let Some(r) = resource {
                self.check_resource(r, Some(&format!("{eexpr}.resource")), &mut ctx);
            }
        }
        check_one_per_code(entries, &mut ctx);
        // urn:uuid references must resolve; the target's type must be one the element allows.
        let refs = std::mem::take(&mut ctx.refs);
        let mut reported: HashSet<&str> = HashSet::new();
        for r in &refs {
            if !r.reference.starts_with("urn:uuid:") {
                continue;
            }
            match full_urls.get(r.reference.as_str()) {
                None => {
                    if r.from_base && reported.insert(&r.expr) {
                        ctx.err(
                            &r.expr,
                            "urn:uuid reference does not resolve to any entry's fullUrl",
                        );
                    }
                }
                Some((j, t)) => {
                    if !r.allowed.is_empty()
                        && !r.allowed.iter().any(|a| a == "Resource" || a == t)
                        && reported.insert(&r.expr)
                    {
                        ctx.err(
                            &r.expr,
                            format!(
                                "refers to Bundle.entry[{j}], whose type is not one of {}",
                                r.allowed.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        ctx.finish()
    }

    /// Base walk plus the profiles in `meta.profile`. `prefix` replaces the resource type at the
    /// start of expressions (`Bundle.entry[3].resource`).
    fn check_resource(&self, resource: &Value, prefix: Option<&str>, ctx: &mut Ctx) {
        let Some(obj) = resource.as_object() else {
            ctx.err(
                prefix.unwrap_or("Resource"),
                "a resource must be a JSON object",
            );
            return;
        };
        let rtype = match obj.get("resourceType") {
            Some(Value::String(t)) => t.as_str(),
            Some(_) => {
                ctx.err(
                    &format!("{}.resourceType", prefix.unwrap_or("Resource")),
                    "resourceType must be a string",
                );
                return;
            }
            None => {
                ctx.err(
                    &format!("{}.resourceType", prefix.unwrap_or("Resource")),
                    "resourceType is missing",
                );
                return;
            }
        };
        if self.kinds.get(rtype).map(String::as_str) != Some("resource") {
            let mut known: Vec<&str> = self
                .kinds
                .iter()
                .filter(|(_, k)| k.as_str() == "resource")
                .map(|(n, _)| n.as_str())
                .collect();
            known.sort();
            ctx.err(
                &format!("{}.resourceType", prefix.unwrap_or("Resource")),
                format!(
                    "not a resource type fhirscribe validates (known: {})",
                    known.join(", ")
                ),
            );
            return;
        }
        let expr = prefix.unwrap_or(rtype).to_string();
        self.walk(rtype, obj, &expr, true, ctx);
        // profiles
        let profiles: Vec<(String, &str)> = match obj.get("meta").and_then(|m| m.get("profile")) {
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.as_str().map(|s| (format!("{expr}.meta.profile[{i}]"), s)))
                .collect(),
            _ => Vec::new(),
        };
        for (pexpr, url) in profiles {
            let url_no_version = url.split('|').next().unwrap_or(url);
            match self.profiles.get(url_no_version) {
                Some(p) if p.type_name == rtype => self.apply_node(&p.root, obj, &expr, rtype, ctx),
                Some(_) => ctx.err(&pexpr, "profile is for another resource type"),
                None => ctx.warn(
                    &pexpr,
                    format!(
                        "unknown profile {url_no_version}: only the base definition was checked"
                    ),
                ),
            }
        }
    }

    /// The base walk of one complex value: `def` is a type name or a backbone element's path.
    fn walk(&self, def: &str, obj: &Map<String, Value>, expr: &str, is_root: bool, ctx: &mut Ctx) {
        let Some(kids) = self.kids.get(def) else {
            return;
        };
        // Unknown keys, `_primitive` siblings.
        for (key, val) in obj {
            if kids.keys.contains_key(key) || (is_root && key == "resourceType") {
                continue;
            }
            if let Some(base) = key.strip_prefix('_') {
                match kids.keys.get(base) {
                    Some((idx, concrete)) => {
                        let el = &self.elements[*idx];
                        let code = concrete
                            .as_deref()
                            .or_else(|| el.types.first().map(|t| t.code.as_str()))
                            .unwrap_or_default();
                        if !self.primitives.contains_key(code) {
                            ctx.err(
                                &format!("{expr}.{key}"),
                                format!("{base} is not a primitive: no _{base} allowed"),
                            );
                            continue;
                        }
                        self.check_primitive_ext(el, key, val, obj.get(base), expr, ctx);
                    }
                    None => ctx.err(
                        &format!("{expr}.{key}"),
                        format!("unknown element (no {base} in {def})"),
                    ),
                }
                continue;
            }
            ctx.err(
                &format!("{expr}.{key}"),
                format!("unknown element: {def} has no element {key}"),
            );
        }
        // Per element of the definition: cardinality, array-ness, values.
        let has_underscore = obj.keys().any(|k| k.starts_with('_'));
        for &idx in &kids.all {
            let el = &self.elements[idx];
            let mut count = 0usize;
            if el.choice {
                // the few keys of the object, not the (up to 50) types of the choice
                let present: Vec<(&str, &str)> = obj
                    .keys()
                    .filter(|k| k.starts_with(el.name.as_str()))
                    .filter_map(|k| match kids.keys.get(k) {
                        Some((i, Some(code))) if *i == idx => Some((k.as_str(), code.as_str())),
                        _ => None,
                    })
                    .collect();
                if present.len() > 1 {
                    ctx.err(
                        &format!("{expr}.{}", present[1].0),
                        format!("only one of {}[x] may be present", el.name),
                    );
                }
                for (key, code) in present {
                    count += self.check_property(el, key, Some(code), obj, expr, ctx);
                }
                if count == 0 && has_underscore {
                    // extension-only primitive: `_valueString`
                    count = obj
                        .keys()
                        .filter_map(|k| k.strip_prefix('_'))
                        .filter(|k| matches!(kids.keys.get(*k), Some((i, _)) if *i == idx))
                        .count();
                }
            } else if obj.contains_key(&el.name) {
                count = self.check_property(el, &el.name, None, obj, expr, ctx);
            } else if let Some(ext) = has_underscore
                .then(|| obj.get(&format!("_{}", el.name)))
                .flatten()
            {
                count = match ext {
                    Value::Array(a) => a.len(),
                    _ => 1,
                };
            }
            if (count as u32) < el.min {
                let name = if el.choice {
                    format!("{}[x]", el.name)
                } else {
                    el.name.clone()
                };
                ctx.err(
                    &format!("{expr}.{name}"),
                    format!(
                        "minimum cardinality {} not met (base {})",
                        el.min,
                        fmt_card(el.min, el.max)
                    ),
                );
            }
        }
    }

    /// Checks one present JSON property against its element; returns the number of items.
    fn check_property(
        &self,
        el: &ElemDef,
        key: &str,
        choice_type: Option<&str>,
        obj: &Map<String, Value>,
        expr: &str,
        ctx: &mut Ctx,
    ) -> usize {
        let val = &obj[key];
        let pexpr = format!("{expr}.{key}");
        let repeats = el.repeats();
        let list: Vec<(String, &Value)> = match (val, repeats) {
            (Value::Array(a), true) => {
                if a.is_empty() {
                    ctx.err(&pexpr, "empty arrays are not allowed in FHIR JSON");
                }
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{pexpr}[{i}]"), v))
                    .collect()
            }
            (Value::Array(_), false) => {
                ctx.err(
                    &pexpr,
                    format!(
                        "must not be an array (max cardinality {})",
                        fmt_card(el.min, el.max)
                    ),
                );
                return 1;
            }
            (_, true) => {
                ctx.err(
                    &pexpr,
                    format!(
                        "must be an array (cardinality {})",
                        fmt_card(el.min, el.max)
                    ),
                );
                return 1;
            }
            (v, false) => vec![(pexpr.clone(), v)],
        };
        if let Some(m) = el.max {
            if list.len() as u32 > m {
                ctx.err(
                    &pexpr,
                    format!(
                        "maximum cardinality {m} exceeded (base {})",
                        fmt_card(el.min, el.max)
                    ),
                );
            }
        }
        let sibling = obj.get(&format!("_{key}"));
        for (i, (iexpr, v)) in list.iter().enumerate() {
            if v.is_null() {
                let has_ext = match sibling {
                    Some(Value::Array(a)) => a.get(i).is_some_and(|x| !x.is_null()),
                    _ => false,
                };
                if !has_ext {
                    ctx.err(
                        iexpr,
                        "null is only allowed where _element carries an extension",
                    );
                }
                continue;
            }
            self.check_value(el, choice_type, v, iexpr, ctx);
        }
        list.len()
    }

    fn check_value(
        &self,
        el: &ElemDef,
        choice_type: Option<&str>,
        v: &Value,
        expr: &str,
        ctx: &mut Ctx,
    ) {
        if let Some(r) = &el.content_ref {
            match v.as_object() {
                Some(o) => self.walk(r, o, expr, false, ctx),
                None => ctx.err(expr, format!("must be an object, not a {}", json_kind(v))),
            }
            return;
        }
        let code = choice_type
            .or_else(|| el.types.first().map(|t| t.code.as_str()))
            .unwrap_or_default();
        if self.primitives.contains_key(code) {
            self.check_primitive(code, v, expr, ctx);
            if let (Some(vs), Some(s)) = (&el.binding, v.as_str()) {
                self.check_code_in(vs, None, s, expr, ctx);
            }
            return;
        }
        let Some(o) = v.as_object() else {
            ctx.err(
                expr,
                format!("must be a JSON object ({code}), not a {}", json_kind(v)),
            );
            return;
        };
        match code {
            "Resource" => {
                if !(ctx.skip_entry_resources && el.path == "Bundle.entry.resource") {
                    let mut inner = Ctx::default();
                    self.check_resource(v, Some(expr), &mut inner);
                    ctx.issues.extend(inner.issues);
                    ctx.refs.extend(inner.refs);
                }
            }
            "BackboneElement" | "Element" => self.walk(&el.path, o, expr, false, ctx),
            _ => {
                self.walk(code, o, expr, false, ctx);
                match code {
                    "Extension" => self.check_extension(o, expr, ctx),
                    "Reference" => {
                        let targets: Vec<String> = el
                            .types
                            .iter()
                            .find(|t| t.code == "Reference")
                            .map(|t| t.targets.clone())
                            .unwrap_or_default();
                        self.check_reference(o, expr, targets, true, ctx);
                    }
                    "CodeableConcept" | "Coding" => {}
                    _ => {}
                }
                if let Some(vs) = &el.binding {
                    self.check_binding(vs, code, v, expr, ctx);
                }
            }
        }
    }

    /// `_element`: an object (or array of objects/nulls, parallel to the values) with only `id`
    /// and `extension`.
    fn check_primitive_ext(
        &self,
        el: &ElemDef,
        key: &str,
        val: &Value,
        main: Option<&Value>,
        expr: &str,
        ctx: &mut Ctx,
    ) {
        let pexpr = format!("{expr}.{key}");
        let list: Vec<(String, &Value)> = match (val, el.repeats()) {
            (Value::Array(a), true) => {
                if let Some(Value::Array(m)) = main {
                    if m.len() != a.len() {
                        ctx.err(&pexpr, format!("must have as many items as {}", &key[1..]));
                    }
                }
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{pexpr}[{i}]"), v))
                    .collect()
            }
            (Value::Array(_), false) => {
                ctx.err(&pexpr, "must not be an array (max cardinality 1)");
                return;
            }
            (_, true) => {
                ctx.err(&pexpr, "must be an array, parallel to its values");
                return;
            }
            (v, false) => vec![(pexpr.clone(), v)],
        };
        for (iexpr, v) in list {
            match v {
                Value::Null => {}
                Value::Object(o) => {
                    for (k, x) in o {
                        match k.as_str() {
                            "id" => self.check_primitive("string", x, &format!("{iexpr}.id"), ctx),
                            "extension" => {
                                let ext_el = ElemDef {
                                    path: "Element.extension".into(),
                                    name: "extension".into(),
                                    choice: false,
                                    min: 0,
                                    max: None,
                                    types: vec![TypeRef {
                                        code: "Extension".into(),
                                        targets: vec![],
                                    }],
                                    content_ref: None,
                                    binding: None,
                                };
                                self.check_property(&ext_el, "extension", None, o, &iexpr, ctx);
                            }
                            _ => ctx.err(
                                &format!("{iexpr}.{k}"),
                                "unknown element: a primitive's extension object has only id and extension",
                            ),
                        }
                    }
                }
                other => ctx.err(
                    &iexpr,
                    format!("must be an object, not a {}", json_kind(other)),
                ),
            }
        }
    }

    fn check_primitive(&self, code: &str, v: &Value, expr: &str, ctx: &mut Ctx) {
        let bad =
            |ctx: &mut Ctx, what: &str| ctx.err(expr, format!("not a valid FHIR {code}: {what}"));
        match code {
            "boolean" => {
                if !v.is_boolean() {
                    bad(
                        ctx,
                        &format!("expected a JSON boolean, found a {}", json_kind(v)),
                    );
                }
            }
            "integer" | "positiveInt" | "unsignedInt" => match v.as_i64() {
                Some(n) => {
                    let lo = match code {
                        "positiveInt" => 1,
                        "unsignedInt" => 0,
                        _ => i32::MIN as i64,
                    };
                    if n < lo || n > i32::MAX as i64 {
                        bad(ctx, &format!("out of range ({lo}..{})", i32::MAX));
                    }
                }
                None => bad(
                    ctx,
                    &format!("expected a JSON integer, found a {}", json_kind(v)),
                ),
            },
            "decimal" => {
                if !v.is_number() {
                    bad(
                        ctx,
                        &format!("expected a JSON number, found a {}", json_kind(v)),
                    );
                }
            }
            _ => {
                let Some(s) = v.as_str() else {
                    bad(
                        ctx,
                        &format!("expected a JSON string, found a {}", json_kind(v)),
                    );
                    return;
                };
                if s.is_empty() {
                    bad(ctx, "empty strings are not allowed");
                    return;
                }
                if code == "base64Binary" {
                    let mut n = 0usize;
                    let ok = s.bytes().all(|c| {
                        if c.is_ascii_whitespace() {
                            return true;
                        }
                        n += 1;
                        c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'='
                    });
                    if !ok || n % 4 != 0 {
                        bad(ctx, "does not match the base64Binary format");
                    }
                    return;
                }
                if code == "xhtml" {
                    if !s.trim_start().starts_with("<div") {
                        bad(ctx, "must be an XHTML <div>");
                    }
                    return;
                }
                if let Some(re) = self.primitives.get(code).and_then(|p| p.regex.as_ref()) {
                    if !re.is_match(s) {
                        bad(
                            ctx,
                            &format!("does not match the {code} format of the FHIR specification"),
                        );
                    }
                }
            }
        }
    }

    fn check_extension(&self, o: &Map<String, Value>, expr: &str, ctx: &mut Ctx) {
        let Some(url) = o.get("url").and_then(Value::as_str) else {
            return; // base walk reports the missing url
        };
        if let Some(p) = self.profiles.get(url) {
            if p.type_name == "Extension" {
                self.apply_node(&p.root, o, expr, "Extension", ctx);
            }
        }
    }

    /// Reference.reference format and, where `allowed` restricts it, the type of a relative or
    /// absolute `Type/id` reference. `urn:uuid` ones are recorded for the Bundle check.
    fn check_reference(
        &self,
        o: &Map<String, Value>,
        expr: &str,
        allowed: Vec<String>,
        from_base: bool,
        ctx: &mut Ctx,
    ) {
        let Some(r) = o.get("reference").and_then(Value::as_str) else {
            return;
        };
        let rexpr = format!("{expr}.reference");
        match classify_reference(r) {
            None => {
                if from_base {
                    ctx.err(
                        &rexpr,
                        "reference must be Type/id, urn:uuid:<uuid>, #id or an absolute URL",
                    );
                }
            }
            Some(RefKind::Typed(t)) => {
                if !allowed.is_empty() && !allowed.iter().any(|a| a == "Resource" || a == t) {
                    ctx.err(&rexpr, format!("must refer to {}", allowed.join(" or ")));
                }
            }
            Some(RefKind::Uuid) => ctx.refs.push(RefSeen {
                expr: rexpr,
                reference: r.to_string(),
                allowed,
                from_base,
            }),
            Some(RefKind::Other) => {}
        }
    }

    fn check_code_in(
        &self,
        vs: &str,
        system: Option<&str>,
        code: &str,
        expr: &str,
        ctx: &mut Ctx,
    ) -> bool {
        let Some(set) = self.value_sets.get(vs) else {
            return true; // not shipped: not checked
        };
        let ok = match system {
            Some(s) => set.contains(&format!("{s}|{code}")),
            None => set
                .iter()
                .any(|m| m.rsplit_once('|').is_some_and(|(_, c)| c == code)),
        };
        if !ok && !expr.is_empty() {
            ctx.err(expr, format!("code is not in the required value set {vs}"));
        }
        ok
    }

    /// Required binding on a Coding or CodeableConcept (at least one coding in the set).
    fn check_binding(&self, vs: &str, code: &str, v: &Value, expr: &str, ctx: &mut Ctx) {
        if !self.value_sets.contains_key(vs) {
            return;
        }
        let coding_ok = |c: &Value| -> bool {
            match (
                c.get("system").and_then(Value::as_str),
                c.get("code").and_then(Value::as_str),
            ) {
                (Some(s), Some(k)) => self.value_sets[vs].contains(&format!("{s}|{k}")),
                _ => false,
            }
        };
        let ok = match code {
            "Coding" => coding_ok(v),
            "CodeableConcept" => v
                .get("coding")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(coding_ok)),
            "Quantity" => true,
            _ => true,
        };
        if !ok {
            let mut msg = format!("no coding from the required value set {vs}");
            if let Some(set) = self.value_sets.get(vs) {
                if set.len() <= 12 {
                    let mut codes: Vec<&str> = set.iter().map(String::as_str).collect();
                    codes.sort();
                    let _ = write!(msg, " (expected one of {})", codes.join(", "));
                }
            }
            ctx.err(expr, msg);
        }
    }

    // ---- profiles -----------------------------------------------------------------------------

    /// Items of a profile child in an instance object: for a choice (`value[x]`), the keys of the
    /// allowed types, reporting the disallowed ones.
    fn select<'a>(
        &self,
        node: &PNode,
        obj: &'a Map<String, Value>,
        expr: &str,
        ctx: &mut Ctx,
    ) -> Vec<(String, &'a Value, Option<String>)> {
        if let Some(stem) = node.name.strip_suffix("[x]") {
            let mut out = Vec::new();
            for k in obj.keys() {
                let Some(rest) = k.strip_prefix(stem) else {
                    continue;
                };
                if !rest.starts_with(|c: char| c.is_ascii_uppercase()) {
                    continue;
                }
                let ty = lower_first(rest);
                let allowed = node
                    .cons
                    .types
                    .as_ref()
                    .is_none_or(|ts| ts.iter().any(|t| t == &ty || upper_first(t) == rest));
                if !allowed {
                    ctx.err(
                        &format!("{expr}.{k}"),
                        format!(
                            "type {rest} is not allowed here by the profile (allowed: {})",
                            node.cons.types.as_deref().unwrap_or_default().join(", ")
                        ),
                    );
                    continue;
                }
                for (e, v) in items(obj, k, expr) {
                    out.push((e, v, Some(ty.clone())));
                }
            }
            return out;
        }
        items(obj, &node.name, expr)
            .into_iter()
            .map(|(e, v)| (e, v, None))
            .collect()
    }

    fn apply_node(
        &self,
        node: &PNode,
        obj: &Map<String, Value>,
        expr: &str,
        def: &str,
        ctx: &mut Ctx,
    ) {
        for child in &node.children {
            let found = self.select(child, obj, expr, ctx);
            let cexpr = format!("{expr}.{}", child.name);
            let n = found.len() as u32;
            if let Some(min) = child.cons.min {
                if n < min {
                    ctx.err(
                        &cexpr,
                        format!(
                            "minimum cardinality {min} not met (profile requires {})",
                            card_of(&child.cons)
                        ),
                    );
                }
            }
            if let Some(Some(max)) = child.cons.max {
                if n > max {
                    ctx.err(
                        &cexpr,
                        format!(
                            "maximum cardinality {max} exceeded (profile allows {})",
                            card_of(&child.cons)
                        ),
                    );
                }
            }
            let child_def = self.child_def(def, &child.name);
            for (iexpr, v, _) in &found {
                self.check_constraint(&child.cons, v, iexpr, ctx);
                if let (Some(o), Some(d)) = (v.as_object(), child_def.as_deref()) {
                    self.apply_node(child, o, iexpr, d, ctx);
                }
            }
            if !child.slices.is_empty() || child.slicing.is_some() {
                self.apply_slices(child, &found, &cexpr, child_def.as_deref(), ctx);
            }
        }
    }

    /// The base definition path of a profile child: a backbone element's own path or its type.
    fn child_def(&self, def: &str, name: &str) -> Option<String> {
        let path = format!("{def}.{name}");
        let idx = *self.by_path.get(&path)?;
        let el = &self.elements[idx];
        if let Some(r) = &el.content_ref {
            return Some(r.clone());
        }
        match el.types.first().map(|t| t.code.as_str()) {
            Some("BackboneElement") | Some("Element") => Some(el.path.clone()),
            Some(t) if el.types.len() == 1 => Some(t.to_string()),
            _ => None,
        }
    }

    fn apply_slices(
        &self,
        node: &PNode,
        found: &[(String, &Value, Option<String>)],
        expr: &str,
        def: Option<&str>,
        ctx: &mut Ctx,
    ) {
        let Some(slicing) = &node.slicing else { return };
        let mut matched = vec![false; found.len()];
        for (sname, slice) in &node.slices {
            let mut members = 0u32;
            for (i, (iexpr, v, _)) in found.iter().enumerate() {
                if !self.slice_matches(slicing, slice, v) {
                    continue;
                }
                matched[i] = true;
                members += 1;
                self.check_constraint(&slice.cons, v, iexpr, ctx);
                if let (Some(o), Some(d)) = (v.as_object(), def) {
                    self.apply_node(slice, o, iexpr, d, ctx);
                }
            }
            let min = slice.cons.min.unwrap_or(0);
            let max = slice.cons.max.unwrap_or(None);
            if members < min || max.is_some_and(|m| members > m) {
                let what = describe_slice(slicing, slice);
                ctx.err(
                    expr,
                    format!(
                        "slice '{sname}' ({what}) needs {} item(s), found {members}",
                        fmt_card(min, max)
                    ),
                );
            }
        }
        if slicing.closed {
            for (i, (iexpr, _, _)) in found.iter().enumerate() {
                if !matched[i] {
                    ctx.err(
                        iexpr,
                        format!(
                            "matches none of the slices ({}) and the slicing is closed",
                            node.slices
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
    }

    fn slice_matches(&self, slicing: &Slicing, slice: &PNode, v: &Value) -> bool {
        slicing.discriminators.iter().all(|(kind, path)| {
            let (target, value) = if path == "$this" {
                (Some(slice), Some(v))
            } else {
                let mut cur = Some(v);
                for seg in path.split('.') {
                    cur = cur.and_then(|c| c.get(seg)).map(|c| match c {
                        Value::Array(a) => a.first().unwrap_or(&Value::Null),
                        x => x,
                    });
                }
                (slice.find(path), cur)
            };
            let Some(value) = value else { return false };
            // Extension slices are discriminated by url, implied by the slice's type.profile.
            if path == "url"
                && target.is_none_or(|t| t.cons.fixed.is_none() && t.cons.pattern.is_none())
            {
                return value
                    .as_str()
                    .is_some_and(|u| slice.cons.type_profiles.iter().any(|p| p == u));
            }
            let Some(t) = target else { return false };
            if let Some(f) = &t.cons.fixed {
                return f == value;
            }
            if let Some(p) = &t.cons.pattern {
                return pattern_matches(p, value);
            }
            let _ = kind;
            false
        })
    }

    fn check_constraint(&self, c: &Constraint, v: &Value, expr: &str, ctx: &mut Ctx) {
        if let Some(f) = &c.fixed {
            if f != v {
                ctx.err(expr, format!("must be exactly the fixed value {}", show(f)));
            }
        }
        if let Some(p) = &c.pattern {
            if !pattern_matches(p, v) {
                ctx.err(
                    expr,
                    format!("does not match the profile's pattern {}", show(p)),
                );
            }
        }
        if let Some(vs) = &c.binding {
            match v {
                Value::String(s) => {
                    self.check_code_in(vs, None, s, expr, ctx);
                }
                Value::Object(o) if o.contains_key("coding") => {
                    self.check_binding(vs, "CodeableConcept", v, expr, ctx)
                }
                Value::Object(_) => self.check_binding(vs, "Coding", v, expr, ctx),
                _ => {}
            }
        }
        if !c.target_profiles.is_empty() {
            if let Some(o) = v.as_object() {
                let allowed: Vec<String> = c
                    .target_profiles
                    .iter()
                    .map(|tp| match self.profiles.get(tp) {
                        Some(p) => p.type_name.clone(),
                        None => tp.rsplit('/').next().unwrap_or(tp).to_string(),
                    })
                    .collect();
                self.check_reference(o, expr, allowed, false, ctx);
            }
        }
    }
}

fn card_of(c: &Constraint) -> String {
    let min = c.min.map(|m| m.to_string()).unwrap_or_else(|| "_".into());
    let max = match c.max {
        Some(Some(m)) => m.to_string(),
        Some(None) => "*".into(),
        None => "_".into(),
    };
    format!("{min}..{max}")
}

fn describe_slice(slicing: &Slicing, slice: &PNode) -> String {
    let mut parts = Vec::new();
    for (_, path) in &slicing.discriminators {
        let t = if path == "$this" {
            Some(slice)
        } else {
            slice.find(path)
        };
        let shown = t
            .and_then(|t| t.cons.fixed.as_ref().or(t.cons.pattern.as_ref()))
            .map(show)
            .or_else(|| slice.cons.type_profiles.first().cloned());
        if let Some(s) = shown {
            parts.push(if path == "$this" {
                s
            } else {
                format!("{path} = {s}")
            });
        }
    }
    parts.join("; ")
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
