//! The review page (issue 18): the note by section beside the transcript (speaker roles,
//! section tags, clinical entities highlighted by category, negated and hypothetical marked);
//! each note sentence shows its evidence and plays that span of the audio. Edits are saved one
//! at a time as they are made; signing writes the note and the kept chart items to the EHR.
//! The domain rules live in [`crate::review`]; this file is HTML and HTTP only.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::ui::{
    access_token, caller_of, csrf_ok, ehr_base, esc, json_error, not_available, page_with, refusal,
    service_error, session, NoSession, UiEndpoint,
};
use super::State;
use crate::review::{Edit, Origin, Review, SignState};
use crate::store::sessions::Session;

/// Who an edit is recorded as: the clinician's `fhirUser`, else the session's EHR user.
fn who(s: &Session) -> String {
    s.fhir_user
        .clone()
        .unwrap_or_else(|| format!("session:{}", s.ehr))
}

/// An entity of the transcript, for highlighting: char range in its segment's `Content`.
struct Mark {
    begin: usize,
    end: usize,
    category: String,
    label: String,
}

/// The insights of the transcript by segment id, sorted, without overlaps.
fn marks(transcript: &Value) -> std::collections::HashMap<String, Vec<Mark>> {
    let mut by_seg: std::collections::HashMap<String, Vec<Mark>> = Default::default();
    for ins in transcript["Conversation"]["ClinicalInsights"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let category = ins["Category"].as_str().unwrap_or_default().to_owned();
        let traits: Vec<&str> = ins["Extensions"]["Traits"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["Name"].as_str())
            .filter(|n| matches!(*n, "NEGATION" | "HYPOTHETICAL" | "PERTAINS_TO_FAMILY"))
            .collect();
        let pretty = category.replace('_', " ").to_lowercase();
        let label = if traits.is_empty() {
            pretty
        } else {
            format!(
                "{pretty} ({})",
                traits
                    .iter()
                    .map(|t| match *t {
                        "NEGATION" => "negated",
                        "HYPOTHETICAL" => "hypothetical",
                        _ => "family",
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let class = format!(
            "{}{}",
            match category.as_str() {
                "MEDICAL_CONDITION" | "MEDICATION" | "TEST_TREATMENT_PROCEDURE" | "ANATOMY" =>
                    category.to_lowercase().replace('_', "-"),
                _ => "other".to_owned(),
            },
            traits
                .iter()
                .map(|t| match *t {
                    "NEGATION" => " negated",
                    "HYPOTHETICAL" => " hypothetical",
                    _ => " family",
                })
                .collect::<String>()
        );
        for sp in ins["Spans"].as_array().into_iter().flatten() {
            let (Some(seg), Some(b), Some(e)) = (
                sp["SegmentId"].as_str(),
                sp["BeginCharacterOffset"].as_u64(),
                sp["EndCharacterOffset"].as_u64(),
            ) else {
                continue;
            };
            // HealthScribe spans are end-inclusive (see `healthscribe::Span`).
            by_seg.entry(seg.to_owned()).or_default().push(Mark {
                begin: b as usize,
                end: e as usize + 1,
                category: class.clone(),
                label: label.clone(),
            });
        }
    }
    for v in by_seg.values_mut() {
        v.sort_by_key(|m| (m.begin, std::cmp::Reverse(m.end)));
        let mut last_end = 0;
        v.retain(|m| {
            let keep = m.begin >= last_end && m.end > m.begin;
            if keep {
                last_end = m.end;
            }
            keep
        });
    }
    by_seg
}

/// A segment's text with its entities in `<mark>`s (offsets are chars, end exclusive).
fn highlighted(content: &str, marks: Option<&Vec<Mark>>) -> String {
    let chars: Vec<char> = content.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    for m in marks.into_iter().flatten() {
        if m.end > chars.len() {
            break;
        }
        out.push_str(&esc(&chars[at..m.begin].iter().collect::<String>()));
        out.push_str(&format!(
            "<mark class=\"ent {}\" title=\"{}\">{}</mark>",
            esc(&m.category),
            esc(&m.label),
            esc(&chars[m.begin..m.end].iter().collect::<String>())
        ));
        at = m.end;
    }
    out.push_str(&esc(&chars[at..].iter().collect::<String>()));
    out
}

fn transcript_html(transcript: &Value) -> String {
    let marks = marks(transcript);
    let mut h = String::from(
        "<section class=\"transcript\" aria-labelledby=\"t-h\"><h2 id=\"t-h\">Transcript</h2>\
<p class=\"legend\">Highlighted: <mark class=\"ent medical-condition\">condition</mark> \
<mark class=\"ent medication\">medication</mark> \
<mark class=\"ent test-treatment-procedure\">test, treatment or procedure</mark> \
<mark class=\"ent anatomy\">anatomy</mark> \
<mark class=\"ent medical-condition negated\">negated</mark> \
<mark class=\"ent medical-condition hypothetical\">hypothetical</mark></p>",
    );
    for seg in transcript["Conversation"]["TranscriptSegments"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = seg["SegmentId"].as_str().unwrap_or_default();
        let role = seg["ParticipantDetails"]["ParticipantRole"]
            .as_str()
            .unwrap_or_default();
        h.push_str(&format!(
            "<div class=\"segment role-{rc}\" id=\"seg-{id}\" data-begin=\"{b}\" data-end=\"{e}\">\
<span class=\"role\">{role}</span> <span class=\"section-tag\">{sec}</span> \
<span class=\"time\">{t}</span><div>{text}</div></div>",
            rc = esc(&role.split('_').next().unwrap_or_default().to_lowercase()),
            id = esc(id),
            b = seg["BeginAudioTime"].as_f64().unwrap_or(0.0),
            e = seg["EndAudioTime"].as_f64().unwrap_or(0.0),
            role = esc(role),
            sec = esc(&seg["SectionDetails"]["SectionName"]
                .as_str()
                .unwrap_or_default()
                .replace('_', " ")
                .to_lowercase()),
            t = {
                let s = seg["BeginAudioTime"].as_f64().unwrap_or(0.0) as u64;
                format!("{}:{:02}", s / 60, s % 60)
            },
            text = highlighted(seg["Content"].as_str().unwrap_or_default(), marks.get(id)),
        ));
    }
    h.push_str("</section>");
    h
}

fn note_html(r: &Review, ehr_base: Option<&str>) -> String {
    let open = r.signature.is_none();
    let mut h = String::from(
        "<section class=\"note\" aria-labelledby=\"n-h\"><h2 id=\"n-h\">Note</h2>\
<p class=\"hint\">Select a sentence to see and hear its evidence.</p>",
    );
    for sec in &r.sections {
        if !open && sec.sentences.iter().all(|s| s.removed) {
            continue;
        }
        h.push_str(&format!(
            "<section class=\"note-section\" data-section=\"{n}\" aria-label=\"{t}\"><h3>{t}</h3><ul class=\"sentences\">",
            n = esc(&sec.name),
            t = esc(&sec.title)
        ));
        for s in &sec.sentences {
            if !open && s.removed {
                continue;
            }
            let tag = match (s.removed, s.origin) {
                (true, _) => "<span class=\"tag\">removed</span>",
                (_, Origin::Edited) => "<span class=\"tag\">edited</span>",
                (_, Origin::Clinician) => "<span class=\"tag\">clinician-written</span>",
                _ => "",
            };
            let controls = if open {
                format!(
                    "<button type=\"button\" class=\"edit\" aria-label=\"Edit this sentence\">Edit</button>\
<button type=\"button\" class=\"toggle\" aria-label=\"{a} this sentence\">{a}</button>",
                    a = if s.removed { "Restore" } else { "Remove" }
                )
            } else {
                String::new()
            };
            h.push_str(&format!(
                "<li class=\"sentence-row origin-{o}{rm}\" id=\"row-{id}\" data-id=\"{id}\">\
<button type=\"button\" class=\"sentence\" data-evidence=\"{ev}\">{text}</button> {tag}{controls}</li>",
                o = match s.origin {
                    Origin::Ai => "ai",
                    Origin::Edited => "edited",
                    Origin::Clinician => "clinician",
                },
                rm = if s.removed { " removed" } else { "" },
                id = esc(&s.id),
                ev = esc(&s.evidence.join(" ")),
                text = esc(&s.text),
            ));
        }
        h.push_str("</ul>");
        if open {
            h.push_str(&format!(
                "<form class=\"add-form\" data-section=\"{n}\"><label for=\"add-{n}\">Add to {t}</label> \
<input type=\"text\" id=\"add-{n}\" maxlength=\"{max}\" autocomplete=\"off\"> <button type=\"submit\">Add</button></form>",
                n = esc(&sec.name),
                t = esc(&sec.title.to_lowercase()),
                max = crate::review::MAX_SENTENCE_CHARS
            ));
        }
        h.push_str("</section>");
    }
    h.push_str("<section aria-labelledby=\"i-h\"><h2 id=\"i-h\">For the chart</h2>");
    if r.items.is_empty() {
        h.push_str("<p>No conditions or medications were found for the chart.</p>");
    } else {
        h.push_str("<ul class=\"items\">");
        for i in &r.items {
            if !open && i.removed {
                continue;
            }
            let kind = if i.resource_type == "Condition" {
                "Condition"
            } else {
                "Medication"
            };
            h.push_str(&format!(
                "<li class=\"item{rm}\" data-key=\"{k}\"><span class=\"kind\">{kind}</span> {d}{c}</li>",
                rm = if i.removed { " removed" } else { "" },
                k = esc(&i.key),
                d = esc(&i.display),
                c = if open {
                    format!(
                        " <button type=\"button\" class=\"item-toggle\" aria-label=\"{a} {d}\">{a}</button>",
                        a = if i.removed { "Keep" } else { "Remove" },
                        d = esc(&i.display)
                    )
                } else {
                    String::new()
                }
            ));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section><section aria-labelledby=\"s-h\"><h2 id=\"s-h\">Signature</h2>");
    match &r.signature {
        None
        | Some(crate::review::Signature {
            state: SignState::Signing,
            ..
        }) => {
            if let Some(e) = &r.sign_error {
                h.push_str(&format!(
                    "<p class=\"error\" role=\"alert\">The last attempt to write to the chart failed: {}. Sign again to retry.</p>",
                    esc(e)
                ));
            }
            h.push_str(
                "<p>Signing writes the note as final, keeps the chart items above, and records you as its verifier.</p>\
<button type=\"button\" id=\"sign\">Sign and write to the chart</button>",
            );
        }
        Some(sig) => {
            h.push_str(&format!(
                "<p id=\"signed\">Signed by {} at {}.</p>",
                esc(&sig.by),
                esc(&sig.at)
            ));
            match &sig.state {
                SignState::Written { written } => {
                    h.push_str("<p>Written to the chart:</p><ul id=\"written\">");
                    for loc in written {
                        let href = match ehr_base {
                            Some(b) if !loc.starts_with("http") => format!("{b}/{loc}"),
                            _ => loc.clone(),
                        };
                        h.push_str(&format!(
                            "<li><a href=\"{}\" rel=\"noreferrer\">{}</a></li>",
                            esc(&href),
                            esc(loc)
                        ));
                    }
                    h.push_str("</ul>");
                }
                SignState::Queued => h.push_str(
                    "<p>Queued for the chart: the service writes it and retries until the EHR accepts it.</p>",
                ),
                SignState::Signing => {}
            }
        }
    }
    h.push_str(
        "<p id=\"review-status\" role=\"status\" aria-live=\"polite\"></p></section></section>",
    );
    h
}

/// `GET /app/review/{name}`: the review page of one of the session patient's jobs.
pub async fn page(req: HttpRequest, state: State, path: web::Path<String>) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let s = match session(&req, ui).await {
        Ok(s) => s,
        Err(e) => return e.page(),
    };
    let Some(caller) = caller_of(&s) else {
        return NoSession::Expired.page();
    };
    let service = state.service.clone();
    let name = path.into_inner();
    let job_name = name.clone();
    let loaded = web::block(move || {
        let review = service.review(&name, &caller)?;
        let t = service.download(&name, crate::jobs::service::TRANSCRIPT, &caller)?;
        Ok::<_, crate::jobs::service::ServiceError>((review, t))
    })
    .await;
    let (review, t) = match loaded {
        Ok(Ok(v)) => v,
        _ => {
            return refusal(
                StatusCode::NOT_FOUND,
                "Not found",
                "No completed job of this patient has that name.",
            )
        }
    };
    let transcript: Value = serde_json::from_slice(&t).unwrap_or_default();
    let status = match &review.signature {
        None => "Draft: review, edit, then sign.",
        Some(sig) => match sig.state {
            SignState::Signing => "Signing did not finish: sign again.",
            _ => "Signed.",
        },
    };
    let player = format!(
        "<div class=\"review-bar\"><audio id=\"audio-player\" controls preload=\"metadata\" src=\"/app/jobs/{j}/audio\">\
The recording cannot be played in this browser.</audio> <span class=\"review-state\">{st}</span> \
<a href=\"/app\">Back to the encounter</a></div>",
        j = esc(&job_name),
        st = esc(status)
    );
    let body = format!(
        "{player}<div class=\"columns\" data-job=\"{j}\">{note}{tr}</div>",
        j = esc(&job_name),
        note = note_html(&review, ehr_base(ui, &s)),
        tr = transcript_html(&transcript)
    );
    page_with(StatusCode::OK, "Review", &body, &s.csrf)
}

/// The session (with its CSRF token checked) and caller of a state-changing request.
async fn changing(
    req: &HttpRequest,
    ui: &UiEndpoint,
) -> Result<(Session, crate::jobs::service::Caller), HttpResponse> {
    let s = session(req, ui)
        .await
        .map_err(|_| json_error(StatusCode::UNAUTHORIZED, "no active session"))?;
    if !csrf_ok(req, &s) {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            "the request lacks this session's CSRF token",
        ));
    }
    let caller = caller_of(&s).ok_or_else(|| {
        json_error(
            StatusCode::BAD_REQUEST,
            "this session has no patient from the EHR launch",
        )
    })?;
    Ok((s, caller))
}

/// `POST /app/review/{name}/edits`: one edit, saved before the answer.
pub async fn edit(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let (s, caller) = match changing(&req, ui).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let too_large = crate::api::error::ApiError::bad_request("the edit is too large");
    let body = match super::read_body(payload, 16 * 1024, state.body_timeout, too_large).await {
        Ok(b) => b,
        Err(e) => return json_error(e.status, &e.message),
    };
    let edit: Edit = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "not an edit ({e}): send {{\"op\": \"edit\"|\"remove\"|\"restore\"|\"add\"|\"remove-item\"|\"restore-item\", …}}"
                ),
            )
        }
    };
    let service = state.service.clone();
    let name = path.into_inner();
    let who = who(&s);
    match web::block(move || service.edit_review(&name, &caller, &who, &edit)).await {
        Ok(Ok(r)) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(r),
        Ok(Err(e)) => service_error(e),
        Err(_) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the edit could not be saved",
        ),
    }
}

/// `POST /app/review/{name}/sign`: signs and writes to the EHR, with the clinician's token
/// (`[ui] sign_write = "user"`) or through the service's outbox (`"backend"`).
pub async fn sign(req: HttpRequest, state: State, path: web::Path<String>) -> HttpResponse {
    let Some(ui) = state.ui.as_ref() else {
        return not_available();
    };
    let (s, caller) = match changing(&req, ui).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let service = state.service.clone();
    let name = path.into_inner();
    let (n, c) = (name.clone(), caller.clone());
    let signer = s.fhir_user.clone();
    let now = crate::healthscribe::DateTime::now().to_string();
    let begun = web::block(move || service.begin_sign(&n, &c, signer.as_deref(), &now)).await;
    let sign = match begun {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return service_error(e),
        Err(_) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, "signing failed"),
    };
    let who = who(&s);
    let service = state.service.clone();
    if ui.sign_write == crate::config::SignWrite::Backend {
        return match web::block(move || service.queue_sign(&name, &caller, &who, sign)).await {
            Ok(Ok(r)) => HttpResponse::Ok().json(r),
            Ok(Err(e)) => service_error(e),
            Err(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "signing failed"),
        };
    }
    let Some(base) = ehr_base(ui, &s) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "the session's EHR is not configured",
        );
    };
    let token = access_token(ui, &s).await;
    let client = crate::fhir::client::FhirClient::with_bearer(base, ui.http.clone(), &token);
    use crate::fhir::client::Attempt;
    let mut known = sign.known_ids.clone();
    let mut attempt = client.post_transaction(&sign.bundle).await;
    if matches!(
        attempt,
        Attempt::Dead {
            status: Some(403),
            ..
        }
    ) {
        // Many EHRs let a patient-scoped user token write single resources but not a
        // transaction: the same conditional writes, one at a time.
        tracing::info!(
            "the EHR refused the transaction to the user's token; writing resources one at a time"
        );
        attempt = client.write_entries(&sign.bundle, &mut known).await;
    }
    let outcome = match attempt {
        Attempt::Delivered { locations, .. } => Ok(locations),
        Attempt::Retry { reason, .. } | Attempt::Dead { reason, .. } => Err(reason),
    };
    let failed = outcome.is_err();
    match web::block(move || service.finish_sign(&name, &caller, &who, outcome, &known)).await {
        Ok(Ok(r)) if failed => HttpResponse::BadGateway().json(r),
        Ok(Ok(r)) => HttpResponse::Ok().json(r),
        Ok(Err(e)) => service_error(e),
        Err(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "signing failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_are_marked_by_char_offsets_without_overlap() {
        let t = serde_json::json!({"Conversation": {"ClinicalInsights": [
            {"Category": "MEDICAL_CONDITION", "Spans": [{"SegmentId": "a", "BeginCharacterOffset": 3, "EndCharacterOffset": 7}],
             "Extensions": {"Traits": [{"Name": "NEGATION", "Score": 0.9}]}},
            {"Category": "ANATOMY", "Spans": [{"SegmentId": "a", "BeginCharacterOffset": 4, "EndCharacterOffset": 5}]},
            {"Category": "MEDICATION", "Spans": [{"SegmentId": "a", "BeginCharacterOffset": 12, "EndCharacterOffset": 99}]}
        ]}});
        let m = marks(&t);
        assert_eq!(m["a"].len(), 2, "the overlapping anatomy span is dropped");
        let h = highlighted("No fever <é> x", m.get("a"));
        assert_eq!(
            h,
            "No <mark class=\"ent medical-condition negated\" title=\"medical condition (negated)\">fever</mark> &lt;é&gt; x"
        );
    }
}
