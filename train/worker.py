"""The process ``accelerate launch`` starts: train one recipe into a given run folder.

Usage (what :mod:`train.distributed` runs in every process)::

    accelerate launch --config_file CONFIG -m train.worker RECIPE RUN_DIR

Example:
    >>> main(["--help"])
    usage: python -m train.worker RECIPE RUN_DIR
    0
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Train ``RECIPE`` into ``RUN_DIR`` as one process of a distributed run; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print("usage: python -m train.worker RECIPE RUN_DIR")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    from train.common import WORKER_ENV
    from train.run import train_recipe

    os.environ[WORKER_ENV] = "1"
    train_recipe(args[0], run_dir=Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
