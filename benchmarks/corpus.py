"""Deterministic synthetic corpus with planted near-duplicates of known exact Jaccard similarity.

``N`` documents of about 200 words drawn from a pseudo-English vocabulary (a few thousand words,
Zipf-like frequencies, sentences with capitals and punctuation, a few non-ASCII words). About
``dup_fraction`` of the documents are near-duplicates: a copy of a source document edited by word
substitutions, insertions and deletions until the exact Jaccard similarity of the two 5-word
shingle sets reaches a target drawn from ``sim_range`` (plus cosmetic edits, case, punctuation,
extra spaces, that normalization removes). Most families are a source and one copy; some have a
second copy (of the source or of the first copy). Every pair inside a family is ground truth with
its exact Jaccard, computed with plain Python sets after the default normalization (NFKC, lower
case, Unicode punctuation and symbols -> space, whitespace collapsed).

Corpora are cached as Parquet under ``.bench/`` in the repo root, keyed by every parameter.

Example:
    >>> c = generate(200, seed=1)
    >>> len(c.texts), len(c.pairs) > 0, all(0 <= i < j < 200 for i, j, _ in c.pairs)
    (200, True, True)
    >>> c.pairs[0][2] == jaccard(c.texts[c.pairs[0][0]], c.texts[c.pairs[0][1]])
    True
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".bench"
GEN_VERSION = 1  # bump when generation changes, so cached corpora are not reused

_FUNCTION_TEXT = (
    "the of and to a in is it you that he was for on are with as his they be at one have this from or had by "
    "but what some we can out other were all there when up use your how said an each she which do their time "
    "if will way about many then them would like so these her long make thing see him two has look more day "
    "could go come did my no most who over know than call first may down side been now find"
)
_ONSETS_TEXT = "b c d f g h j k l m n p r s t v w z bl br ch cl cr dr fl fr gl gr pl pr sc sh sl sp st str th tr wh"
_VOWELS_TEXT = "a e i o u ai ea ee ie oa ou y"
_FUNCTION_WORDS, _ONSETS, _VOWELS = _FUNCTION_TEXT.split(), _ONSETS_TEXT.split(), _VOWELS_TEXT.split()
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "ng", "nt", "rd", "rk", "st", "ck", "ll", "sh", "th"]
_NON_ASCII = ("café", "naïve", "résumé", "über", "jalapeño", "déjà", "façade", "Zürich", "São", "coöperate")


def vocabulary(size: int = 4000, seed: int = 12345) -> list[str]:
    """Function words first (most frequent), then pronounceable pseudo-words of 1-3 syllables,
    with the non-ASCII words spread through the middle ranks."""
    rng = random.Random(seed)
    words = list(dict.fromkeys(_FUNCTION_WORDS))
    seen = set(words)
    while len(words) < size - len(_NON_ASCII):
        syll = rng.choices((1, 2, 3), (4, 5, 1))[0]
        w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syll)) + rng.choice(_CODAS)
        if w not in seen and 2 <= len(w) <= 12:
            seen.add(w)
            words.append(w)
    for k, w in enumerate(_NON_ASCII):  # ranks 2000..3800: about 8% of documents carry one
        words.insert(2000 + k * 200, w)
    return words


def _zipf_cdf(size: int, exponent: float = 1.0, shift: float = 2.7) -> np.ndarray:
    w = 1.0 / (np.arange(size) + shift) ** exponent
    return np.cumsum(w / w.sum())


def normalize_words(text: str) -> list[str]:
    """The default dedup normalization, in plain Python: NFKC, lower case, punctuation and symbols
    (Unicode categories P* and S*) become spaces, split on whitespace."""
    text = unicodedata.normalize("NFKC", text).lower()
    if text.isascii():
        out = [c if c.isalnum() or c.isspace() else " " for c in text]
    else:
        out = [" " if unicodedata.category(c)[0] in "PS" else c for c in text]
    return "".join(out).split()


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word ``n``-gram set of the normalized text; a shorter non-empty text is one shingle."""
    w = normalize_words(text)
    if len(w) < n:
        return {tuple(w)} if w else set()
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def set_jaccard(a: set, b: set) -> float:
    union = len(a | b)
    return 1.0 if union == 0 else len(a & b) / union


def jaccard(x: str, y: str, n: int = 5) -> float:
    """Exact Jaccard similarity of the word ``n``-gram sets of two texts."""
    return set_jaccard(shingles(x, n), shingles(y, n))


@dataclass
class Corpus:
    """``texts`` in corpus order; ``pairs`` are ``(i, j, exact_jaccard)`` with ``i < j`` for every pair
    inside a planted family; ``targets`` maps a pair to the similarity its copy was edited towards."""

    texts: list[str]
    pairs: list[tuple[int, int, float]]
    targets: dict[tuple[int, int], float]
    params: dict

    def truth(self, threshold: float) -> set[tuple[int, int]]:
        """Planted pairs with exact Jaccard >= ``threshold``."""
        return {(i, j) for i, j, s in self.pairs if s >= threshold}


class _Gen:
    def __init__(self, rng: np.random.Generator, words: list[str]):
        self.rng = rng
        self.words = np.array(words, dtype=object)
        self.cdf = _zipf_cdf(len(words))

    def draw(self, k: int) -> list[str]:
        idx = np.searchsorted(self.cdf, self.rng.random(k), side="right")
        return self.words[np.minimum(idx, len(self.words) - 1)].tolist()

    def document(self, length: int) -> list[str]:
        """Tokens (words with their punctuation attached) of one document."""
        toks = self.draw(length)
        pos, rng = 0, self.rng
        while pos < length:
            toks[pos] = toks[pos][:1].upper() + toks[pos][1:]
            end = min(length - 1, pos + int(rng.integers(6, 19)))
            for c in rng.integers(pos + 2, max(end, pos + 3), size=int(rng.random() < 0.4)):
                if c < end:
                    toks[c] += ","
            toks[end] += "." if rng.random() < 0.85 else ("?" if rng.random() < 0.5 else "!")
            pos = end + 1
        return toks

    def cosmetic(self, toks: list[str]) -> list[str]:
        """Edits normalization removes: case changes, extra punctuation, doubled spaces."""
        toks = list(toks)
        for _ in range(int(self.rng.integers(1, 4))):
            i = int(self.rng.integers(len(toks)))
            kind = int(self.rng.integers(3))
            if kind == 0:
                toks[i] = toks[i].upper()
            elif kind == 1:
                toks[i] = toks[i] + ("; " if self.rng.random() < 0.5 else " -")
            else:
                toks[i] = " " + toks[i] + "  "
        return toks

    def edit(self, toks: list[str], ref: set, target: float, n: int) -> tuple[list[str], float]:
        """Substitute/insert/delete words until the exact Jaccard with ``ref`` is <= ``target``."""
        toks, rng = list(toks), self.rng
        sim = set_jaccard(ref, shingles(" ".join(toks), n))
        while sim > target and len(toks) > n + 1:
            op = rng.random()
            i = int(rng.integers(len(toks)))
            if op < 0.6:
                toks[i] = self.draw(1)[0]
            elif op < 0.8:
                toks.insert(i, self.draw(1)[0])
            else:
                del toks[i]
            sim = set_jaccard(ref, shingles(" ".join(toks), n))
        return toks, sim


def generate(
    n_docs: int,
    dup_fraction: float = 0.1,
    seed: int = 0,
    words_per_doc: int = 200,
    sim_range: tuple[float, float] = (0.5, 1.0),
    shingle_size: int = 5,
    vocab_size: int = 4000,
) -> Corpus:
    """A corpus of ``n_docs`` documents, ``round(dup_fraction * n_docs)`` of them planted copies."""
    rng = np.random.default_rng(seed)
    gen = _Gen(rng, vocabulary(vocab_size))
    n_dups = round(dup_fraction * n_docs)
    n_base = n_docs - n_dups
    lengths = np.clip(rng.normal(words_per_doc, words_per_doc / 8, n_base).round(), words_per_doc // 2, None)
    docs = [gen.document(int(m)) for m in lengths]
    # families: a source and one copy; about one in six copies is a second copy in a family
    n_second = n_dups // 6
    n_fam = n_dups - n_second
    sources = rng.choice(n_base, size=n_fam, replace=False)
    second = set(rng.choice(n_fam, size=n_second, replace=False).tolist())
    lo, hi = sim_range
    families: list[list[int]] = []
    targets: dict[tuple[int, int], float] = {}
    for f, src in enumerate(sources.tolist()):
        fam = [src]
        for _ in range(2 if f in second else 1):
            parent = fam[-1] if len(fam) > 1 and rng.random() < 0.5 else src
            exact_copy = rng.random() < 0.1  # identical after normalization
            target = 1.0 if exact_copy else float(rng.uniform(lo, hi))
            ref = shingles(" ".join(docs[parent]), shingle_size)
            toks = gen.cosmetic(docs[parent])
            if not exact_copy:
                toks, _ = gen.edit(toks, ref, target, shingle_size)
            docs.append(toks)
            targets[(parent, len(docs) - 1)] = target
            fam.append(len(docs) - 1)
        families.append(fam)
    # shuffle so copies are spread through the corpus
    perm = rng.permutation(len(docs))
    where = np.empty_like(perm)
    where[perm] = np.arange(len(docs))
    texts = [" ".join(docs[k]) for k in perm.tolist()]
    sets: dict[int, set] = {}
    pairs: list[tuple[int, int, float]] = []
    for fam in families:
        for x, y in combinations(fam, 2):
            i, j = sorted((int(where[x]), int(where[y])))
            for k in (i, j):
                if k not in sets:
                    sets[k] = shingles(texts[k], shingle_size)
            pairs.append((i, j, set_jaccard(sets[i], sets[j])))
    targets_out = {tuple(sorted((int(where[a]), int(where[b])))): t for (a, b), t in targets.items()}
    pairs.sort()
    params = dict(
        n_docs=n_docs,
        dup_fraction=dup_fraction,
        seed=seed,
        words_per_doc=words_per_doc,
        sim_range=list(sim_range),
        shingle_size=shingle_size,
        vocab_size=vocab_size,
        version=GEN_VERSION,
    )
    return Corpus(texts, pairs, targets_out, params)


def cache_paths(cache: Path, **params) -> tuple[Path, Path]:
    key = "_".join(f"{k}{'-'.join(map(str, v)) if isinstance(v, list | tuple) else v}" for k, v in params.items())
    key = re.sub(r"[^A-Za-z0-9_.-]", "", key)
    return cache / f"corpus_{key}.parquet", cache / f"corpus_{key}.pairs.parquet"


def load(n_docs: int, cache: Path | None = CACHE, **kwargs) -> tuple[Corpus, Path]:
    """The corpus for these parameters and the Parquet file holding its texts (column ``text``),
    generated and written under ``cache`` on first use. With ``cache=None`` nothing is written
    and the returned path is ``None``."""
    import polars as pl

    if cache is None:
        return generate(n_docs, **kwargs), None  # type: ignore[return-value]
    params = dict(
        n_docs=n_docs,
        dup_fraction=kwargs.get("dup_fraction", 0.1),
        seed=kwargs.get("seed", 0),
        words_per_doc=kwargs.get("words_per_doc", 200),
        sim_range=list(kwargs.get("sim_range", (0.5, 1.0))),
        shingle_size=kwargs.get("shingle_size", 5),
        vocab_size=kwargs.get("vocab_size", 4000),
        version=GEN_VERSION,
    )
    texts_path, pairs_path = cache_paths(cache, **params)
    if texts_path.exists() and pairs_path.exists():
        texts = pl.read_parquet(texts_path)["text"].to_list()
        p = pl.read_parquet(pairs_path)
        pairs = list(zip(p["i"].to_list(), p["j"].to_list(), p["jaccard"].to_list(), strict=True))
        targets = {(i, j): t for i, j, t in zip(p["i"], p["j"], p["target"], strict=True) if t is not None}
        return Corpus(texts, pairs, targets, params), texts_path
    corpus = generate(n_docs, **kwargs)
    cache.mkdir(parents=True, exist_ok=True)
    tag = f".{np.random.default_rng().integers(1 << 30)}.partial"
    tmp_t, tmp_p = texts_path.with_name(texts_path.name + tag), pairs_path.with_name(pairs_path.name + tag)
    pl.DataFrame({"text": corpus.texts}).write_parquet(tmp_t)
    pl.DataFrame(
        {
            "i": [i for i, _, _ in corpus.pairs],
            "j": [j for _, j, _ in corpus.pairs],
            "jaccard": [s for _, _, s in corpus.pairs],
            "target": [corpus.targets.get((i, j)) for i, j, _ in corpus.pairs],
        },
        schema={"i": pl.Int64, "j": pl.Int64, "jaccard": pl.Float64, "target": pl.Float64},
    ).write_parquet(tmp_p)
    tmp_p.replace(pairs_path)
    tmp_t.replace(texts_path)
    return corpus, texts_path
