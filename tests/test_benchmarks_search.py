"""Smoke tests of the `search` benchmark at a tiny size: it runs, finds, and reports.

The figures are not judged here (the benchmark is run by hand, at 1,000,000 messages).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import report, scenarios  # noqa: E402
from benchmarks.searchbench import corpus  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def test_corpus_is_deterministic_and_zipf_like() -> None:
    texts = corpus(2000)
    assert texts == corpus(2000)
    assert all(3 <= len(text.split()) <= 14 for text in texts)
    counts: dict[str, int] = {}
    for word in " ".join(texts).split():
        counts[word] = counts.get(word, 0) + 1
    ranked = sorted(counts.values(), reverse=True)
    assert ranked[0] > 20 * ranked[len(ranked) // 2]  # a few words are very common


def test_search_scenario_reports_times_and_sizes(tmp_path: Path) -> None:
    result = scenarios.search(messages=3000, rooms=10, searches=40, db=tmp_path / "s.db")
    assert result["messages"] == 3000 and result["searches"] == 40
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["hits_mean"] > 0  # words are drawn from the corpus: queries find something
    assert result["index_bytes"] > 0 and result["table_bytes"] > 0
    assert result["plan"][0].startswith("SCAN messages_fts")
    rows = "\n".join(report.target_rows({"search": result}))
    assert "search p99 ≤ 50 ms" in rows


def test_cli_prints_json_last(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "search", "--search-messages", "1000",
         "--searches", "10", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["messages"] == 1000 and last["searches"] == 10
