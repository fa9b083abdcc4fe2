//! The review app's server-side state: logins between the redirect to the EHR's authorization
//! server and the callback, and signed-in sessions (the browser holds only a random id in an
//! HttpOnly cookie; tokens stay here).
//!
//! Invariants: a login is taken once ([`SessionStore::take_login`] removes it atomically, so a
//! replayed callback finds nothing); a session past its idle or absolute limit is gone when
//! read; every change is flushed before the call returns.

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::smart::launch::PendingLogin;

const LOGINS: &str = "ui_logins";
const SESSIONS: &str = "ui_sessions";

/// A signed-in clinician, bound to the patient and encounter the EHR launched the app for.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The cookie's value: 256 random bits.
    pub id: String,
    /// The configured EHR it came from.
    pub ehr: String,
    /// Patient and encounter ids from the launch context (None for a standalone launch that
    /// picked none): nothing of another patient is reachable from this session.
    pub patient: Option<String>,
    pub encounter: Option<String>,
    /// `fhirUser` of the id_token (e.g. `Practitioner/123`), when given.
    pub fhir_user: Option<String>,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix ms).
    pub token_expires_ms: u64,
    /// Where a refresh token is redeemed.
    #[serde(default)]
    pub token_endpoint: String,
    /// Sent with every state-changing request (header `X-CSRF-Token` or form field `csrf`).
    pub csrf: String,
    pub created_ms: u64,
    pub last_seen_ms: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("ehr", &self.ehr)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// Session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session unused this long is gone.
    pub idle_ms: u64,
    /// A session this old is gone, used or not.
    pub max_ms: u64,
    /// A login not completed within this is gone.
    pub login_ms: u64,
}

#[derive(Clone)]
pub struct SessionStore {
    logins: sled::Tree,
    sessions: sled::Tree,
    limits: SessionLimits,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(StoreError::Encode)
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, raw: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
        key: what.to_owned(),
        reason: e.to_string(),
    })
}

impl SessionStore {
    pub fn open(db: &sled::Db, limits: SessionLimits) -> Result<Self, StoreError> {
        Ok(Self {
            logins: db.open_tree(LOGINS)?,
            sessions: db.open_tree(SESSIONS)?,
            limits,
        })
    }

    pub fn put_login(&self, login: &PendingLogin) -> Result<(), StoreError> {
        self.logins.insert(login.state.as_bytes(), encode(login)?)?;
        self.logins.flush()?;
        Ok(())
    }

    /// The login of `state`, removed (one use); None if unknown, used or expired.
    pub fn take_login(&self, state: &str, now_ms: u64) -> Result<Option<PendingLogin>, StoreError> {
        let Some(raw) = self.logins.remove(state.as_bytes())? else {
            return Ok(None);
        };
        self.logins.flush()?;
        let login: PendingLogin = decode("ui login", &raw)?;
        Ok((now_ms.saturating_sub(login.created_ms) <= self.limits.login_ms).then_some(login))
    }

    pub fn put(&self, s: &Session) -> Result<(), StoreError> {
        self.sessions.insert(s.id.as_bytes(), encode(s)?)?;
        self.sessions.flush()?;
        Ok(())
    }

    /// The live session `id`, its last use moved to `now_ms`; an expired one is removed.
    /// Read-modify-write in one atomic step, so a concurrent token refresh is never undone.
    pub fn touch(&self, id: &str, now_ms: u64) -> Result<Option<Session>, StoreError> {
        let limits = self.limits;
        let mut corrupt = None;
        let after = self.sessions.update_and_fetch(id.as_bytes(), |old| {
            let raw = old?;
            let mut s: Session = match decode("ui session", raw) {
                Ok(s) => s,
                Err(e) => {
                    corrupt = Some(e);
                    return Some(raw.to_vec());
                }
            };
            let idle = now_ms.saturating_sub(s.last_seen_ms) > limits.idle_ms;
            let old = now_ms.saturating_sub(s.created_ms) > limits.max_ms;
            if idle || old {
                return None;
            }
            s.last_seen_ms = now_ms;
            encode(&s).ok()
        })?;
        if let Some(e) = corrupt {
            return Err(e);
        }
        self.sessions.flush()?;
        after.map(|raw| decode("ui session", &raw)).transpose()
    }

    /// The session as stored (no expiry check, no touch): for re-reading tokens.
    pub fn get(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.sessions
            .get(id.as_bytes())?
            .map(|raw| decode("ui session", &raw))
            .transpose()
    }

    /// Replaces the session's tokens after a refresh (atomically, beside concurrent touches).
    pub fn set_tokens(
        &self,
        id: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        self.sessions.update_and_fetch(id.as_bytes(), |old| {
            let raw = old?;
            let mut s: Session = decode("ui session", raw).ok()?;
            s.access_token = access_token.to_owned();
            if let Some(r) = refresh_token {
                s.refresh_token = Some(r.to_owned());
            }
            s.token_expires_ms = expires_ms;
            encode(&s).ok()
        })?;
        self.sessions.flush()?;
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.sessions.remove(id.as_bytes())?;
        self.sessions.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(idle_ms: u64) -> (tempfile::TempDir, SessionStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open_db(dir.path()).unwrap();
        let limits = SessionLimits {
            idle_ms,
            max_ms: 10_000,
            login_ms: 600,
        };
        let s = SessionStore::open(&db, limits).unwrap();
        (dir, s)
    }

    fn login(created_ms: u64) -> PendingLogin {
        PendingLogin {
            state: "st".into(),
            verifier: "v".into(),
            ehr: "main".into(),
            token_endpoint: "http://t".into(),
            created_ms,
            issuer: None,
            jwks_uri: None,
        }
    }

    #[test]
    fn a_login_is_taken_once_and_expires() {
        let (_d, s) = store(100);
        s.put_login(&login(1000)).unwrap();
        assert!(s.take_login("st", 1100).unwrap().is_some());
        assert!(s.take_login("st", 1100).unwrap().is_none(), "one use");
        s.put_login(&login(1000)).unwrap();
        assert!(s.take_login("st", 1601).unwrap().is_none(), "expired");
        assert!(s.take_login("other", 1000).unwrap().is_none());
    }

    #[test]
    fn sessions_end_when_idle_or_old() {
        let (_d, s) = store(100);
        let sess = Session {
            id: "id1".into(),
            ehr: "main".into(),
            patient: Some("p1".into()),
            encounter: None,
            fhir_user: None,
            access_token: "secret-token".into(),
            refresh_token: None,
            token_expires_ms: 0,
            token_endpoint: String::new(),
            csrf: "c".into(),
            created_ms: 0,
            last_seen_ms: 0,
        };
        assert!(!format!("{sess:?}").contains("secret-token"));
        s.put(&sess).unwrap();
        assert!(s.touch("id1", 50).unwrap().is_some());
        assert!(
            s.touch("id1", 140).unwrap().is_some(),
            "used at 50: not idle"
        );
        assert!(s.touch("id1", 300).unwrap().is_none(), "idle");
        assert!(s.touch("id1", 300).unwrap().is_none(), "and removed");
        let mut long = sess.clone();
        long.id = "id2".into();
        s.put(&long).unwrap();
        for t in (90..10_000).step_by(90) {
            assert!(s.touch("id2", t).unwrap().is_some(), "{t}");
        }
        assert!(s.touch("id2", 10_050).unwrap().is_none(), "too old");
    }
}
