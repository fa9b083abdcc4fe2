//! whisper-rs backend of [`Recognizer`].

use super::{AsrError, RawToken, Recognizer};
use std::path::Path;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

#[derive(Clone, Debug)]
pub struct WhisperOptions {
    pub threads: usize,
    /// ISO 639-1 language, e.g. "en"; English-only models ignore it.
    pub language: String,
}

impl Default for WhisperOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(8);
        Self {
            threads,
            language: "en".into(),
        }
    }
}

pub struct WhisperRecognizer {
    ctx: WhisperContext,
    state: WhisperState,
    opts: WhisperOptions,
    /// `whisper <file name>` of the loaded model.
    name: String,
}

impl WhisperRecognizer {
    /// Loads any ggml whisper model (ours from `models fetch`, or one a user brings).
    pub fn load(model: &Path, opts: WhisperOptions) -> Result<Self, AsrError> {
        whisper_rs::install_logging_hooks(); // keep whisper.cpp's chatter off stderr
        let err = |detail: String| AsrError::Model {
            path: model.display().to_string(),
            detail,
        };
        if !model.is_file() {
            return Err(err("file not found".into()));
        }
        let path = model
            .to_str()
            .ok_or_else(|| err("path is not UTF-8".into()))?;
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| err(e.to_string()))?;
        let state = ctx.create_state().map_err(|e| err(e.to_string()))?;
        let name = format!(
            "whisper {}",
            model
                .file_name()
                .map_or_else(|| path.into(), |n| n.to_string_lossy())
        );
        Ok(Self {
            ctx,
            state,
            opts,
            name,
        })
    }

    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }
}

impl Recognizer for WhisperRecognizer {
    fn model_name(&self) -> Option<String> {
        Some(self.name.clone())
    }

    fn transcribe(
        &mut self,
        audio: &[f32],
        prompt: Option<&str>,
    ) -> Result<Vec<RawToken>, AsrError> {
        let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        p.set_n_threads(self.opts.threads as i32);
        if self.ctx.is_multilingual() {
            p.set_language(Some(&self.opts.language));
        }
        p.set_translate(false);
        p.set_no_context(true);
        p.set_token_timestamps(true);
        p.set_suppress_nst(true);
        p.set_print_progress(false);
        p.set_print_realtime(false);
        p.set_print_special(false);
        p.set_print_timestamps(false);
        if let Some(prompt) = prompt {
            p.set_initial_prompt(prompt);
        }
        self.state
            .full(p, audio)
            .map_err(|e| AsrError::Decode(e.to_string()))?;
        let eot = self.ctx.token_eot();
        let mut out = Vec::new();
        for seg in self.state.as_iter() {
            let utterance = (
                seg.start_timestamp() as f64 / 100.0,
                seg.end_timestamp() as f64 / 100.0,
            );
            for i in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(i) else {
                    continue;
                };
                let data = tok.token_data();
                if data.id >= eot {
                    continue; // special and timestamp tokens
                }
                let bytes = tok
                    .to_bytes()
                    .map_err(|e| AsrError::Decode(e.to_string()))?
                    .to_vec();
                out.push(RawToken {
                    bytes,
                    start: data.t0 as f64 / 100.0,
                    end: data.t1 as f64 / 100.0,
                    prob: data.p,
                    utterance,
                });
            }
        }
        Ok(out)
    }
}
