//! `--llm-*` flags (or `FHIRSCRIBE_LLM_*`): the optional note rewrite by a language model. The
//! environment is read here, by clap, and nowhere in the library.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use crate::note::llm::LlmConfig;

#[derive(Args, Debug, Clone, Default)]
pub(super) struct LlmArgs {
    /// OpenAI-compatible endpoint for the optional note rewrite, up to the version path
    /// (e.g. http://127.0.0.1:8080/v1); unset = no rewrite. Rewritten sentences pass the
    /// evidence check or the original stays.
    #[arg(long, env = "FHIRSCRIBE_LLM_BASE_URL")]
    llm_base_url: Option<String>,
    /// Model name sent to the endpoint.
    #[arg(long, env = "FHIRSCRIBE_LLM_MODEL", default_value = "default")]
    llm_model: String,
    /// Bearer token for the endpoint, if it wants one.
    #[arg(long, env = "FHIRSCRIBE_LLM_API_KEY", hide_env_values = true)]
    llm_api_key: Option<String>,
    /// Limit for the whole rewrite call; on timeout the note is kept as built.
    #[arg(long, env = "FHIRSCRIBE_LLM_TIMEOUT_MS", default_value_t = 20_000)]
    llm_timeout_ms: u64,
}

impl LlmArgs {
    /// `None` (rewrite off) unless a base URL is given.
    pub(super) fn config(&self) -> Result<Option<LlmConfig>> {
        let Some(base_url) = self
            .llm_base_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            bail!("--llm-base-url must start with http:// or https://");
        }
        if self.llm_timeout_ms == 0 {
            bail!("--llm-timeout-ms must be above 0");
        }
        Ok(Some(LlmConfig {
            base_url: base_url.to_owned(),
            model: self.llm_model.clone(),
            api_key: self.llm_api_key.clone().filter(|k| !k.is_empty()),
            timeout: Duration::from_millis(self.llm_timeout_ms),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_without_a_base_url_and_typed_with_one() {
        assert_eq!(LlmArgs::default().config().unwrap(), None);
        let a = LlmArgs {
            llm_base_url: Some("http://127.0.0.1:8080/v1".into()),
            llm_model: "m".into(),
            llm_api_key: Some(String::new()),
            llm_timeout_ms: 1500,
        };
        let c = a.config().unwrap().unwrap();
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.api_key, None);
        let keyed = LlmArgs {
            llm_api_key: Some("s3cret".into()),
            ..a.clone()
        };
        let c = keyed.config().unwrap().unwrap();
        assert_eq!(c.api_key.as_deref(), Some("s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"), "{c:?}");
        let bad = LlmArgs {
            llm_base_url: Some("127.0.0.1:8080".into()),
            ..a
        };
        assert!(bad.config().is_err());
    }
}
