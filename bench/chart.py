"""The scale chart beside BENCHMARKS.md: time per portfolio and peak memory against portfolios."""

from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # files only: no display, whatever MPLBACKEND says

from matplotlib import pyplot as plt

from bench.rows import DATABASES, PEAK_MEMORY_LIMIT_MB
from bench.scale_report import median_run, ms_per_portfolio, sizes


def write_chart(results: dict, path: Path) -> None:
    """Two panels, one line per database and asset count, each point a size's median run."""
    figure, (per_portfolio, memory) = plt.subplots(1, 2, figsize=(11, 4.5))
    measured: set[int] = set()
    for db in results.get("scale_runs", {}):
        by_assets: dict[int, list[dict]] = {}
        for size in sizes(results, db):
            by_assets.setdefault(size["assets"], []).append(size)
        for assets, found in sorted(by_assets.items()):
            found.sort(key=lambda s: s["portfolios"])
            portfolios = [s["portfolios"] for s in found]
            measured.update(portfolios)
            style = {"marker": "o", "linestyle": "-" if db == "postgresql" else "--"}
            label = f"{DATABASES[db]}, {assets} assets"
            per_portfolio.plot(portfolios, [ms_per_portfolio(s) for s in found], label=label, **style)
            memory.plot(portfolios, [median_run(s["runs"])["peak_rss_mb"] for s in found], label=label, **style)
    memory.axhline(PEAK_MEMORY_LIMIT_MB, color="grey", linestyle=":", label=f"target < {PEAK_MEMORY_LIMIT_MB} MB")
    years = results["scale"]["scale_years"]
    for axes, title, unit in (
        (per_portfolio, "Full refresh time per portfolio", "ms per portfolio"),
        (memory, "Full refresh peak memory (the run's process)", "peak RSS, MB"),
    ):
        axes.set_xscale("log")
        axes.set_xticks(sorted(measured), labels=[f"{n:,}" for n in sorted(measured)])
        axes.minorticks_off()
        axes.set_xlabel(f"portfolios ({years} year(s) of history; log scale)")
        axes.set_ylabel(unit)
        axes.set_title(title)
        axes.set_ylim(bottom=0)
        axes.grid(visible=True, which="both", alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
