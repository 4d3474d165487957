"""Command line: ``python -m benchmarks SCENARIO [--json] [options]``.

Scenarios: fanout, latency, joinstorm, idle, store, search, sweep; ``all`` runs every one at its
default size and writes a results JSON; ``all --report`` (or ``report``) also writes
benchmarks/fanout.png and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import report, scenarios
from benchmarks.servers import IRC_SERVERS, machine, raise_file_limit

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "scenario",
        choices=[
            "fanout",
            "latency",
            "joinstorm",
            "idle",
            "store",
            "search",
            "sweep",
            "all",
            "report",
        ],
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, last")
    parser.add_argument("--clients", type=int, help="clients (fanout 300, latency 300, ...)")
    parser.add_argument("--seconds", type=float, help="sending time of a load run [3]")
    parser.add_argument("--window", type=int, default=2, help="messages in flight per sender")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per target (fan-out, store); the best counts"
    )
    parser.add_argument("--rate", type=float, default=0.0, help="latency: messages/s offered")
    parser.add_argument("--history", type=int, default=50, help="joinstorm: messages in room")
    parser.add_argument("--rooms", type=int, default=100, help="idle: rooms to spread over")
    parser.add_argument("--messages", type=int, default=200_000, help="store: messages")
    parser.add_argument("--tasks", type=int, default=100, help="store: concurrent tasks")
    parser.add_argument(
        "--search-messages", type=int, default=1_000_000, help="search: messages in 100 rooms"
    )
    parser.add_argument("--searches", type=int, default=1000, help="search: queries timed")
    parser.add_argument(
        "--irc",
        default=",".join(IRC_SERVERS),
        help="IRC servers to compare with, comma-separated ('' for none)",
    )
    parser.add_argument(
        "--sweep", default="50,100,200,500,1000", help="client counts of the fan-out sweep"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="all: results JSON path")
    parser.add_argument("--report", action="store_true", help="all: write the PNG and RESULTS.md")
    return parser


def _settings(args: argparse.Namespace, seconds: float = 3.0) -> scenarios.Settings:
    irc = tuple(name for name in args.irc.split(",") if name)
    unknown = set(irc) - set(IRC_SERVERS)
    if unknown:
        raise SystemExit(f"unknown IRC servers: {', '.join(sorted(unknown))}")
    return scenarios.Settings(
        workers=args.workers,
        seconds=args.seconds or seconds,
        window=args.window,
        irc=irc,
        repeat=args.repeat,
    )


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """Run the scenario named on the command line and return its JSON object."""
    name = args.scenario
    if name == "fanout":
        return scenarios.fanout(args.clients or 300, _settings(args))
    if name == "latency":
        return scenarios.latency(args.clients or 300, args.rate, _settings(args))
    if name == "joinstorm":
        return scenarios.joinstorm(args.clients or 1000, args.history, _settings(args))
    if name == "idle":
        return scenarios.idle(args.clients or 10_000, args.rooms, _settings(args))
    if name == "store":
        return scenarios.store(args.messages, args.tasks)
    if name == "search":
        return scenarios.search(args.search_messages, 100, args.searches)
    if name == "sweep":
        counts = tuple(int(n) for n in args.sweep.split(","))
        return scenarios.sweep(counts, _settings(args, seconds=2.0))
    raise SystemExit(f"unknown scenario {name}")


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every scenario at its default size (the options still apply), then the sweep."""
    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": machine(),
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    settings = _settings(args)
    results["fanout"] = scenarios.fanout(args.clients or 300, settings)
    fanout_rate = results["fanout"]["messages_per_s"]
    results["latency"] = scenarios.latency(
        args.clients or 300, args.rate, _settings(args), fanout_rate=fanout_rate
    )
    results["joinstorm"] = scenarios.joinstorm(1000, args.history, _settings(args))
    results["idle"] = scenarios.idle(10_000, args.rooms, _settings(args))
    stores = [scenarios.store(args.messages, args.tasks) for _ in range(max(1, args.repeat))]
    results["store"] = max(stores, key=lambda run: run["commits_per_s"])  # best, as fan-out
    results["search"] = scenarios.search(args.search_messages, 100, args.searches)
    counts = tuple(int(n) for n in args.sweep.split(","))
    results["sweep"] = scenarios.sweep(counts, _settings(args, seconds=2.0))
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run, print; the JSON object is the last line on stdout."""
    args = _parser().parse_args(argv)
    raise_file_limit()
    if args.scenario == "report":
        data = json.loads(args.out.read_text())
        report.write(data, HERE)
        return 0
    if args.scenario == "all":
        result = run_all(args)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        scenarios.note(f"wrote {args.out}")
        if args.report:
            report.write(result, HERE)
    else:
        result = run_one(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(report.summary(args.scenario, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
