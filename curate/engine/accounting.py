"""Accounting: every input row ends in exactly one outcome, and the summary proves it.

Outcomes: ``kept`` (produced at least one output record), ``quarantined`` (could not be read,
validated or converted), ``duplicates`` and ``dropped`` (filled by the dedup and filter stages).
:meth:`Ledger.summary` returns the counts overall, per source, per file and per reason, and
``balanced`` is true only when ``input_rows == kept + quarantined + duplicates + dropped`` holds
everywhere.

Example:
    >>> led = Ledger()
    >>> led.add_file("a", "file:///a.jsonl", "ab12", "jsonl", "none")
    >>> led.record("a", "file:///a.jsonl", input_rows=3, kept=2, output_records=2, quarantined={"invalid_json": 1})
    >>> s = led.summary(); (s["input_rows"], s["kept"], s["quarantined"], s["balanced"])
    (3, 2, 1, True)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("kept", "quarantined", "duplicates", "dropped")


@dataclass
class Tally:
    """Counts for one file (or one source, or the whole run)."""

    input_rows: int = 0
    kept: int = 0
    output_records: int = 0
    quarantined_by_reason: Counter[str] = field(default_factory=Counter)
    duplicates_by_reason: Counter[str] = field(default_factory=Counter)
    dropped_by_reason: Counter[str] = field(default_factory=Counter)
    records_rejected_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())

    @property
    def duplicates(self) -> int:
        return sum(self.duplicates_by_reason.values())

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_reason.values())

    @property
    def balanced(self) -> bool:
        return self.input_rows == self.kept + self.quarantined + self.duplicates + self.dropped

    def add(self, other: Tally) -> None:
        self.input_rows += other.input_rows
        self.kept += other.kept
        self.output_records += other.output_records
        self.quarantined_by_reason.update(other.quarantined_by_reason)
        self.duplicates_by_reason.update(other.duplicates_by_reason)
        self.dropped_by_reason.update(other.dropped_by_reason)
        self.records_rejected_by_reason.update(other.records_rejected_by_reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_rows": self.input_rows,
            "kept": self.kept,
            "quarantined": self.quarantined,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "balanced": self.balanced,
            "output_records": self.output_records,
            "quarantined_by_reason": dict(sorted(self.quarantined_by_reason.items())),
            "duplicates_by_reason": dict(sorted(self.duplicates_by_reason.items())),
            "dropped_by_reason": dict(sorted(self.dropped_by_reason.items())),
            "records_rejected_by_reason": dict(sorted(self.records_rejected_by_reason.items())),
        }


@dataclass
class FileEntry:
    uri: str
    sha256: str
    format: str
    compression: str
    tally: Tally = field(default_factory=Tally)
    lineage: dict[str, Any] = field(default_factory=dict)
    """What was read of the file beyond the counts (``bytes``, ``multiline_rows``, ``changed_while_read``)."""


class Ledger:
    """Collects per-file tallies during a run and summarises them."""

    def __init__(self) -> None:
        self._files: dict[str, dict[str, FileEntry]] = {}

    def add_file(
        self, source: str, uri: str, sha256: str, fmt: str, compression: str, lineage: dict[str, Any] | None = None
    ) -> None:
        """Register an input file; ``lineage``: extra fields of its account (see :class:`FileEntry`)."""
        self._files.setdefault(source, {})[uri] = FileEntry(uri, sha256, fmt, compression, lineage=dict(lineage or {}))

    def record(
        self,
        source: str,
        uri: str,
        *,
        input_rows: int,
        kept: int,
        output_records: int,
        quarantined: Counter[str] | dict[str, int],
        records_rejected: Counter[str] | dict[str, int] | None = None,
    ) -> None:
        """Add one batch's outcome for a file (see the module example)."""
        t = self._files[source][uri].tally
        t.input_rows += input_rows
        t.kept += kept
        t.output_records += output_records
        t.quarantined_by_reason.update(quarantined)
        t.records_rejected_by_reason.update(records_rejected or {})

    def move(self, source: str, uri: str, outcome: str, reason: str, rows: int) -> None:
        """Reclassify ``rows`` kept input rows of a file as ``duplicates`` or ``dropped`` for ``reason``."""
        t = self._files[source][uri].tally
        if rows > t.kept:
            raise ValueError(f"cannot move {rows} rows of {uri}: only {t.kept} are kept")
        t.kept -= rows
        target = t.duplicates_by_reason if outcome == "duplicates" else t.dropped_by_reason
        target[reason] += rows

    def set_output_records(self, source: str, uri: str, records: int) -> None:
        """Records a file contributes to the final dataset (after the stages)."""
        self._files[source][uri].tally.output_records = records

    def totals(self) -> Tally:
        total = Tally()
        for files in self._files.values():
            for entry in files.values():
                total.add(entry.tally)
        return total

    def summary(self) -> dict[str, Any]:
        """Counts overall, per source and per file; ``balanced`` checks the identity everywhere."""
        sources: dict[str, Any] = {}
        all_balanced = True
        for name, files in self._files.items():
            st = Tally()
            file_rows = []
            for entry in files.values():
                st.add(entry.tally)
                all_balanced &= entry.tally.balanced
                file_rows.append(
                    {
                        "uri": entry.uri,
                        "sha256": entry.sha256,
                        "format": entry.format,
                        "compression": entry.compression,
                        **entry.tally.as_dict(),
                        **entry.lineage,
                    }
                )
            sources[name] = {**st.as_dict(), "files": file_rows}
        total = self.totals()
        out = total.as_dict()
        out["balanced"] = all_balanced and total.balanced
        out["sources"] = sources
        return out
