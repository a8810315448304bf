"""Measure a training run's peak memory, to set beside the pre-flight estimate.

On GPU: ``torch.cuda.max_memory_allocated`` (reset at the start) minus what was allocated at the start.
On CPU: the growth of the process's resident set size (RSS) over its value at the start, sampled
by a background thread from ``/proc/self/statm`` every few milliseconds (``getrusage``'s
``ru_maxrss`` is a lifetime high-water mark and cannot be reset, so it is only a cross-check). The
probe starts after the training libraries are imported and before the model is loaded, so the
growth covers weights, gradients, optimizer states, activations and the trainer's own buffers.

Example:
    >>> import numpy as np
    >>> with PeakMemory("cpu", interval=0.001) as probe:
    ...     block = np.ones(64 * 2**20 // 8)          # 64 MiB, touched
    ...     del block
    >>> probe.measured > 48 * 2**20
    True
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """The process's resident set size now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE


class PeakMemory:
    """Context manager: ``measured`` is the peak growth in bytes while it was open (see module docstring)."""

    def __init__(self, device: str, interval: float = 0.005):
        self.device = device
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def how(self) -> str:
        return "cuda max_memory_allocated growth" if self.device == "cuda" else "RSS growth (sampled /proc/self/statm)"

    @property
    def measured(self) -> int:
        return max(self.peak - self.baseline, 0)

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = self.peak = torch.cuda.memory_allocated()
            return self
        self.baseline = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._sample, name="rss-probe", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc: Any) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    def report(self, estimate_bytes: int) -> dict[str, Any]:
        """Estimate, measurement and their ratio (estimate / measured) for the run manifest."""
        return {
            "how": self.how,
            "device": self.device,
            "baseline_bytes": self.baseline,
            "peak_bytes": self.peak,
            "measured_bytes": self.measured,
            "estimate_bytes": estimate_bytes,
            "measured_gib": round(self.measured / 2**30, 4),
            "estimate_gib": round(estimate_bytes / 2**30, 4),
            "ratio": round(estimate_bytes / self.measured, 3) if self.measured else None,
        }
