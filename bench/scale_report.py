"""The scale runs in the report: the median run of each size, the targets on them, their tables
and, for a missed target, by how much and what the runs show."""

import math

from bench.rows import DATABASES, PEAK_MEMORY_LIMIT_MB, Row, fmt_s, median_of

# The scale targets hold for the production configuration (PostgreSQL + Redis); SQLite's scale
# figures are reported without them.
SCALE_TARGET_DATABASES = ("postgresql",)
# Time per portfolio at the most portfolios may be this much at most of that at the next size down.
TIME_PER_PORTFOLIO_GROWTH = 1.2
# Two worker processes' "Recalculating metrics" at most this much of one's.
SCALE_OUT_RATIO = 0.65
RECALCULATION = "Recalculating metrics"
# The calculations a full refresh spreads in chunks: strategies, metrics, benchmark comparisons.
CHUNKED_CALCULATIONS = 3


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the upper one of an even count)."""
    return median_of(runs, lambda run: run["seconds"])


def sizes(results: dict, db: str) -> list[dict]:
    """One database's scale sizes, as measured (empty when the scale runs were skipped)."""
    return results.get("scale_runs", {}).get(db, {}).get("sizes", [])


def ms_per_portfolio(size: dict) -> float:
    return median_run(size["runs"])["seconds"] * 1000 / size["portfolios"]


def _growth(db_sizes: list[dict], assets: int) -> tuple[dict, dict] | None:
    """(next size down, most portfolios) with these assets; None with fewer than two sizes."""
    found = sorted((s for s in db_sizes if s["assets"] == assets), key=lambda s: s["portfolios"])
    return (found[-2], found[-1]) if len(found) > 1 else None


def _largest(db_sizes: list[dict]) -> dict | None:
    return max(db_sizes, key=lambda s: (s["portfolios"], s["assets"]), default=None)


def _scale_out(db_sizes: list[dict]) -> dict | None:
    """The size the scale-out was measured at, if any."""
    return next((s for s in db_sizes if s.get("scale_out")), None)


def scale_out_ratios(size: dict) -> list[float]:
    """Two processes' recalculation ÷ one's, run by run (they were measured in turns)."""
    pairs = zip(size["scale_out"]["one"], size["scale_out"]["two"], strict=False)
    return [two["steps"][RECALCULATION] / one["steps"][RECALCULATION] for one, two in pairs]


def _scale_out_ratio(size: dict) -> float:
    """The median of the runs' ratios (the upper one of an even count)."""
    ratios = sorted(scale_out_ratios(size))
    return ratios[len(ratios) // 2]


def _shape(size: dict) -> str:
    return f"{size['portfolios']} × {size['assets']} × {size['years']} y"


def _peak(size: dict) -> float:
    return median_run(size["runs"])["peak_rss_mb"]


def rows(results: dict) -> list[Row]:
    """The scale targets as lines of the results table, one column per database."""
    dbs = list(results["databases"])
    if "scale_runs" not in results:
        return []
    table = []
    for assets in results["scale"]["scale_assets"]:
        growth = {db: _growth(sizes(results, db), assets) for db in dbs}
        table.append(
            Row(
                f"Scale: time per portfolio, most portfolios ÷ the next size down, {assets} assets (median runs)",
                f"≤ {TIME_PER_PORTFOLIO_GROWTH}× on PostgreSQL",
                {db: _growth_text(pair) for db, pair in growth.items()},
                {
                    db: (ms_per_portfolio(pair[1]) / ms_per_portfolio(pair[0]) <= TIME_PER_PORTFOLIO_GROWTH)
                    if pair and db in SCALE_TARGET_DATABASES
                    else None
                    for db, pair in growth.items()
                },
            )
        )
    largest = {db: _largest(sizes(results, db)) for db in dbs}
    table.append(
        Row(
            "Scale: full refresh peak memory at the largest size (median run)",
            f"< {PEAK_MEMORY_LIMIT_MB} MB on PostgreSQL",
            {db: _memory_text(size) for db, size in largest.items()},
            {
                db: _peak(size) < PEAK_MEMORY_LIMIT_MB if size and db in SCALE_TARGET_DATABASES else None
                for db, size in largest.items()
            },
        )
    )
    scale_out = {db: _scale_out(sizes(results, db)) for db in dbs}
    table.append(
        Row(
            f'Scale-out: "{RECALCULATION}" with two worker processes ÷ with one (median of the runs\' ratios)',
            f"≤ {SCALE_OUT_RATIO}× on PostgreSQL",
            {db: _scale_out_text(size) for db, size in scale_out.items()},
            {
                db: _scale_out_ratio(size) <= SCALE_OUT_RATIO if size and db in SCALE_TARGET_DATABASES else None
                for db, size in scale_out.items()
            },
        )
    )
    return table


def _growth_text(pair: tuple[dict, dict] | None) -> str:
    if pair is None:
        return "not measured"
    small, large = pair
    ratio = ms_per_portfolio(large) / ms_per_portfolio(small)
    return (
        f"{ratio:.2f}× ({large['portfolios']}: {ms_per_portfolio(large):.2f} ms, "
        f"{small['portfolios']}: {ms_per_portfolio(small):.2f} ms)"
    )


def _memory_text(size: dict | None) -> str:
    if size is None:
        return "not measured"
    helper = median_run(size["runs"]).get("chunk_workers_peak_rss_mb")
    beside = f" (a worker taking chunk tasks: {helper:.0f} MB)" if helper else ""
    return f"{_peak(size):.0f} MB at {_shape(size)}{beside}"


def _scale_out_text(size: dict | None) -> str:
    if size is None:
        return "not measured (PostgreSQL with Redis only)"
    ratios = scale_out_ratios(size)
    one, two = (median_run(size["scale_out"][n]) for n in ("one", "two"))
    return (
        f"{_scale_out_ratio(size):.2f}× (runs: {', '.join(f'{r:.2f}×' for r in ratios)}; median "
        f"{fmt_s(two['steps'][RECALCULATION] / 1000)} ÷ {fmt_s(one['steps'][RECALCULATION] / 1000)} "
        f"at {_shape(size)})"
    )


def _steps(db_sizes: list[dict]) -> list[str]:
    """Every step any median run spent time in, in the order the runs record them."""
    names: dict[str, None] = {}
    for size in db_sizes:
        names.update({name: None for name, ms in median_run(size["runs"])["steps"].items() if ms})
    return list(names)


def _range(runs: list[dict]) -> str:
    if len(runs) == 1:
        return ""
    low, high = min(run["seconds"] for run in runs), max(run["seconds"] for run in runs)
    return f" ({len(runs)} runs, {low:.2f}–{high:.2f})"


def _size_table(db_sizes: list[dict]) -> list[str]:
    steps = _steps(db_sizes)
    lines = [
        "| portfolios | assets | bars | "
        + " | ".join(steps)
        + " | total | per portfolio | peak RSS (run; chunk worker) | rows written (items updated) |",
        "|---:|---:|---:|" + "---:|" * len(steps) + "---:|---:|---:|---|",
    ]
    for size in sorted(db_sizes, key=lambda s: (s["assets"], s["portfolios"])):
        run = median_run(size["runs"])
        helper = run.get("chunk_workers_peak_rss_mb")
        items = ", ".join(f"{name} {count}" for name, count in sorted(run["items_updated"].items()))
        lines.append(
            f"| {size['portfolios']} | {size['assets']} | {size['seed']['bars']} | "
            + " | ".join(fmt_s(run["steps"].get(step, 0) / 1000) for step in steps)
            + f" | {fmt_s(run['seconds'])}{_range(size['runs'])} | {ms_per_portfolio(size):.2f} ms"
            + f" | {run['peak_rss_mb']:.0f} MB"
            + (f"; {helper:.0f} MB" if helper else "")
            + f" | {items} |"
        )
    return lines


def _scale_out_table(size: dict) -> list[str]:
    lines = [
        f"| worker processes | {RECALCULATION} | total | peak RSS per process | chunks calculated by chunk tasks |",
        "|---:|---:|---:|---:|---:|",
    ]
    for name, processes in (("one", 1), ("two", 2)):
        runs = size["scale_out"][name]
        run = median_run(runs)
        recalculations = ", ".join(fmt_s(r["steps"][RECALCULATION] / 1000) for r in runs)
        lines.append(
            f"| {processes} | {fmt_s(run['steps'][RECALCULATION] / 1000)} (runs: {recalculations}) | "
            f"{fmt_s(run['seconds'])} | {', '.join(f'{mb:.0f} MB' for mb in run['peak_rss_mb'])} | "
            f"{run['chunks_by_tasks']} |"
        )
    return lines


def section(results: dict) -> list[str]:
    """The "## Scale" section of BENCHMARKS.md: how the sizes were measured, the chart, a table
    per database and the scale-out."""
    if "scale_runs" not in results:
        return []
    scale = results["scale"]
    lines = [
        "## Scale",
        "",
        (
            "Each size is seeded into an empty database of its own (`seed_demo --users N --assets N --years "
            f"{scale['scale_years']}`, one portfolio per user), then refreshed in full (`all`, `full`) "
            f"{scale['scale_repeats']} time(s), each in a fresh process with a `qcluster` of one worker beside it "
            "taking its chunk tasks, as in the suite; the tables show the run with the median wall time "
            "(and the range of all of them), its steps, its process's peak RSS and the chunk worker's, and what "
            f"it wrote. Portfolios are calculated in chunks of {scale['scale_chunk_portfolios']}. SQLite runs the "
            f"sizes up to {scale['scale_sqlite_max_portfolios']} portfolios."
        ),
        "",
    ]
    if results.get("scale_chart"):
        lines += [f"![Time per portfolio and peak memory against portfolios]({results['scale_chart']})", ""]
    for db in results["scale_runs"]:
        db_sizes = sizes(results, db)
        lines += [f"### {DATABASES[db]}", "", *_size_table(db_sizes), ""]
        size = _scale_out(db_sizes)
        if size is None:
            continue
        lines += [
            f"Scale-out at {_shape(size)}: the same full refresh requested through the queue, run by one "
            "`qcluster` process with one worker, which also calculates every chunk (`REFRESH_CHUNK_TASKS=0`), "
            "and by two such processes sharing the database and Redis, the run queuing "
            f"{size['scale_out']['two'][0]['chunk_tasks']} chunk tasks per calculation that the other "
            "process takes (a busy single-worker cluster fetches up to two tasks ahead, which it runs only "
            f"after the refresh). {scale['scale_repeats']} run(s) each, in turns; two ÷ one, run by run: "
            + ", ".join(f"{r:.2f}×" for r in scale_out_ratios(size))
            + ".",
            "",
            *_scale_out_table(size),
            "",
        ]
    return lines


def notes(results: dict) -> list[str]:
    """For each missed scale target: by how much, and what the runs show."""
    found = []
    cores = results["machine"]["cores"]
    for db in SCALE_TARGET_DATABASES:
        db_sizes, name = sizes(results, db), DATABASES[db]
        for assets in results.get("scale", {}).get("scale_assets", ()):
            pair = _growth(db_sizes, assets)
            if pair is None:
                continue
            small, large = pair
            ratio = ms_per_portfolio(large) / ms_per_portfolio(small)
            if ratio > TIME_PER_PORTFOLIO_GROWTH:
                found.append(
                    f"**{name}: time per portfolio at {large['portfolios']} portfolios × {assets} assets "
                    f"{ratio:.2f}× that at {small['portfolios']} (target {TIME_PER_PORTFOLIO_GROWTH}×).** "
                    "Per portfolio, step by step (median runs): " + _per_portfolio_steps(small, large) + "."
                )
        largest = _largest(db_sizes)
        if largest and _peak(largest) >= PEAK_MEMORY_LIMIT_MB:
            found.append(
                f"**{name}: peak memory {_peak(largest):.0f} MB at {_shape(largest)} "
                f"(target < {PEAK_MEMORY_LIMIT_MB} MB).** Peak by size: "
                + ", ".join(
                    f"{_shape(s)} ({s['seed']['bars']} bars) {_peak(s):.0f} MB"
                    for s in sorted(db_sizes, key=lambda s: (s["assets"], s["portfolios"]))
                )
                + "."
            )
        size = _scale_out(db_sizes)
        if size and _scale_out_ratio(size) > SCALE_OUT_RATIO:
            one, two = (median_run(size["scale_out"][n]) for n in ("one", "two"))
            chunks = CHUNKED_CALCULATIONS * math.ceil(size["portfolios"] / size["chunk_portfolios"])
            found.append(
                f"**{name}: two worker processes recalculated in {_scale_out_ratio(size):.2f}× the time "
                f"of one (target {SCALE_OUT_RATIO}×).** In the median runs the other process's chunk tasks "
                f"calculated {two['chunks_by_tasks']} of about {chunks} chunks; "
                f"{fmt_s(one['steps'][RECALCULATION] / 1000)} with one, "
                f"{fmt_s(two['steps'][RECALCULATION] / 1000)} with two, whose peaks were "
                f"{', '.join(f'{mb:.0f} MB' for mb in two['peak_rss_mb'])}. Both workers, PostgreSQL and Redis "
                f"share the machine's {cores} cores, and every chunk reads its prices and holdings from, "
                "and writes its rows to, the one database."
            )
    return found


def _per_portfolio_steps(small: dict, large: dict) -> str:
    before, after = median_run(small["runs"]), median_run(large["runs"])
    parts = []
    for step, ms in after["steps"].items():
        if not ms:
            continue
        was = before["steps"].get(step, 0) * 1000 / small["portfolios"]
        now = ms * 1000 / large["portfolios"]
        parts.append(f"{step} {was:.1f} → {now:.1f} µs")
    return ", ".join(parts)
