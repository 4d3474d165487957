"""The report: a one-screen summary per scenario, RESULTS.md, and the fan-out plot.

RESULTS.md holds the table of the latest figures against issue 5's targets, with the
machine and the command; fanout.png plots deliveries/s against clients.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Json = dict[str, Any]
LABELS = {
    "server": "trio-chat",
    "relay": "bare trio relay",
    "metrics": "trio-chat with --metrics-port",
    "irc-door": "trio-chat's IRC door",
    "ngircd": "ngircd (C)",
    "inspircd": "InspIRCd (C++)",
    "miniircd": "miniircd (Python)",
}


def summary(scenario: str, result: Json) -> str:
    """Human-readable lines for one scenario's result (the JSON without its details)."""
    if scenario == "all":
        return "\n".join(target_rows(result))
    flat = {k: v for k, v in result.items() if not isinstance(v, dict | list) or k == "notes"}
    return "\n".join(f"{key}: {value}" for key, value in flat.items())


def _status(ok: bool) -> str:
    return "met" if ok else "**not met**"


def target_rows(data: Json) -> list[str]:
    """Markdown rows: target, figure, status, for every scenario present in `data`."""
    rows = ["| target | measured | status |", "|---|---|---|"]
    fanout = data.get("fanout")
    if fanout:
        rows.append(
            f"| fanout ({fanout['clients']} clients) ≥ 90% of the bare relay"
            f" | {fanout['deliveries_per_s']:,} vs {fanout['relay_deliveries_per_s']:,}"
            f" deliveries/s: {fanout['ratio']:.0%} | {_status(fanout['ratio'] >= 0.9)} |"
        )
        mini = fanout.get("miniircd_deliveries_per_s")
        if mini is not None:
            rows.append(
                f"| fanout ahead of miniircd | {fanout['deliveries_per_s']:,} vs {mini:,}"
                f" | {_status(fanout['deliveries_per_s'] > mini)} |"
            )
        for name in ("irc-door", "ngircd", "inspircd"):
            rate = fanout.get(f"{name}_deliveries_per_s")
            if rate:
                rows.append(
                    f"| fanout compared with {name} (reported) | {fanout['deliveries_per_s']:,}"
                    f" vs {rate:,}: {fanout[f'ratio_to_{name}']:.0%} | reported |"
                )
        with_metrics = fanout.get("metrics_deliveries_per_s")
        if with_metrics:
            rows.append(
                f"| fanout with `--metrics-port` against without (reported) | {with_metrics:,}"
                f" vs {fanout['deliveries_per_s']:,}: {fanout['metrics_ratio']:.0%} | reported |"
            )
        lossless = fanout["lost"] == fanout["duplicates"] == fanout["out_of_order"] == 0
        rows.append(
            f"| fanout drops nothing | lost {fanout['lost']}, duplicates {fanout['duplicates']},"
            f" out of order {fanout['out_of_order']} | {_status(lossless)} |"
        )
    latency = data.get("latency")
    if latency:
        bound = 1.5 * latency["relay_p99_ms"]
        rows.append(
            f"| latency p99 at {latency['offered_per_s']:,.0f} messages/s"
            f" ({latency['offered_deliveries_per_s']:,} deliveries/s) ≤ 1.5 × relay p99"
            f" | {latency['p99_ms']} ms vs relay {latency['relay_p99_ms']} ms"
            f" (p50 {latency['p50_ms']} ms) | {_status(latency['p99_ms'] <= bound)} |"
        )
    storm = data.get("joinstorm")
    if storm:
        rows.append(
            f"| joinstorm of {storm['clients']} < 3 s | {storm['seconds']} s"
            f" | {_status(storm['seconds'] < 3 and not storm['errors'])} |"
        )
    idle = data.get("idle")
    if idle:
        per = idle["rss_bytes_per_conn"]
        rows.append(
            f"| idle {idle['connections']:,} connections < 16 KB each | {per:,} bytes"
            f" | {_status(per < 16 * 1024 and not idle['errors'])} |"
        )
    store = data.get("store")
    if store:
        rows.append(
            f"| store ≥ 100,000 messages/s (synchronous=FULL) | {store['commits_per_s']:,}"
            f" messages/s, {store['batch_mean']} per commit"
            f" | {_status(store['commits_per_s'] >= 100_000)} |"
        )
        if "bare_sqlite_per_s" in store:
            rows.append(
                "| store against bare SQLite (the same rows into a table with no index, one"
                f" thread; reported) | {store['commits_per_s']:,} vs"
                f" {store['bare_sqlite_per_s']:,}: {store['bare_ratio']:.0%} | reported |"
            )
    search = data.get("search")
    if search:
        rows.append(
            f"| search p99 ≤ 50 ms ({search['messages']:,} messages in {search['rooms']} rooms,"
            f" one and two words) | p99 {search['p99_ms']} ms, p50 {search['p50_ms']} ms;"
            f" index {search['index_bytes'] / 2**20:,.1f} MiB for a table of"
            f" {search['table_bytes'] / 2**20:,.1f} MiB | {_status(search['p99_ms'] <= 50)} |"
        )
    return rows


def sweep_rows(sweep: Json) -> list[str]:
    """Markdown table of the sweep: one row per client count, one column per server."""
    names = list(sweep["deliveries_per_s"])
    rows = [
        "| clients | " + " | ".join(LABELS.get(n, n) for n in names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for count in sweep["clients"]:
        cells = []
        for name in names:
            found = [rate for n, rate in sweep["deliveries_per_s"][name] if n == count]
            cells.append(f"{found[0]:,.0f}" if found else "–")
        rows.append(f"| {count} | " + " | ".join(cells) + " |")
    faults = sweep.get("faults", {})
    rows.append(
        "| lost + doubled + out of order + errors | "
        + " | ".join(str(faults.get(name, "?")) for name in names)
        + " |"
    )
    return rows


def markdown(data: Json) -> str:
    """RESULTS.md: machine, command, the targets table, the sweep table, the notes."""
    lines = [
        "# Benchmark results",
        "",
        f"Measured {data.get('date', '')} on {data.get('machine', 'this machine')},",
        f"with `{data.get('command', 'python -m benchmarks all --report')}`"
        f" ({data.get('seconds', '?')} s in all). Server, load generator and the servers"
        " compared share the machine's cores.",
        "",
        "Deliveries are counted to the members other than the sender, for every server:"
        " IRC does not echo a message to its sender; trio-chat and the relay do (those"
        " echoes are checked as well, but not counted).",
        "",
        *target_rows(data),
    ]
    sweep = data.get("sweep")
    if sweep:
        lines += [
            "",
            "## Fan-out: deliveries/s against clients (one room, every client sending)",
            "",
            "![fan-out](fanout.png)",
            "",
            *sweep_rows(sweep),
        ]
    notes = sorted(
        set(data.get("fanout", {}).get("notes", [])) | set((sweep or {}).get("notes", []))
    )
    if notes:
        lines += ["", "## Skipped", "", *(f"- {n}" for n in notes)]
    lines += ["", "Raw figures: `benchmarks/results.json`.", ""]
    return "\n".join(lines)


def plot(sweep: Json, path: Path, caption: str = "") -> bool:
    """Write the fan-out plot; False (with nothing written) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for name, points in sweep["deliveries_per_s"].items():
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        style = "-" if name in ("server", "relay") else "--"
        ax.plot(xs, ys, style, marker="o", label=LABELS.get(name, name))
    ax.set_xscale("log")
    ax.set_xticks(sweep["clients"], [str(n) for n in sweep["clients"]])
    ax.minorticks_off()
    ax.set_xlabel("clients in the room (all sending), log scale")
    ax.set_ylabel("deliveries per second")
    ax.set_title("Fan-out throughput on loopback")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return True


def write(data: Json, directory: Path) -> None:
    """Write RESULTS.md and fanout.png under `directory` from the results of `all`."""
    (directory / "RESULTS.md").write_text(markdown(data))
    sweep = data.get("sweep")
    caption = f"{data.get('machine', '')}; {data.get('command', '')}"
    if sweep and not plot(sweep, directory / "fanout.png", caption):
        print("[bench] matplotlib is not installed: no fanout.png", flush=True)


if __name__ == "__main__":
    print(markdown(json.loads((Path(__file__).parent / "results.json").read_text())))
