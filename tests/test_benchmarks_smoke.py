"""Smoke tests of benchmarks/: every scenario at a tiny size, each bounded in time.

They check that the load generator runs end to end against the real server, the bare
relay and whichever IRC servers are installed (the others are skipped with a note), and
that nothing is lost; the figures themselves are not judged here.
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
from benchmarks.servers import IRC_SERVERS  # noqa: E402

pytestmark = pytest.mark.timeout(120)

FANOUT_KEYS = {
    "clients",
    "sent",
    "deliveries",
    "lost",
    "duplicates",
    "out_of_order",
    "deliveries_per_s",
    "relay_deliveries_per_s",
    "ratio",
    "p50_ms",
    "p99_ms",
}


def _tiny(irc: tuple[str, ...] = IRC_SERVERS) -> scenarios.Settings:
    return scenarios.Settings(workers=2, seconds=0.5, window=2, irc=irc)


def test_fanout_checks_every_target() -> None:
    result = scenarios.fanout(clients=6, settings=_tiny())
    assert result.keys() >= FANOUT_KEYS
    assert result["sent"] > 0
    for name, checks in result["checks"].items():
        assert checks["sent"] > 0, name
        assert checks["lost"] == checks["duplicates"] == checks["out_of_order"] == 0, name
        assert checks["errors"] == [], name
        assert checks["deliveries"] == checks["sent"] * 5, name
    for name in IRC_SERVERS:
        ran = name in result["checks"]
        assert ran == (f"{name}_deliveries_per_s" in result)
        assert ran or any(note.startswith(name) for note in result["notes"])


def test_latency_at_a_fixed_rate() -> None:
    result = scenarios.latency(clients=6, rate=40, settings=_tiny(irc=()))
    assert {"offered_per_s", "p50_ms", "p99_ms", "relay_p99_ms", "lost"} <= result.keys()
    assert result["offered_per_s"] == 40
    assert result["lost"] == result["relay_lost"] == 0
    assert result["checks"]["server"]["sent"] == 20


def test_joinstorm_gets_the_history() -> None:
    result = scenarios.joinstorm(clients=20, history=5, settings=_tiny(irc=()))
    assert {"clients", "seconds"} <= result.keys()
    assert result["joined"] == 20
    assert result["wrong_history"] == 0
    assert result["errors"] == []


def test_idle_measures_rss() -> None:
    result = scenarios.idle(connections=60, rooms=3, settings=_tiny(irc=()))
    assert {"connections", "rss_bytes_per_conn"} <= result.keys()
    assert result["joined"] == 60
    assert result["errors"] == []


def test_store_commits_everything(tmp_path: Path) -> None:
    result = scenarios.store(messages=2000, tasks=10, db=tmp_path / "store.db")
    assert {"messages", "commits_per_s", "batch_mean"} <= result.keys()
    assert result["messages"] == 2000
    assert result["ids_increasing"]
    # the reference of the same run: SQLite alone, the same rows
    assert result["bare_sqlite_per_s"] > 0
    ratio = result["commits_per_s"] / result["bare_sqlite_per_s"]
    assert abs(result["bare_ratio"] - ratio) <= 0.001


def test_cli_prints_json_last() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "store",
            "--messages",
            "500",
            "--tasks",
            "5",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["messages"] == 500


def test_report_writes_table_and_plot(tmp_path: Path) -> None:
    settings = _tiny(irc=())
    data = {
        "machine": "test",
        "command": "pytest",
        "fanout": scenarios.fanout(clients=4, settings=settings),
        "store": scenarios.store(messages=500, tasks=5, db=tmp_path / "s.db"),
        "sweep": scenarios.sweep((4, 6), settings),
    }
    report.write(data, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "bare relay" in text
    assert "store ≥ 100,000 messages/s" in text
    pytest.importorskip("matplotlib")
    assert (tmp_path / "fanout.png").stat().st_size > 1000
