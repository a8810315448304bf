"""Lineage through published versions: a data file of a store's table names the version holding it."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from curate.store import Store
from curate.store.store import dataset_of_data_file
from train.registry.trace import _version_holding


def test_a_version_file_traces_back_to_its_version(tmp_path: Path) -> None:
    """Files of each version (staged folders under the table) map to their store, dataset and version;
    a file outside any table maps to nothing."""
    st = Store(tmp_path / "store")
    for n in (3, 5):
        df = pl.DataFrame({"id": [f"r{i}" for i in range(n)], "text": ["x"] * n, "split": ["train"] * n})
        st.publish("prompts", df, {"kind": "text"})
    for version in (1, 2):
        files = st.version_files(f"prompts@{version}")
        assert files
        for f in files:
            assert dataset_of_data_file(Path(f)) == (tmp_path / "store", "prompts")
            assert _version_holding(Path(f).as_uri()) == (str(tmp_path / "store"), f"prompts@{version}")
    other = tmp_path / "runs" / "x" / "data" / "part-00000.parquet"
    assert dataset_of_data_file(other) is None and _version_holding(other.as_uri()) is None
