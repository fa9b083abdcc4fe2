//! CTranslate2 (faster-whisper) `model.bin` → whisper.cpp ggml converter.
//!
//! No registry package ships ggml whisper weights, but several ship faster-whisper's CTranslate2
//! weights (fp16). This module reads that format (binary v5/v6, WhisperSpec), renames the
//! variables to OpenAI's state-dict names (splitting CT2's fused qkv / kv projections) and writes
//! the exact layout of whisper.cpp's `convert-pt-to-ggml.py`, so whisper.cpp loads it like an
//! upstream model. Mel filters and the BPE vocabulary come from the openai-whisper sdist.
//!
//! Invariant: the output is a pure function of the inputs (byte-identical on every run), which is
//! what lets `models fetch` pin it by sha256.

use half::f16;
use std::collections::HashMap;
use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    #[error("CTranslate2 model is truncated or malformed at byte {offset}: {what}")]
    Malformed { offset: usize, what: String },
    #[error("unsupported CTranslate2 binary version {0} (need 5 or 6)")]
    Version(u32),
    #[error("unsupported CTranslate2 data type {dtype} for variable {name}")]
    DType { name: String, dtype: u8 },
    #[error("variable {0} missing from the CTranslate2 model")]
    Missing(String),
    #[error("bad .npy array {name}: {what}")]
    Npy { name: String, what: String },
    #[error("bad tiktoken vocabulary line {line}")]
    Vocab { line: usize },
}

/// One tensor: shape (row-major, outermost first) and values widened to f32.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

struct Reader<'a> {
    data: &'a [u8],
    off: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Ct2Error> {
        if self.off + n > self.data.len() {
            return Err(Ct2Error::Malformed {
                offset: self.off,
                what: what.into(),
            });
        }
        let s = &self.data[self.off..self.off + n];
        self.off += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, Ct2Error> {
        Ok(self.take(1, "u8")?[0])
    }
    fn u16(&mut self) -> Result<u16, Ct2Error> {
        Ok(u16::from_le_bytes(self.take(2, "u16")?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, Ct2Error> {
        Ok(u32::from_le_bytes(self.take(4, "u32")?.try_into().unwrap()))
    }
    fn string(&mut self) -> Result<String, Ct2Error> {
        let n = self.u16()? as usize;
        let raw = self.take(n, "string")?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        Ok(String::from_utf8_lossy(raw).into_owned())
    }
}

/// Parsed CT2 model: variables by name (aliases resolved on lookup).
pub struct Ct2Model {
    pub spec: String,
    vars: HashMap<String, Tensor>,
    aliases: HashMap<String, String>,
}

impl Ct2Model {
    pub fn parse(data: &[u8]) -> Result<Self, Ct2Error> {
        let mut r = Reader { data, off: 0 };
        let version = r.u32()?;
        if !(5..=6).contains(&version) {
            return Err(Ct2Error::Version(version));
        }
        let spec = r.string()?;
        let _revision = r.u32()?;
        let nvars = r.u32()?;
        let mut vars = HashMap::new();
        for _ in 0..nvars {
            let name = r.string()?;
            let rank = r.u8()? as usize;
            let shape = (0..rank)
                .map(|_| r.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let dtype = r.u8()?;
            let nbytes = r.u32()? as usize;
            let raw = r.take(nbytes, "tensor data")?;
            let data: Vec<f32> = match dtype {
                0 => raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                // Integer variables are spec configuration (activation kinds, flags), not weights.
                1 => raw.iter().map(|&b| b as i8 as f32).collect(),
                2 => raw
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                3 => raw
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                4 => raw
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes(c.try_into().unwrap()).to_f32())
                    .collect(),
                5 => raw
                    .chunks_exact(2)
                    .map(|c| {
                        f32::from_bits((u16::from_le_bytes(c.try_into().unwrap()) as u32) << 16)
                    })
                    .collect(),
                d => return Err(Ct2Error::DType { name, dtype: d }),
            };
            vars.insert(name, Tensor { shape, data });
        }
        let mut aliases = HashMap::new();
        if r.off < data.len() {
            for _ in 0..r.u32()? {
                let a = r.string()?;
                let b = r.string()?;
                aliases.insert(a, b);
            }
        }
        Ok(Self {
            spec,
            vars,
            aliases,
        })
    }

    fn get(&self, name: &str) -> Result<&Tensor, Ct2Error> {
        let key = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        self.vars
            .get(key)
            .ok_or_else(|| Ct2Error::Missing(name.to_string()))
    }

    fn count_layers(&self, prefix: &str) -> usize {
        let mut n = 0;
        while self
            .vars
            .keys()
            .any(|k| k.starts_with(&format!("{prefix}/layer_{n}/")))
        {
            n += 1;
        }
        n
    }
}

/// Splits the first dimension of a tensor into `parts` equal pieces.
fn split_rows(t: &Tensor, parts: usize) -> Vec<Tensor> {
    let rows = t.shape[0] / parts;
    let per = t.data.len() / parts;
    (0..parts)
        .map(|i| {
            let mut shape = t.shape.clone();
            shape[0] = rows;
            Tensor {
                shape,
                data: t.data[i * per..(i + 1) * per].to_vec(),
            }
        })
        .collect()
}

/// OpenAI state-dict (name, tensor) pairs, in the order OpenAI's checkpoints list them.
pub fn to_openai(m: &Ct2Model) -> Result<Vec<(String, Tensor)>, Ct2Error> {
    let mut sd: Vec<(String, Tensor)> = Vec::new();
    let mut put = |n: String, t: &Tensor| sd.push((n, t.clone()));
    for i in [1, 2] {
        put(
            format!("encoder.conv{i}.weight"),
            m.get(&format!("encoder/conv{i}/weight"))?,
        );
        put(
            format!("encoder.conv{i}.bias"),
            m.get(&format!("encoder/conv{i}/bias"))?,
        );
    }
    put(
        "encoder.positional_embedding".into(),
        m.get("encoder/position_encodings/encodings")?,
    );
    let n_enc = m.count_layers("encoder");
    let n_dec = m.count_layers("decoder");

    let attn = |ct2: &str,
                oa: &str,
                fused_qkv: bool,
                out: &mut Vec<(String, Tensor)>|
     -> Result<(), Ct2Error> {
        let out_layer = if fused_qkv { "linear_1" } else { "linear_2" };
        if fused_qkv {
            let w = split_rows(m.get(&format!("{ct2}/linear_0/weight"))?, 3);
            let b = split_rows(m.get(&format!("{ct2}/linear_0/bias"))?, 3);
            out.push((format!("{oa}.query.weight"), w[0].clone()));
            out.push((format!("{oa}.query.bias"), b[0].clone()));
            out.push((format!("{oa}.key.weight"), w[1].clone()));
            out.push((format!("{oa}.value.weight"), w[2].clone()));
            out.push((format!("{oa}.value.bias"), b[2].clone()));
        } else {
            out.push((
                format!("{oa}.query.weight"),
                m.get(&format!("{ct2}/linear_0/weight"))?.clone(),
            ));
            out.push((
                format!("{oa}.query.bias"),
                m.get(&format!("{ct2}/linear_0/bias"))?.clone(),
            ));
            let w = split_rows(m.get(&format!("{ct2}/linear_1/weight"))?, 2);
            let b = split_rows(m.get(&format!("{ct2}/linear_1/bias"))?, 2);
            out.push((format!("{oa}.key.weight"), w[0].clone()));
            out.push((format!("{oa}.value.weight"), w[1].clone()));
            out.push((format!("{oa}.value.bias"), b[1].clone()));
        }
        out.push((
            format!("{oa}.out.weight"),
            m.get(&format!("{ct2}/{out_layer}/weight"))?.clone(),
        ));
        out.push((
            format!("{oa}.out.bias"),
            m.get(&format!("{ct2}/{out_layer}/bias"))?.clone(),
        ));
        Ok(())
    };
    let block = |ct2: &str,
                 oa: &str,
                 cross: bool,
                 out: &mut Vec<(String, Tensor)>|
     -> Result<(), Ct2Error> {
        attn(
            &format!("{ct2}/self_attention"),
            &format!("{oa}.attn"),
            true,
            out,
        )?;
        let ln = |n: &str, p: &str, out: &mut Vec<(String, Tensor)>| -> Result<(), Ct2Error> {
            out.push((
                format!("{oa}.{n}.weight"),
                m.get(&format!("{ct2}/{p}/gamma"))?.clone(),
            ));
            out.push((
                format!("{oa}.{n}.bias"),
                m.get(&format!("{ct2}/{p}/beta"))?.clone(),
            ));
            Ok(())
        };
        ln("attn_ln", "self_attention/layer_norm", out)?;
        if cross {
            attn(
                &format!("{ct2}/attention"),
                &format!("{oa}.cross_attn"),
                false,
                out,
            )?;
            ln("cross_attn_ln", "attention/layer_norm", out)?;
        }
        for (i, oi) in [(0, 0), (1, 2)] {
            out.push((
                format!("{oa}.mlp.{oi}.weight"),
                m.get(&format!("{ct2}/ffn/linear_{i}/weight"))?.clone(),
            ));
            out.push((
                format!("{oa}.mlp.{oi}.bias"),
                m.get(&format!("{ct2}/ffn/linear_{i}/bias"))?.clone(),
            ));
        }
        ln("mlp_ln", "ffn/layer_norm", out)?;
        Ok(())
    };
    for i in 0..n_enc {
        block(
            &format!("encoder/layer_{i}"),
            &format!("encoder.blocks.{i}"),
            false,
            &mut sd,
        )?;
    }
    sd.push((
        "encoder.ln_post.weight".into(),
        m.get("encoder/layer_norm/gamma")?.clone(),
    ));
    sd.push((
        "encoder.ln_post.bias".into(),
        m.get("encoder/layer_norm/beta")?.clone(),
    ));
    sd.push((
        "decoder.token_embedding.weight".into(),
        m.get("decoder/embeddings/weight")?.clone(),
    ));
    sd.push((
        "decoder.positional_embedding".into(),
        m.get("decoder/position_encodings/encodings")?.clone(),
    ));
    for i in 0..n_dec {
        block(
            &format!("decoder/layer_{i}"),
            &format!("decoder.blocks.{i}"),
            true,
            &mut sd,
        )?;
    }
    sd.push((
        "decoder.ln.weight".into(),
        m.get("decoder/layer_norm/gamma")?.clone(),
    ));
    sd.push((
        "decoder.ln.bias".into(),
        m.get("decoder/layer_norm/beta")?.clone(),
    ));
    Ok(sd)
}

/// Reads one float32 array from a `.npy` file (little-endian, C order).
pub fn read_npy_f32(name: &str, bytes: &[u8]) -> Result<Tensor, Ct2Error> {
    let bad = |what: &str| Ct2Error::Npy {
        name: name.into(),
        what: what.into(),
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing NUMPY magic"));
    }
    let (hlen, hstart) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(
        bytes
            .get(hstart..hstart + hlen)
            .ok_or_else(|| bad("short header"))?,
    )
    .map_err(|_| bad("header not UTF-8"))?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(bad("expected little-endian float32 in C order"));
    }
    let shape_str = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape: Vec<usize> = shape_str
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_, _>>()?;
    let body = &bytes[hstart + hlen..];
    let n: usize = shape.iter().product();
    if body.len() < n * 4 {
        return Err(bad("truncated data"));
    }
    let data = body[..n * 4]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Ok(Tensor { shape, data })
}

/// Decodes a tiktoken BPE file (`base64 rank` per line) into token byte strings, in file order.
pub fn read_tiktoken(text: &[u8]) -> Result<Vec<Vec<u8>>, Ct2Error> {
    use base64::Engine;
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            let tok = l.split(|&b| b == b' ').next().unwrap_or_default();
            // Python's b64decode is lenient: multilingual.tiktoken has a bare "=" (empty token).
            let tok: &[u8] = &tok[..tok.iter().rposition(|&b| b != b'=').map_or(0, |p| p + 1)];
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(tok)
                .map_err(|_| Ct2Error::Vocab { line: i + 1 })
        })
        .collect()
}

/// Writes whisper.cpp's ggml model layout (as `convert-pt-to-ggml.py` does, f16 weights).
pub fn write_ggml<W: Write>(
    out: &mut W,
    model: &Ct2Model,
    mel_filters_npz: &HashMap<String, Tensor>,
    tokens: &[Vec<u8>],
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let sd = to_openai(model)?;
    let find = |n: &str| {
        sd.iter()
            .find(|(k, _)| k == n)
            .map(|(_, t)| t)
            .ok_or_else(|| Ct2Error::Missing(n.into()))
    };
    let tok = find("decoder.token_embedding.weight")?;
    let (n_vocab, n_text_state) = (tok.shape[0], tok.shape[1]);
    let pe = find("encoder.positional_embedding")?;
    let (n_audio_ctx, n_audio_state) = (pe.shape[0], pe.shape[1]);
    let n_text_ctx = find("decoder.positional_embedding")?.shape[0];
    let n_mels = find("encoder.conv1.weight")?.shape[1];
    let n_enc = model.count_layers("encoder");
    let n_dec = model.count_layers("decoder");
    const HEAD_DIM: usize = 64; // every Whisper size uses 64-dim attention heads
    let filters = mel_filters_npz
        .get(&format!("mel_{n_mels}"))
        .ok_or_else(|| Ct2Error::Missing(format!("mel_{n_mels} in mel_filters.npz")))?;

    let i32le = |v: usize| (v as i32).to_le_bytes();
    out.write_all(&0x6767_6d6c_i32.to_le_bytes())?;
    for v in [
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_state / HEAD_DIM,
        n_enc,
        n_text_ctx,
        n_text_state,
        n_text_state / HEAD_DIM,
        n_dec,
        n_mels,
        1, // use_f16
    ] {
        out.write_all(&i32le(v))?;
    }
    out.write_all(&i32le(filters.shape[0]))?;
    out.write_all(&i32le(filters.shape[1]))?;
    for v in &filters.data {
        out.write_all(&v.to_le_bytes())?;
    }
    out.write_all(&i32le(tokens.len()))?;
    for t in tokens {
        out.write_all(&i32le(t.len()))?;
        out.write_all(t)?;
    }
    for (name, t) in &sd {
        // numpy's squeeze() for ndim > 1, and conv biases as [n, 1] columns.
        let mut shape: Vec<usize> = if t.shape.len() > 1 {
            t.shape.iter().copied().filter(|&d| d != 1).collect()
        } else {
            t.shape.clone()
        };
        let conv_bias = name == "encoder.conv1.bias" || name == "encoder.conv2.bias";
        if conv_bias {
            shape = vec![t.shape[0], 1];
        }
        let nd = shape.len();
        let keep_f32 = nd < 2 || conv_bias || name.ends_with("positional_embedding");
        out.write_all(&i32le(nd))?;
        out.write_all(&i32le(name.len()))?;
        out.write_all(&i32le(if keep_f32 { 0 } else { 1 }))?;
        for d in shape.iter().rev() {
            out.write_all(&i32le(*d))?;
        }
        out.write_all(name.as_bytes())?;
        let mut buf = Vec::with_capacity(t.data.len() * if keep_f32 { 4 } else { 2 });
        for v in &t.data {
            if keep_f32 {
                buf.extend_from_slice(&v.to_le_bytes());
            } else {
                buf.extend_from_slice(&f16::from_f32(*v).to_le_bytes());
            }
        }
        out.write_all(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_str(b: &mut Vec<u8>, s: &str) {
        let mut raw = s.as_bytes().to_vec();
        raw.push(0);
        b.extend_from_slice(&(raw.len() as u16).to_le_bytes());
        b.extend_from_slice(&raw);
    }

    #[test]
    fn parses_variables_and_aliases() {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        push_str(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        push_str(&mut b, "x/weight");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&f16::from_f32(1.5).to_le_bytes());
        b.extend_from_slice(&f16::from_f32(-2.0).to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        push_str(&mut b, "y/weight");
        push_str(&mut b, "x/weight");
        let m = Ct2Model::parse(&b).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.get("y/weight").unwrap().data, vec![1.5, -2.0]);
        assert_eq!(m.get("x/weight").unwrap().shape, vec![2, 1]);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        push_str(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        push_str(&mut b, "x");
        b.push(1);
        b.extend_from_slice(&1000u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&2000u32.to_le_bytes());
        assert!(matches!(
            Ct2Model::parse(&b),
            Err(Ct2Error::Malformed { .. })
        ));
        assert!(matches!(
            Ct2Model::parse(&[9, 0, 0, 0]),
            Err(Ct2Error::Version(9))
        ));
    }

    #[test]
    fn reads_npy_header_and_data() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        for i in 0..6 {
            b.extend_from_slice(&(i as f32).to_le_bytes());
        }
        let t = read_npy_f32("mel", &b).unwrap();
        assert_eq!(t.shape, vec![2, 3]);
        assert_eq!(t.data[5], 5.0);
    }

    #[test]
    fn reads_tiktoken() {
        let toks = read_tiktoken(b"IQ== 0\nIg== 1\n").unwrap();
        assert_eq!(toks, vec![b"!".to_vec(), b"\"".to_vec()]);
        assert!(read_tiktoken(b"@@@ 0\n").is_err());
        assert_eq!(read_tiktoken(b"= 7\n").unwrap(), vec![Vec::<u8>::new()]);
    }
}
