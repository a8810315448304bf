"""Filter benchmark: documents per second of every registered quality filter, single-threaded.

Generates N synthetic instruction/response pairs (deterministic for a seed; cached as Parquet under
``.bench/`` in the repo root). Responses are about 200 words of multi-paragraph pseudo-English, with the
usual defects mixed in so the rules have work to do: repeated lines and paragraphs, bullet lists, menus,
cookie and JavaScript notices, lorem ipsum, code with braces, hashtags, trailing ellipses, N/A and empty
outputs, refusals, links, control characters, copied and merged instructions. The frame is Alpaca-shaped
(``instruction``, ``input``, ``output``) and each filter runs through :meth:`Filter.reasons` with
``Kind.ALPACA`` on its default field (``response``, the output). ``POLARS_MAX_THREADS=1`` is set before
polars is imported. Each filter is timed K times; the median is reported.

Prints one JSON object: ``{"benchmark": "filters", "docs": N, "filters": {name: {"docs_per_second": ...,
"dropped": ...}}, "threads": 1}``.

Usage:
    .venv/bin/python benchmarks/bench_filters.py                      # 100,000 docs, 3 runs each
    .venv/bin/python benchmarks/bench_filters.py --docs 500 --repeats 1
"""

from __future__ import annotations

import os

os.environ["POLARS_MAX_THREADS"] = "1"  # before polars is imported (here or by curate)

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from curate.filters import all_filters  # noqa: E402
from schemas.kinds import Kind  # noqa: E402

CACHE = REPO / ".bench"
GEN_VERSION = 1  # bump when the generator changes, so cached files are not reused
PARAMS: dict[str, dict[str, object]] = {"length": {"min_words": 3, "max_words": 2000}}
"""Parameters per filter where the defaults do nothing (length has no default bounds)."""

_WORD_TEXT = (
    "the of and to a in is it you that he was for on are with as his they be at one have this from or had by "
    "word but what some we can out other were all there when up use your how said an each she which do their "
    "time if will way about many then them write would like so these her long make thing see him two has look "
    "more day could go come did number sound no most people my over know water than call first who may down "
    "side been now find any new work part take get place made live where after back little only round man "
    "year came show every good me give our under name very through just form sentence great think say help "
    "low line differ turn cause much mean before move right boy old too same tell does set three want air well "
    "also play small end put home read hand port large spell add even land here must big high such follow act "
    "why ask men change went light kind off need house picture try us again animal point mother world near "
    "build self earth father head stand own page should country found answer school grow study still learn "
    "plant cover food sun four between state keep eye never last let thought city tree cross farm hard start "
    "might story saw far sea draw left late run while press close night real life few north open seem together "
    "next white children begin got walk example ease paper group always music those both mark often letter "
    "until mile river car feet care second book carry took science eat room friend began idea fish mountain "
    "stop once base hear horse cut sure watch color face wood main enough plain girl usual young ready above "
    "ever red list though feel talk bird soon body dog family direct pose leave song measure door product "
    "black short numeral class wind question happen complete ship area half rock order fire south problem "
    "piece told knew pass since top whole king space heard best hour better during hundred five remember step "
    "early hold west ground interest reach fast verb sing listen six table travel less morning ten simple "
    "several vowel toward war lay against pattern slow center love person money serve appear road map rain "
    "rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark machine note wait "
    "plan figure star box noun field rest correct able pound done beauty drive stood contain front teach week "
    "final gave green quick develop ocean warm free minute strong special mind behind clear tail produce fact "
    "street inch multiply nothing course stay wheel full force blue object decide surface deep moon island "
    "foot system busy test record boat common gold possible plane dry wonder laugh thousand ago ran check game "
    "shape miss brought heat snow tire bring yes distant fill east paint language among database function "
    "server request error customer account report python query cache network model training dataset token "
    "memory thread file café naïve résumé über Zürich 2024 3.5 10,000 e-mail don't it's"
)
_WORDS = _WORD_TEXT.split()
_VERBS = ("Explain", "Describe", "Summarize", "Write", "List", "Give", "Suggest", "Rewrite", "Compare", "Outline")
_BOILER = (
    "Home | About | Blog | Contact",
    "Share this article",
    "Read more",
    "Sign up for our newsletter",
    "This website uses cookies to improve your experience.",
    "By continuing you agree to our privacy policy and terms of use.",
    "Please enable JavaScript in your browser to view the comments.",
    "Posted in Uncategorized",
    "Click here to subscribe...",
)
_LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore."
_CODE = 'def main() {\n    let x = {"key": 1};\n    return x;\n}'
_REFUSAL = "I'm sorry, but I cannot help with that request. As an AI language model, I do not have opinions."
_NA = ("N/A", "", "   ", "none", "-", "...", "<noinput>")


class _Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        zipf = [1.0 / (rank + 1) ** 0.95 for rank in range(len(_WORDS))]
        self.cum = list(_cum(zipf))

    def words(self, k: int) -> list[str]:
        return self.rng.choices(_WORDS, cum_weights=self.cum, k=k)

    def sentence(self) -> str:
        w = self.words(self.rng.randint(6, 20))
        if self.rng.random() < 0.3:
            w[self.rng.randrange(len(w))] += ","
        s = " ".join(w)
        return s[:1].upper() + s[1:] + self.rng.choices(".?!", (0.85, 0.1, 0.05))[0]

    def paragraph(self) -> str:
        sents = [self.sentence() for _ in range(self.rng.randint(2, 6))]
        return ("\n" if self.rng.random() < 0.15 else " ").join(sents)

    def response(self) -> str:
        r, rand = self.rng, self.rng.random
        u = rand()
        if u < 0.02:
            return r.choice(_NA)
        if u < 0.03:
            return _REFUSAL
        paras: list[str] = []
        n_words = 0
        target = r.randint(170, 230)
        while n_words < target:
            p = self.paragraph()
            paras.append(p)
            n_words += p.count(" ") + 1
        if rand() < 0.15:  # a bullet list
            items = [f"{r.choice('-•*')} {' '.join(self.words(r.randint(2, 7)))}" for _ in range(r.randint(3, 7))]
            paras.insert(r.randrange(len(paras) + 1), "Key points:\n" + "\n".join(items))
        if rand() < 0.08:  # web boilerplate around the text
            paras.insert(0, "\n".join(r.sample(_BOILER, r.randint(2, 5))))
            paras.append("\n".join(r.sample(_BOILER, r.randint(2, 5))))
        if rand() < 0.06:  # a repeated paragraph
            paras.append(r.choice(paras))
        if rand() < 0.04:  # the same line many times
            line = r.choice(_BOILER)
            paras.append("\n".join([line] * r.randint(3, 12)))
        if rand() < 0.03:
            paras.insert(r.randrange(len(paras) + 1), _LOREM)
        if rand() < 0.04:
            paras.append(_CODE)
        if rand() < 0.03:
            paras.append(" ".join(f"#{w}" for w in self.words(r.randint(5, 25))))
        if rand() < 0.03:
            paras.extend(f"{' '.join(self.words(r.randint(3, 9)))}..." for _ in range(r.randint(2, 8)))
        if rand() < 0.03:
            paras.append(f"See https://example.com/{r.randint(1, 999)} for the full article.")
        text = "\n\n".join(paras)
        if rand() < 0.01:
            i = r.randrange(len(text))
            text = text[:i] + "\x0b" + text[i:]
        return text

    def prompt(self) -> tuple[str, str]:
        r = self.rng
        instruction = f"{r.choice(_VERBS)} {' '.join(self.words(r.randint(6, 16)))}."
        inp = " ".join(self.words(r.randint(10, 30))) if r.random() < 0.4 else ""
        if r.random() < 0.02:  # merged instructions
            instruction += f"\n2. {r.choice(_VERBS)} {' '.join(self.words(6))}?\n3. Instruction: {self.sentence()}"
        return instruction, inp


def _cum(weights: list[float]):
    total = 0.0
    for w in weights:
        total += w
        yield total


def generate(path: Path, docs: int, seed: int) -> None:
    """Write ``docs`` synthetic Alpaca rows to ``path`` as Parquet (deterministic for ``seed``)."""
    gen = _Gen(seed)
    rows: dict[str, list[str]] = {"instruction": [], "input": [], "output": []}
    for _ in range(docs):
        instruction, inp = gen.prompt()
        output = gen.response()
        if gen.rng.random() < 0.01:  # the instruction copied into the output
            output = f"{instruction}\n\n{inp}\n\n{output}" if inp else f"{instruction}\n\n{output}"
        rows["instruction"].append(instruction)
        rows["input"].append(inp)
        rows["output"].append(output)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")  # concurrent runs never share it
    pl.DataFrame(rows).write_parquet(tmp)
    tmp.replace(path)


def dataset(docs: int, seed: int, cache: Path = CACHE) -> pl.DataFrame:
    """The cached corpus for ``docs``/``seed`` in ``cache``, generated on first use."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"filters_{docs}_seed{seed}_v{GEN_VERSION}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, docs, seed)
        print(f"generated {path.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return pl.read_parquet(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=100_000, help="synthetic documents (default 100,000)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per filter; the median is reported")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=CACHE, help="where generated inputs are kept (default .bench/)")
    ap.add_argument("--only", nargs="*", metavar="FILTER", help="time only these filters")
    args = ap.parse_args(argv)
    if args.docs < 1 or args.repeats < 1:
        ap.error("--docs and --repeats must be positive")

    df = dataset(args.docs, args.seed, args.cache_dir)
    results: dict[str, dict[str, float | int]] = {}
    for name, cls in all_filters().items():
        if args.only and name not in args.only:
            continue
        f = cls(PARAMS.get(name))
        times, dropped = [], 0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            reasons = f.reasons(df, Kind.ALPACA)
            times.append(time.perf_counter() - t0)
            dropped = reasons.len() - reasons.null_count()
        seconds = statistics.median(times)
        results[name] = {
            "docs_per_second": round(df.height / seconds, 1),
            "dropped": dropped,
            "seconds_median": round(seconds, 3),
        }
    print(json.dumps({"benchmark": "filters", "docs": df.height, "filters": results, "threads": 1}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
