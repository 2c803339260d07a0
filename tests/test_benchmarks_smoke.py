"""Smoke test of the benchmark harness (``python -m benchmarks --quick``) on cheap cases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.__main__ import main  # noqa: E402

CASES = "gradient-small,gradient-mnist"


def _table_rows(text: str) -> list[str]:
    start = text.index("| case |")
    return [line for line in text[start:].splitlines()[2:] if line.startswith("| ")]


def test_quick_run_writes_a_table_with_a_row_per_case(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    rows = main(["--quick", "--repeat", "3", "--only", CASES, "--out", str(out)])
    text = out.read_text(encoding="utf-8")
    assert "## Machine" in text and "python -m benchmarks" in text
    assert len(_table_rows(text)) == len(rows) == 2
    for row in rows:  # measured, or skipped because torch is absent; never an error
        assert row.status in ("ok", "skipped"), row.note
        assert row.status == "skipped" or (row.ratio is not None and row.ratio > 0)


def test_missing_anchor_is_reported_as_skipped(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    out = tmp_path / "RESULTS.md"
    rows = main(["--quick", "--only", "gradient-small", "--out", str(out)])
    assert [row.status for row in rows] == ["skipped"]
    assert "torch" in rows[0].note
    assert "skipped" in _table_rows(out.read_text(encoding="utf-8"))[0]
