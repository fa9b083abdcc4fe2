//! The job service's side of the clinician review (issue 18): a completed job's review is
//! made from its stored draft on first read, changed one edit at a time with its audit
//! trail, and signed. Writing the signed Bundle to the EHR is the caller's (it needs the
//! clinician's token, which the service never holds); the service records the outcome, or
//! queues the Bundle on the EHR's outbox for backend-services write-back.

use serde_json::Value;

use super::{Caller, JobService, ServiceError, BUNDLE, DOCUMENTATION};
use crate::healthscribe::{ClinicalDocumentationFile, MedicalScribeJobStatus};
use crate::review::{AuditEntry, Edit, Review, ReviewError, SignState, Signature};
use crate::store::jobs::{ChartTarget, JobRecord};
use crate::store::reviews::Change;

/// Suffix of a signed Bundle's outbox key (the draft's key is the job's id).
const SIGNED_SUFFIX: &str = ":signed";

impl From<ReviewError> for ServiceError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::Signed => ServiceError::Conflict(e.to_string()),
            ReviewError::Bundle(_) => {
                tracing::error!(error = %e, "a stored Bundle is unreadable");
                ServiceError::Internal("the job's stored Bundle is unreadable".into())
            }
            other => ServiceError::BadRequest(other.to_string()),
        }
    }
}

/// What signing needs to write: the Bundle and where it goes.
pub struct SignRequest {
    pub review: Review,
    pub bundle: Value,
    pub chart: ChartTarget,
    /// `fullUrl` → `Type/id` of the draft's resources the EHR already holds (from the draft's
    /// delivery): a resource-by-resource write updates those in place.
    pub known_ids: std::collections::HashMap<String, String>,
}

impl JobService {
    fn completed_job(&self, name: &str, caller: &Caller) -> Result<JobRecord, ServiceError> {
        let job = self.visible_job(name, caller)?;
        if job.status != MedicalScribeJobStatus::Completed {
            return Err(ServiceError::NotFound(format!(
                "job {name} has no note to review yet"
            )));
        }
        Ok(job)
    }

    fn draft_bundle(&self, job: &JobRecord) -> Result<Option<Value>, ServiceError> {
        let Some(raw) = self.store.artifact(&job.name, BUNDLE)? else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| ReviewError::Bundle(e.to_string()).into())
    }

    /// The review of a completed job the caller sees, made from the AI draft on first read.
    pub fn review(&self, name: &str, caller: &Caller) -> Result<Review, ServiceError> {
        let job = self.completed_job(name, caller)?;
        if let Some(r) = self.reviews.get(&job.id)? {
            return Ok(r);
        }
        let raw = self
            .store
            .artifact(&job.name, DOCUMENTATION)?
            .ok_or_else(|| ServiceError::NotFound(format!("job {name} has no note")))?;
        let doc: ClinicalDocumentationFile = serde_json::from_slice(&raw).map_err(|e| {
            tracing::error!(error = %e, "stored documentation unreadable");
            ServiceError::Internal("the job's note is unreadable".into())
        })?;
        let spec = crate::jobs::JobSpec::from_request(&job.request, self.engine.jobs_config())
            .map_err(ServiceError::from)?;
        let template = self.engine.templates().get(spec.template).clone();
        let bundle = self.draft_bundle(&job)?;
        Ok(self.reviews.get_or_create(&job.id, || {
            Review::from_draft(
                &job.name,
                &doc.clinical_documentation,
                &template,
                bundle.as_ref(),
            )
        })?)
    }

    /// Applies one edit by `who` (the clinician's `fhirUser` or the session's subject).
    pub fn edit_review(
        &self,
        name: &str,
        caller: &Caller,
        who: &str,
        edit: &Edit,
    ) -> Result<Review, ServiceError> {
        let job = self.completed_job(name, caller)?;
        self.review(name, caller)?;
        let at = crate::store::outbox::now_ms();
        let (change, review) = self
            .reviews
            .update(&job.id, |r| r.apply(edit, who, at).map(|a| vec![a]))?;
        match change {
            Change::Saved(_) => review.ok_or_else(|| ServiceError::NotFound(name.to_owned())),
            Change::Refused(e) => Err(e.into()),
        }
    }

    /// Starts signing: builds the signed Bundle and marks the review `signing` (edits are
    /// refused from here on). A review left `signing` by a failed or interrupted write may be
    /// signed again: the Bundle is the same, and replaying it changes nothing twice.
    pub fn begin_sign(
        &self,
        name: &str,
        caller: &Caller,
        signer: Option<&str>,
        now: &str,
    ) -> Result<SignRequest, ServiceError> {
        let signer = signer.ok_or(ReviewError::NoSigner)?;
        let job = self.completed_job(name, caller)?;
        let chart = job.chart.clone().ok_or_else(|| {
            ServiceError::BadRequest(format!("job {name} names no EHR chart to write to"))
        })?;
        let draft = self
            .draft_bundle(&job)?
            .ok_or_else(|| ServiceError::NotFound(format!("job {name} has no FHIR Bundle")))?;
        self.review(name, caller)?;
        let system = self.engine.fhir().mapping.identifier_system("provenance");
        let at = crate::store::outbox::now_ms();
        let built = std::cell::RefCell::new(None);
        let (change, review) = self.reviews.update(&job.id, |r| {
            let at_str = match &r.signature {
                Some(Signature {
                    state: SignState::Signing,
                    at,
                    ..
                }) => at.clone(),
                Some(_) => return Err(ReviewError::Signed),
                None => now.to_owned(),
            };
            let bundle = r.sign_bundle(&draft, signer, &at_str, &system)?;
            r.signature = Some(Signature {
                by: signer.to_owned(),
                at: at_str,
                state: SignState::Signing,
            });
            r.sign_error = None;
            r.version += 1;
            *built.borrow_mut() = Some(bundle);
            Ok(vec![AuditEntry {
                at_ms: at,
                who: signer.to_owned(),
                action: "sign".into(),
                target: None,
                before: None,
                after: Some(r.markdown()),
            }])
        })?;
        match change {
            Change::Refused(e) => Err(e.into()),
            Change::Saved(_) => Ok(SignRequest {
                review: review
                    .clone()
                    .ok_or_else(|| ServiceError::NotFound(name.to_owned()))?,
                bundle: built
                    .into_inner()
                    .ok_or_else(|| ServiceError::Internal("signing failed".into()))?,
                known_ids: {
                    let mut k = self.delivered_ids(&job, &chart)?;
                    if let Some(r) = &review {
                        k.extend(r.written_ids.clone());
                    }
                    k
                },
                chart,
            }),
        }
    }

    /// Where the EHR put the draft's resources, when the draft was delivered: its
    /// transaction-response locations, in entry order.
    fn delivered_ids(
        &self,
        job: &JobRecord,
        chart: &ChartTarget,
    ) -> Result<std::collections::HashMap<String, String>, ServiceError> {
        let mut known = std::collections::HashMap::new();
        let Some(ob) = self.outboxes.get(&chart.ehr) else {
            return Ok(known);
        };
        let Some(e) = ob.outbox.get(&job.id)? else {
            return Ok(known);
        };
        if e.state != crate::store::outbox::DeliveryState::Delivered {
            return Ok(known);
        }
        let entries = e.bundle["entry"].as_array().cloned().unwrap_or_default();
        if entries.len() != e.locations.len() {
            return Ok(known); // not one location per entry: nothing can be matched safely
        }
        for (entry, loc) in entries.iter().zip(&e.locations) {
            let rel = loc.split("://").nth(1).map_or(loc.as_str(), |_| {
                // An absolute location: keep what follows the resource type's segment.
                let ty = entry["resource"]["resourceType"]
                    .as_str()
                    .unwrap_or("\u{0}");
                loc.rfind(&format!("/{ty}/"))
                    .map_or(loc.as_str(), |i| &loc[i + 1..])
            });
            let mut parts = rel.split('/');
            if let (Some(full), Some(ty), Some(id)) =
                (entry["fullUrl"].as_str(), parts.next(), parts.next())
            {
                known.insert(full.to_owned(), format!("{ty}/{id}"));
            }
        }
        Ok(known)
    }

    /// Records how the write went: `Ok(locations)` signs the review for good; `Err(reason)`
    /// leaves it `signing` (to be signed again) with the reason shown.
    pub fn finish_sign(
        &self,
        name: &str,
        caller: &Caller,
        who: &str,
        outcome: Result<Vec<String>, String>,
        written_ids: &std::collections::HashMap<String, String>,
    ) -> Result<Review, ServiceError> {
        let job = self.completed_job(name, caller)?;
        let at = crate::store::outbox::now_ms();
        let (_, review) = self.reviews.update(&job.id, |r| {
            r.written_ids
                .extend(written_ids.iter().map(|(k, v)| (k.clone(), v.clone())));
            let Some(sig) = r.signature.as_mut() else {
                return Err(ReviewError::NoSigner);
            };
            let (action, after) = match &outcome {
                Ok(written) => {
                    sig.state = SignState::Written {
                        written: written.clone(),
                    };
                    r.sign_error = None;
                    ("signed", Some(written.join("\n")))
                }
                Err(reason) => {
                    r.sign_error = Some(reason.clone());
                    ("sign-failed", Some(reason.clone()))
                }
            };
            r.version += 1;
            Ok(vec![AuditEntry {
                at_ms: at,
                who: who.to_owned(),
                action: action.into(),
                target: None,
                before: None,
                after,
            }])
        })?;
        review.ok_or_else(|| ServiceError::NotFound(name.to_owned()))
    }

    /// Backend-services write-back: the signed Bundle goes on the EHR's durable outbox (its
    /// own key, so the draft's delivery is untouched) and the review is marked queued.
    pub fn queue_sign(
        &self,
        name: &str,
        caller: &Caller,
        who: &str,
        req: SignRequest,
    ) -> Result<Review, ServiceError> {
        let job = self.completed_job(name, caller)?;
        let ob = self.outboxes.get(&req.chart.ehr).ok_or_else(|| {
            ServiceError::BadRequest(format!("EHR {} is not configured", req.chart.ehr))
        })?;
        ob.outbox
            .enqueue(&format!("{}{SIGNED_SUFFIX}", job.id), req.bundle)?;
        let at = crate::store::outbox::now_ms();
        let (_, review) = self.reviews.update(&job.id, |r| {
            if let Some(sig) = r.signature.as_mut() {
                sig.state = SignState::Queued;
            }
            r.version += 1;
            Ok::<_, ReviewError>(vec![AuditEntry {
                at_ms: at,
                who: who.to_owned(),
                action: "sign-queued".into(),
                target: None,
                before: None,
                after: None,
            }])
        })?;
        review.ok_or_else(|| ServiceError::NotFound(name.to_owned()))
    }

    /// The review (when one was started) and the audit trail of a job the caller sees.
    pub fn review_trail(
        &self,
        name: &str,
        caller: &Caller,
    ) -> Result<(Option<Review>, Vec<AuditEntry>), ServiceError> {
        let job = self.visible_job(name, caller)?;
        Ok((self.reviews.get(&job.id)?, self.reviews.trail(&job.id)?))
    }

    /// Removes a deleted job's review, its trail and an unsent signed Bundle.
    pub(super) fn delete_review(&self, job: &JobRecord) -> Result<(), crate::store::StoreError> {
        self.reviews.delete(&job.id)?;
        if let Some(chart) = &job.chart {
            if let Some(ob) = self.outboxes.get(&chart.ehr) {
                let key = format!("{}{SIGNED_SUFFIX}", job.id);
                if ob
                    .outbox
                    .get(&key)?
                    .is_some_and(|e| e.state != crate::store::outbox::DeliveryState::Delivered)
                {
                    ob.outbox.delete(&key)?;
                }
            }
        }
        Ok(())
    }
}
