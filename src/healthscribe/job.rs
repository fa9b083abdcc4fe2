//! The `StartMedicalScribeJob`, `GetMedicalScribeJob`, `ListMedicalScribeJobs` and
//! `DeleteMedicalScribeJob` shapes of Amazon Transcribe's API, with AWS's request constraints.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum MedicalScribeLanguageCode {
    /// The only language HealthScribe supports.
    #[default]
    #[serde(rename = "en-US")]
    EnUs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MedicalScribeJobStatus {
    Queued,
    InProgress,
    Failed,
    Completed,
}

/// The role on a channel; in transcripts it gains an index (see `ParticipantRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MedicalScribeParticipantRole {
    Patient,
    Clinician,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NoteTemplate {
    #[default]
    HistoryAndPhysical,
    Girpp,
    Birp,
    Sirp,
    Dap,
    /// The developer guide spells it `BH_SOAP`.
    #[serde(alias = "BH_SOAP")]
    BehavioralSoap,
    /// The developer guide spells it `PH_SOAP`.
    #[serde(alias = "PH_SOAP")]
    PhysicalSoap,
}

/// AWS's values are lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VocabularyFilterMethod {
    Remove,
    Mask,
    Tag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Pronouns {
    HeHim,
    SheHer,
    TheyThem,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Media {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_file_uri: Option<String>,
    /// Part of AWS's shared `Media` shape; only Call Analytics uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_media_file_uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MedicalScribeOutput {
    pub transcript_file_uri: String,
    pub clinical_document_uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MedicalScribeSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_speaker_labels: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_speaker_labels: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_identification: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary_filter_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary_filter_method: Option<VocabularyFilterMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinical_note_generation_settings: Option<ClinicalNoteGenerationSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClinicalNoteGenerationSettings {
    /// `None` means AWS's default, `HISTORY_AND_PHYSICAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_template: Option<NoteTemplate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MedicalScribeChannelDefinition {
    pub channel_id: u32,
    pub participant_role: MedicalScribeParticipantRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MedicalScribeContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_context: Option<MedicalScribePatientContext>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MedicalScribePatientContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pronouns: Option<Pronouns>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    /// AWS treats an omitted value as the empty string.
    #[serde(default)]
    pub value: String,
}

/// A job as `Get`/`Start` return it. Every field is optional in AWS's model.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MedicalScribeJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_scribe_job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_scribe_job_status: Option<MedicalScribeJobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<MedicalScribeLanguageCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_scribe_output: Option<MedicalScribeOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<MedicalScribeSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_access_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_definitions: Option<Vec<MedicalScribeChannelDefinition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_scribe_context_provided: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

/// A row of `ListMedicalScribeJobs`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MedicalScribeJobSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_scribe_job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<MedicalScribeLanguageCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_scribe_job_status: Option<MedicalScribeJobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartMedicalScribeJobRequest {
    pub medical_scribe_job_name: String,
    pub media: Media,
    pub output_bucket_name: String,
    #[serde(
        rename = "OutputEncryptionKMSKeyId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub output_encryption_kms_key_id: Option<String>,
    #[serde(
        rename = "KMSEncryptionContext",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kms_encryption_context: Option<BTreeMap<String, String>>,
    /// Required by AWS; optional here because a self-hosted server has no IAM role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_access_role_arn: Option<String>,
    pub settings: MedicalScribeSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_definitions: Option<Vec<MedicalScribeChannelDefinition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_scribe_context: Option<MedicalScribeContext>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartMedicalScribeJobResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_scribe_job: Option<MedicalScribeJob>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMedicalScribeJobRequest {
    pub medical_scribe_job_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMedicalScribeJobResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_scribe_job: Option<MedicalScribeJob>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMedicalScribeJobsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MedicalScribeJobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// AWS's default is 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMedicalScribeJobsResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MedicalScribeJobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(default)]
    pub medical_scribe_job_summaries: Vec<MedicalScribeJobSummary>,
}

/// `DeleteMedicalScribeJob` returns an empty body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMedicalScribeJobRequest {
    pub medical_scribe_job_name: String,
}

// ---------------------------------------------------------------------------------------------
// Timestamps

/// An RFC 3339 timestamp, written as a string (e.g. `2024-05-04T12:32:58.789Z`).
///
/// AWS's JSON protocol sends epoch seconds; those are read and converted to UTC with millisecond
/// precision, so one type serves both our API and files captured from AWS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateTime(String);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DateTimeError {
    #[error("`{0}` is not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM))")]
    NotRfc3339(String),
    #[error("{0} is not an epoch-seconds timestamp between 1970 and 9999")]
    OutOfRange(f64),
}

const MAX_EPOCH_SECONDS: f64 = 253_402_300_800.0; // 10000-01-01T00:00:00Z

impl DateTime {
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("system clock is after 1970");
        Self::from_unix_millis(since.as_millis() as i64)
    }

    /// Converts AWS's epoch-seconds form.
    pub fn from_unix_seconds(seconds: f64) -> Result<Self, DateTimeError> {
        if !(0.0..MAX_EPOCH_SECONDS).contains(&seconds) {
            return Err(DateTimeError::OutOfRange(seconds));
        }
        Ok(Self::from_unix_millis((seconds * 1000.0).round() as i64))
    }

    /// From milliseconds since the Unix epoch.
    pub fn from_unix_millis(millis: i64) -> Self {
        let days = millis.div_euclid(86_400_000);
        let ms = millis.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let (h, min, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        Self(format!(
            "{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{frac:03}Z"
        ))
    }

    /// Seconds since the Unix epoch (AWS's JSON protocol writes timestamps so), for the
    /// `YYYY-MM-DDTHH:MM:SS[.fff]Z` form this type writes; None for other spellings.
    pub fn unix_seconds(&self) -> Option<f64> {
        let s = self.0.strip_suffix('Z')?;
        let (date, time) = s.split_once('T')?;
        let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
        let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
        let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
        let frac: f64 = format!("0.{frac}").parse().ok()?;
        let days = days_from_civil(y, m, day);
        Some((days * 86_400 + h * 3600 + min * 60 + sec) as f64 + frac)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days-from-civil, the
/// inverse of `civil_from_days`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let at = |i: usize, chars: &[u8]| b.get(i).is_some_and(|c| chars.contains(c));
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return false;
    };
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let valid_date = (1..=12).contains(&month) && day >= 1 && day <= month_days[month as usize - 1];
    if !valid_date || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        i += digits;
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len()
                && at(i + 3, b":")
                && num(i + 1, 2).is_some_and(|h| h <= 23)
                && num(i + 4, 2).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

impl FromStr for DateTime {
    type Err = DateTimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if is_rfc3339(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(DateTimeError::NotRfc3339(s.to_owned()))
        }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DateTime;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string or epoch seconds")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<DateTime, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DateTime, E> {
                DateTime::from_unix_seconds(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DateTime, E> {
                self.visit_f64(v as f64)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DateTime, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------------
// Validation

/// A request that breaks a constraint of AWS's API model.
///
/// AWS's patterns are applied to the whole value (the model leaves some unanchored, but its prose
/// rules out e.g. spaces in job names). Lengths count characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("{field} must be {min} to {max} characters long, got {actual}")]
    Length {
        field: &'static str,
        min: usize,
        max: usize,
        actual: usize,
    },
    #[error("{field} `{value}` does not match the pattern {pattern}")]
    Pattern {
        field: &'static str,
        value: String,
        pattern: &'static str,
    },
    #[error("{field} must be between {min} and {max}, got {actual}")]
    Range {
        field: &'static str,
        min: u32,
        max: u32,
        actual: u32,
    },
    #[error("{field} must have {min} to {max} entries, got {actual}")]
    Count {
        field: &'static str,
        min: usize,
        max: usize,
        actual: usize,
    },
    #[error(
        "Settings.ShowSpeakerLabels and Settings.ChannelIdentification are mutually exclusive; \
         set exactly one of them to true"
    )]
    SpeakerLabelsAndChannelIdentification,
    #[error("Settings must set exactly one of ShowSpeakerLabels or ChannelIdentification to true")]
    NoSpeakerPartitioning,
    #[error("Settings.MaxSpeakerLabels is required when Settings.ShowSpeakerLabels is true")]
    MaxSpeakerLabelsRequired,
    #[error("Settings.MaxSpeakerLabels may only be set when Settings.ShowSpeakerLabels is true")]
    MaxSpeakerLabelsWithoutSpeakerLabels,
    #[error(
        "Settings.VocabularyFilterMethod is required when Settings.VocabularyFilterName is set"
    )]
    VocabularyFilterMethodRequired,
    #[error("ChannelDefinitions is required when Settings.ChannelIdentification is true")]
    ChannelDefinitionsRequired,
    #[error("ChannelDefinitions may only be set when Settings.ChannelIdentification is true")]
    ChannelDefinitionsWithoutChannelIdentification,
    #[error("ChannelDefinitions must contain exactly 2 entries, got {actual}")]
    ChannelDefinitionsCount { actual: usize },
    #[error(
        "ChannelDefinitions must name two different channels; ChannelId {channel_id} is repeated"
    )]
    DuplicateChannelId { channel_id: u32 },
}

type Check = Result<(), ValidationError>;

const NAME_PATTERN: &str = "^[0-9a-zA-Z._-]+";
/// AWS's pattern plus this server's own schemes: `file://` (a file under the configured media
/// folder) and `media://` (audio uploaded to the server).
const URI_PATTERN: &str = "(s3://|http(s*)://|file://|media://).+";
const BUCKET_PATTERN: &str = r"[a-z0-9][\.\-a-z0-9]{1,61}[a-z0-9]";
const KMS_KEY_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9:_/+=,@.-]{0,2048}$";
const ROLE_ARN_PATTERN: &str = "^arn:(aws|aws-cn|aws-us-gov|aws-iso-{0,1}[a-z]{0,1}):iam::[0-9]{0,63}:role/[A-Za-z0-9:_/+=,@.-]{0,1024}$";
const NON_EMPTY_PATTERN: &str = r".*\S.*";

fn length(field: &'static str, value: &str, min: usize, max: usize) -> Check {
    let actual = value.chars().count();
    if (min..=max).contains(&actual) {
        Ok(())
    } else {
        Err(ValidationError::Length {
            field,
            min,
            max,
            actual,
        })
    }
}

fn pattern(field: &'static str, value: &str, pattern: &'static str, ok: bool) -> Check {
    if ok {
        Ok(())
    } else {
        Err(ValidationError::Pattern {
            field,
            value: value.to_owned(),
            pattern,
        })
    }
}

fn range(field: &'static str, actual: u32, min: u32, max: u32) -> Check {
    if (min..=max).contains(&actual) {
        Ok(())
    } else {
        Err(ValidationError::Range {
            field,
            min,
            max,
            actual,
        })
    }
}

fn count(field: &'static str, actual: usize, min: usize, max: usize) -> Check {
    if (min..=max).contains(&actual) {
        Ok(())
    } else {
        Err(ValidationError::Count {
            field,
            min,
            max,
            actual,
        })
    }
}

/// Job, vocabulary and vocabulary-filter names share AWS's name shape.
fn name(field: &'static str, value: &str) -> Check {
    length(field, value, 1, 200)?;
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    pattern(field, value, NAME_PATTERN, ok)
}

fn uri(field: &'static str, value: &str) -> Check {
    length(field, value, 1, 2000)?;
    let rest = value
        .strip_prefix("s3://")
        .or_else(|| value.strip_prefix("file://"))
        .or_else(|| value.strip_prefix("media://"))
        .or_else(|| {
            value
                .strip_prefix("http")
                .map(|r| r.trim_start_matches('s'))
                .and_then(|r| r.strip_prefix("://"))
        });
    let ok = rest.is_some_and(|r| !r.is_empty() && !r.contains(['\n', '\r']));
    pattern(field, value, URI_PATTERN, ok)
}

fn bucket(value: &str) -> Check {
    const FIELD: &str = "OutputBucketName";
    length(FIELD, value, 3, 63)?;
    let b = value.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = edge(&b[0])
        && edge(&b[b.len() - 1])
        && b.iter().all(|c| edge(c) || matches!(c, b'.' | b'-'));
    pattern(FIELD, value, BUCKET_PATTERN, ok)
}

fn arn_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ":_/+=,@.-".contains(c)
}

fn kms_key(value: &str) -> Check {
    const FIELD: &str = "OutputEncryptionKMSKeyId";
    length(FIELD, value, 1, 2048)?;
    let ok = value.starts_with(|c: char| c.is_ascii_alphanumeric()) && value.chars().all(arn_char);
    pattern(FIELD, value, KMS_KEY_PATTERN, ok)
}

fn role_arn(value: &str) -> Check {
    const FIELD: &str = "DataAccessRoleArn";
    length(FIELD, value, 20, 2048)?;
    let partition_ok = |p: &str| {
        matches!(p, "aws" | "aws-cn" | "aws-us-gov")
            || p.strip_prefix("aws-iso").is_some_and(|r| {
                let r = r.strip_prefix('-').unwrap_or(r);
                r.is_empty() || (r.len() == 1 && r.bytes().all(|c| c.is_ascii_lowercase()))
            })
    };
    let ok = (|| {
        let rest = value.strip_prefix("arn:")?;
        let (partition, rest) = rest.split_once(':')?;
        let rest = rest.strip_prefix("iam::")?;
        let (account, rest) = rest.split_once(':')?;
        let path = rest.strip_prefix("role/")?;
        Some(
            partition_ok(partition)
                && account.len() <= 63
                && account.bytes().all(|c| c.is_ascii_digit())
                && path.chars().count() <= 1024
                && path.chars().all(arn_char),
        )
    })()
    .unwrap_or(false);
    pattern(FIELD, value, ROLE_ARN_PATTERN, ok)
}

fn non_empty_string(field: &'static str, value: &str) -> Check {
    length(field, value, 1, 2000)?;
    let ok = value.chars().any(|c| !c.is_whitespace());
    pattern(field, value, NON_EMPTY_PATTERN, ok)
}

/// AWS's rule for a job name (1–200 characters of `0-9a-zA-Z._-`).
pub fn validate_job_name(value: &str) -> Result<(), ValidationError> {
    name("MedicalScribeJobName", value)
}

impl StartMedicalScribeJobRequest {
    /// Checks the constraints of AWS's API model and `StartMedicalScribeJob` documentation;
    /// returns the first violation.
    pub fn validate(&self) -> Result<(), ValidationError> {
        name("MedicalScribeJobName", &self.medical_scribe_job_name)?;

        let media_uri = self
            .media
            .media_file_uri
            .as_deref()
            .ok_or(ValidationError::Missing {
                field: "Media.MediaFileUri",
            })?;
        uri("Media.MediaFileUri", media_uri)?;
        if let Some(redacted) = &self.media.redacted_media_file_uri {
            uri("Media.RedactedMediaFileUri", redacted)?;
        }

        bucket(&self.output_bucket_name)?;
        if let Some(key) = &self.output_encryption_kms_key_id {
            kms_key(key)?;
        }
        if let Some(context) = &self.kms_encryption_context {
            count("KMSEncryptionContext", context.len(), 1, 10)?;
            for (k, v) in context {
                non_empty_string("KMSEncryptionContext key", k)?;
                non_empty_string("KMSEncryptionContext value", v)?;
            }
        }
        if let Some(arn) = &self.data_access_role_arn {
            role_arn(arn)?;
        }

        self.validate_settings()?;

        if let Some(tags) = &self.tags {
            count("Tags", tags.len(), 1, 200)?;
            for tag in tags {
                length("Tags.Key", &tag.key, 1, 128)?;
                length("Tags.Value", &tag.value, 0, 256)?;
            }
        }
        Ok(())
    }

    fn validate_settings(&self) -> Check {
        let s = &self.settings;
        let speaker_labels = s.show_speaker_labels == Some(true);
        let channels = s.channel_identification == Some(true);
        match (speaker_labels, channels) {
            (true, true) => return Err(ValidationError::SpeakerLabelsAndChannelIdentification),
            (false, false) => return Err(ValidationError::NoSpeakerPartitioning),
            _ => {}
        }
        match (speaker_labels, s.max_speaker_labels) {
            (true, None) => return Err(ValidationError::MaxSpeakerLabelsRequired),
            (false, Some(_)) => return Err(ValidationError::MaxSpeakerLabelsWithoutSpeakerLabels),
            (true, Some(max)) => range("Settings.MaxSpeakerLabels", max, 2, 30)?,
            (false, None) => {}
        }
        if let Some(v) = &s.vocabulary_name {
            name("Settings.VocabularyName", v)?;
        }
        if let Some(v) = &s.vocabulary_filter_name {
            name("Settings.VocabularyFilterName", v)?;
            if s.vocabulary_filter_method.is_none() {
                return Err(ValidationError::VocabularyFilterMethodRequired);
            }
        }

        match (channels, &self.channel_definitions) {
            (true, None) => Err(ValidationError::ChannelDefinitionsRequired),
            (false, Some(_)) => {
                Err(ValidationError::ChannelDefinitionsWithoutChannelIdentification)
            }
            (false, None) => Ok(()),
            (true, Some(defs)) => {
                if defs.len() != 2 {
                    return Err(ValidationError::ChannelDefinitionsCount { actual: defs.len() });
                }
                for def in defs {
                    range("ChannelDefinitions.ChannelId", def.channel_id, 0, 1)?;
                }
                if defs[0].channel_id == defs[1].channel_id {
                    return Err(ValidationError::DuplicateChannelId {
                        channel_id: defs[0].channel_id,
                    });
                }
                Ok(())
            }
        }
    }
}

impl GetMedicalScribeJobRequest {
    pub fn validate(&self) -> Result<(), ValidationError> {
        name("MedicalScribeJobName", &self.medical_scribe_job_name)
    }
}

impl DeleteMedicalScribeJobRequest {
    pub fn validate(&self) -> Result<(), ValidationError> {
        name("MedicalScribeJobName", &self.medical_scribe_job_name)
    }
}

impl ListMedicalScribeJobsRequest {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(v) = &self.job_name_contains {
            name("JobNameContains", v)?;
        }
        if let Some(token) = &self.next_token {
            length("NextToken", token, 1, 8192)?;
        }
        if let Some(max) = self.max_results {
            range("MaxResults", max, 1, 100)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_round_trip_through_epoch_seconds() {
        for secs in [0.0, 951_782_400.5, 1_764_806_143.475, 4_102_444_800.0] {
            let d = DateTime::from_unix_seconds(secs).unwrap();
            assert_eq!(d.unix_seconds(), Some(secs), "{}", d.as_str());
        }
    }

    fn speaker_labels_request() -> StartMedicalScribeJobRequest {
        serde_json::from_value(json!({
            "MedicalScribeJobName": "knee-follow-up_2024.05",
            "Media": {"MediaFileUri": "s3://clinic-audio/visits/knee.flac"},
            "OutputBucketName": "clinic-notes",
            "DataAccessRoleArn": "arn:aws:iam::111122223333:role/ScribeAccess",
            "Settings": {"ShowSpeakerLabels": true, "MaxSpeakerLabels": 3}
        }))
        .unwrap()
    }

    fn channel_request() -> StartMedicalScribeJobRequest {
        serde_json::from_value(json!({
            "MedicalScribeJobName": "telehealth-42",
            "Media": {"MediaFileUri": "https://files.example.org/tele-42.wav"},
            "OutputBucketName": "out.example-1",
            "Settings": {"ShowSpeakerLabels": false, "ChannelIdentification": true},
            "ChannelDefinitions": [
                {"ChannelId": 0, "ParticipantRole": "CLINICIAN"},
                {"ChannelId": 1, "ParticipantRole": "PATIENT"}
            ]
        }))
        .unwrap()
    }

    fn err(req: &StartMedicalScribeJobRequest) -> ValidationError {
        req.validate().unwrap_err()
    }

    #[test]
    fn valid_requests_pass() {
        speaker_labels_request().validate().unwrap();
        channel_request().validate().unwrap();
        let mut r = speaker_labels_request();
        r.settings.max_speaker_labels = Some(2);
        r.validate().unwrap();
        r.settings.max_speaker_labels = Some(30);
        r.validate().unwrap();
    }

    #[test]
    fn job_name_constraints() {
        let mut r = speaker_labels_request();
        r.medical_scribe_job_name = String::new();
        assert_eq!(
            err(&r).to_string(),
            "MedicalScribeJobName must be 1 to 200 characters long, got 0"
        );
        r.medical_scribe_job_name = "a".repeat(201);
        assert!(matches!(
            err(&r),
            ValidationError::Length { actual: 201, .. }
        ));
        r.medical_scribe_job_name = "a".repeat(200);
        r.validate().unwrap();
        for bad in ["knee visit", "knee/visit", "visité", "a\n"] {
            r.medical_scribe_job_name = bad.into();
            let e = err(&r);
            assert!(
                matches!(
                    e,
                    ValidationError::Pattern {
                        field: "MedicalScribeJobName",
                        ..
                    }
                ),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains("^[0-9a-zA-Z._-]+"));
        }
    }

    #[test]
    fn speaker_partitioning_is_exactly_one() {
        let mut r = speaker_labels_request();
        r.settings.channel_identification = Some(true);
        assert_eq!(
            err(&r),
            ValidationError::SpeakerLabelsAndChannelIdentification
        );
        assert!(err(&r).to_string().contains("mutually exclusive"));

        let mut r = speaker_labels_request();
        r.settings.show_speaker_labels = None;
        r.settings.max_speaker_labels = None;
        assert_eq!(err(&r), ValidationError::NoSpeakerPartitioning);
        r.settings.show_speaker_labels = Some(false);
        r.settings.channel_identification = Some(false);
        assert_eq!(err(&r), ValidationError::NoSpeakerPartitioning);
    }

    #[test]
    fn max_speaker_labels_constraints() {
        let mut r = speaker_labels_request();
        for bad in [0, 1, 31] {
            r.settings.max_speaker_labels = Some(bad);
            assert_eq!(
                err(&r).to_string(),
                format!("Settings.MaxSpeakerLabels must be between 2 and 30, got {bad}")
            );
        }
        r.settings.max_speaker_labels = None;
        assert_eq!(err(&r), ValidationError::MaxSpeakerLabelsRequired);

        let mut r = channel_request();
        r.settings.max_speaker_labels = Some(2);
        assert_eq!(
            err(&r),
            ValidationError::MaxSpeakerLabelsWithoutSpeakerLabels
        );
    }

    #[test]
    fn channel_definition_constraints() {
        let mut r = channel_request();
        r.channel_definitions = None;
        assert_eq!(err(&r), ValidationError::ChannelDefinitionsRequired);

        let mut r = channel_request();
        r.channel_definitions.as_mut().unwrap().pop();
        assert_eq!(
            err(&r),
            ValidationError::ChannelDefinitionsCount { actual: 1 }
        );
        assert_eq!(
            err(&r).to_string(),
            "ChannelDefinitions must contain exactly 2 entries, got 1"
        );

        let mut r = channel_request();
        let extra = r.channel_definitions.as_ref().unwrap()[0];
        r.channel_definitions.as_mut().unwrap().push(extra);
        assert_eq!(
            err(&r),
            ValidationError::ChannelDefinitionsCount { actual: 3 }
        );

        let mut r = channel_request();
        r.channel_definitions.as_mut().unwrap()[1].channel_id = 0;
        assert_eq!(
            err(&r),
            ValidationError::DuplicateChannelId { channel_id: 0 }
        );

        let mut r = channel_request();
        r.channel_definitions.as_mut().unwrap()[1].channel_id = 2;
        assert_eq!(
            err(&r).to_string(),
            "ChannelDefinitions.ChannelId must be between 0 and 1, got 2"
        );

        let mut r = speaker_labels_request();
        r.channel_definitions = channel_request().channel_definitions;
        assert_eq!(
            err(&r),
            ValidationError::ChannelDefinitionsWithoutChannelIdentification
        );
    }

    #[test]
    fn vocabulary_constraints() {
        let mut r = speaker_labels_request();
        r.settings.vocabulary_name = Some("ortho terms".into());
        assert!(matches!(
            err(&r),
            ValidationError::Pattern {
                field: "Settings.VocabularyName",
                ..
            }
        ));
        r.settings.vocabulary_name = Some("ortho-terms".into());
        r.settings.vocabulary_filter_name = Some("profanity".into());
        assert_eq!(err(&r), ValidationError::VocabularyFilterMethodRequired);
        r.settings.vocabulary_filter_method = Some(VocabularyFilterMethod::Mask);
        r.validate().unwrap();
    }

    #[test]
    fn media_and_bucket_constraints() {
        let mut r = speaker_labels_request();
        r.media.media_file_uri = None;
        assert_eq!(err(&r).to_string(), "Media.MediaFileUri is required");
        for ok in [
            "s3://b/k.wav",
            "http://h/a",
            "https://h/a",
            "file:///a.wav",
            "media://0f3c",
        ] {
            r.media.media_file_uri = Some(ok.into());
            r.validate().unwrap();
        }
        for bad in ["/tmp/a.wav", "s3://", "ftp://h/a", "file://", "media://"] {
            r.media.media_file_uri = Some(bad.into());
            assert!(
                matches!(
                    err(&r),
                    ValidationError::Pattern {
                        field: "Media.MediaFileUri",
                        ..
                    }
                ),
                "{bad}"
            );
        }

        let mut r = speaker_labels_request();
        let (longest, too_long) = ("a".repeat(63), "a".repeat(64));
        for ok in ["abc", "my.bucket-1", longest.as_str()] {
            r.output_bucket_name = ok.to_string();
            r.validate().unwrap();
        }
        for bad in ["Clinic", "-abc", "abc-", "a_b", "s3://abc"] {
            r.output_bucket_name = bad.into();
            assert!(
                matches!(
                    err(&r),
                    ValidationError::Pattern {
                        field: "OutputBucketName",
                        ..
                    }
                ),
                "{bad}"
            );
        }
        for bad in ["ab", too_long.as_str()] {
            r.output_bucket_name = bad.to_string();
            assert!(matches!(err(&r), ValidationError::Length { .. }), "{bad}");
        }
    }

    #[test]
    fn role_arn_and_kms_constraints() {
        let mut r = speaker_labels_request();
        for ok in [
            "arn:aws-us-gov:iam::111122223333:role/path/Name+x=y,z@w.v-u",
            "arn:aws-iso-b:iam::111122223333:role/R",
            "arn:aws-isob:iam::111122223333:role/R",
            "arn:aws-iso:iam::111122223333:role/R",
        ] {
            r.data_access_role_arn = Some(ok.into());
            r.validate().unwrap();
        }
        for bad in [
            "arn:aws:iam::111122223333:user/Bob",
            "arn:gcp:iam::111122223333:role/Role",
            "arn:aws:s3::111122223333:role/Role",
            "arn:aws:iam::12ab:role/RoleName",
            "arn:aws-iso-bb:iam::1:role/R",
        ] {
            r.data_access_role_arn = Some(bad.into());
            assert!(
                matches!(
                    err(&r),
                    ValidationError::Pattern {
                        field: "DataAccessRoleArn",
                        ..
                    }
                ),
                "{bad}"
            );
        }
        r.data_access_role_arn = Some("arn:aws:iam:::role/".into()); // 19 chars
        assert!(matches!(err(&r), ValidationError::Length { min: 20, .. }));
        r.data_access_role_arn = None;
        r.validate().unwrap();

        r.output_encryption_kms_key_id =
            Some("arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab".into());
        r.validate().unwrap();
        r.output_encryption_kms_key_id = Some("/leading-slash".into());
        assert!(matches!(
            err(&r),
            ValidationError::Pattern {
                field: "OutputEncryptionKMSKeyId",
                ..
            }
        ));
        r.output_encryption_kms_key_id = None;

        r.kms_encryption_context = Some(BTreeMap::new());
        assert_eq!(
            err(&r).to_string(),
            "KMSEncryptionContext must have 1 to 10 entries, got 0"
        );
        r.kms_encryption_context = Some([("clinic".into(), " ".into())].into());
        assert!(matches!(err(&r), ValidationError::Pattern { .. }));
        r.kms_encryption_context = Some([("clinic".into(), "north".into())].into());
        r.validate().unwrap();
    }

    #[test]
    fn tag_constraints() {
        let mut r = speaker_labels_request();
        r.tags = Some(vec![]);
        assert_eq!(
            err(&r).to_string(),
            "Tags must have 1 to 200 entries, got 0"
        );
        let tag = |k: &str, v: &str| Tag {
            key: k.into(),
            value: v.into(),
        };
        r.tags = Some(vec![tag("Department", "")]);
        r.validate().unwrap();
        r.tags = Some(vec![tag("", "x")]);
        assert!(matches!(
            err(&r),
            ValidationError::Length {
                field: "Tags.Key",
                ..
            }
        ));
        r.tags = Some(vec![tag("k", &"v".repeat(257))]);
        assert!(matches!(
            err(&r),
            ValidationError::Length {
                field: "Tags.Value",
                ..
            }
        ));
        r.tags = Some(vec![tag("k", "v"); 201]);
        assert!(matches!(
            err(&r),
            ValidationError::Count { actual: 201, .. }
        ));
    }

    #[test]
    fn other_request_validation() {
        GetMedicalScribeJobRequest {
            medical_scribe_job_name: "ok".into(),
        }
        .validate()
        .unwrap();
        assert!(DeleteMedicalScribeJobRequest {
            medical_scribe_job_name: "not ok".into()
        }
        .validate()
        .is_err());
        let mut list = ListMedicalScribeJobsRequest::default();
        list.validate().unwrap();
        list.max_results = Some(101);
        assert_eq!(
            list.validate().unwrap_err().to_string(),
            "MaxResults must be between 1 and 100, got 101"
        );
        list.max_results = Some(0);
        assert!(list.validate().is_err());
        list.max_results = Some(100);
        list.next_token = Some(String::new());
        assert!(list.validate().is_err());
    }

    #[test]
    fn note_template_names_and_aliases() {
        for (t, s) in [
            (NoteTemplate::HistoryAndPhysical, "HISTORY_AND_PHYSICAL"),
            (NoteTemplate::Girpp, "GIRPP"),
            (NoteTemplate::Birp, "BIRP"),
            (NoteTemplate::Sirp, "SIRP"),
            (NoteTemplate::Dap, "DAP"),
            (NoteTemplate::BehavioralSoap, "BEHAVIORAL_SOAP"),
            (NoteTemplate::PhysicalSoap, "PHYSICAL_SOAP"),
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), json!(s));
            assert_eq!(serde_json::from_value::<NoteTemplate>(json!(s)).unwrap(), t);
        }
        for (alias, t) in [
            ("BH_SOAP", NoteTemplate::BehavioralSoap),
            ("PH_SOAP", NoteTemplate::PhysicalSoap),
        ] {
            assert_eq!(
                serde_json::from_value::<NoteTemplate>(json!(alias)).unwrap(),
                t
            );
        }
        assert_eq!(NoteTemplate::default(), NoteTemplate::HistoryAndPhysical);
        let e = serde_json::from_value::<NoteTemplate>(json!("SOAP")).unwrap_err();
        assert!(e.to_string().contains("unknown variant `SOAP`"), "{e}");
    }

    #[test]
    fn closed_enums_reject_unknown_values() {
        for (value, result) in [
            (
                "RUNNING",
                serde_json::from_value::<MedicalScribeJobStatus>(json!("RUNNING")).map(|_| ()),
            ),
            (
                "en-GB",
                serde_json::from_value::<MedicalScribeLanguageCode>(json!("en-GB")).map(|_| ()),
            ),
            (
                "NURSE",
                serde_json::from_value::<MedicalScribeParticipantRole>(json!("NURSE")).map(|_| ()),
            ),
            (
                "MASK",
                serde_json::from_value::<VocabularyFilterMethod>(json!("MASK")).map(|_| ()),
            ),
            (
                "HE_HIS",
                serde_json::from_value::<Pronouns>(json!("HE_HIS")).map(|_| ()),
            ),
        ] {
            let e = result.unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("unknown variant `{value}`")),
                "{e}"
            );
        }
    }

    #[test]
    fn timestamps_accept_rfc3339_and_epoch_seconds() {
        for ok in [
            "2022-05-04T12:32:58.789000-07:00",
            "2024-02-29T23:59:60Z",
            "2024-03-05T14:07:09.123Z",
            "2024-03-05t14:07:09+05:30",
        ] {
            let t: DateTime = serde_json::from_value(json!(ok)).unwrap();
            assert_eq!(serde_json::to_value(&t).unwrap(), json!(ok));
        }
        for bad in [
            "2024-03-05",
            "2024-03-05 14:07:09Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-03-05T24:00:00Z",
            "2024-03-05T14:07:09",
            "2024-03-05T14:07:09.Z",
            "2024-03-05T14:07:09+0530",
            "1714000000",
        ] {
            let e = serde_json::from_value::<DateTime>(json!(bad)).unwrap_err();
            assert!(
                e.to_string().contains("not an RFC 3339 timestamp"),
                "{bad}: {e}"
            );
        }

        let t: DateTime = serde_json::from_value(json!(1_651_692_778.789)).unwrap();
        assert_eq!(t.as_str(), "2022-05-04T19:32:58.789Z");
        let t: DateTime = serde_json::from_value(json!(0)).unwrap();
        assert_eq!(t.as_str(), "1970-01-01T00:00:00.000Z");
        let t: DateTime = serde_json::from_value(json!(951_782_400)).unwrap();
        assert_eq!(t.as_str(), "2000-02-29T00:00:00.000Z");
        assert!(serde_json::from_value::<DateTime>(json!(-1)).is_err());
        assert!(serde_json::from_value::<DateTime>(json!(true)).is_err());

        let now = DateTime::now();
        assert!(now.as_str().parse::<DateTime>().is_ok(), "{now}");
        assert!(now.as_str() > "2024");
    }
}
