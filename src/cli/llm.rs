//! `--llm-*` flags: the optional note rewrite by a language model, on top of the configuration
//! (`[note.llm]`, `FHIRSCRIBE_LLM_*`, read by [`crate::config`]).

use clap::Args;

use crate::config::{Config, LlmSection};

#[derive(Args, Debug, Clone, Default)]
pub(super) struct LlmArgs {
    /// OpenAI-compatible endpoint for the optional note rewrite, up to the version path
    /// (e.g. http://127.0.0.1:8080/v1); unset = no rewrite. Rewritten sentences pass the
    /// evidence check or the original stays. Also FHIRSCRIBE_LLM_BASE_URL or [note.llm].
    #[arg(long)]
    llm_base_url: Option<String>,
    /// Model name sent to the endpoint (default "default").
    #[arg(long)]
    llm_model: Option<String>,
    /// Limit for the whole rewrite call in ms (default 20000); on timeout the note is kept as
    /// built. The API key comes only from FHIRSCRIBE_LLM_API_KEY or the config file.
    #[arg(long)]
    llm_timeout_ms: Option<u64>,
}

impl LlmArgs {
    /// Puts the flags over the configuration's `[note.llm]`.
    pub(super) fn apply(&self, cfg: &mut Config) {
        if let Some(url) = &self.llm_base_url {
            let llm = cfg.note.llm.get_or_insert_with(|| LlmSection {
                base_url: String::new(),
                model: "default".into(),
                api_key: None,
                timeout_ms: 20_000,
            });
            llm.base_url = url.clone();
        }
        if let Some(llm) = &mut cfg.note.llm {
            if let Some(m) = &self.llm_model {
                llm.model = m.clone();
            }
            if let Some(t) = self.llm_timeout_ms {
                llm.timeout_ms = t;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn flags_override_the_configuration() {
        let mut cfg = Config::default();
        LlmArgs::default().apply(&mut cfg);
        assert_eq!(cfg.llm().unwrap(), None);
        LlmArgs {
            llm_base_url: Some("http://127.0.0.1:8080/v1".into()),
            llm_model: Some("m".into()),
            llm_timeout_ms: Some(1500),
        }
        .apply(&mut cfg);
        let c = cfg.llm().unwrap().unwrap();
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.model, "m");
        let mut bad = Config::default();
        LlmArgs {
            llm_base_url: Some("127.0.0.1:8080".into()),
            ..Default::default()
        }
        .apply(&mut bad);
        assert!(bad.check().is_err());
    }
}
