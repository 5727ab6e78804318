"""The refresh figures in Prometheus' text format, read from the database at each scrape.

A collector rather than in-process counters: runs execute in worker processes, and the
figures must not reset or diverge when a process restarts or another one is scraped.
"""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from refresh.models import ACTIVE_STATUSES
from refresh.monitoring import DURATION_BUCKETS, OUTCOME_STATUSES, lifetime_cache_impact, lifetime_totals


class RefreshRunCollector(Collector):
    """Runs by kind, source and status, their durations, provider use and cache impact."""

    def collect(self):
        rows = lifetime_totals()
        finished = CounterMetricFamily(
            "refresh_runs_finished", "Runs that ended, by outcome.", labels=["kind", "source", "status"]
        )
        active = GaugeMetricFamily("refresh_runs_active", "Runs queued or in progress.", labels=["kind", "status"])
        calls = CounterMetricFamily(
            "refresh_provider_calls", "Market-data provider calls made by runs.", labels=["kind"]
        )
        credits_spent = CounterMetricFamily(
            "refresh_provider_credits", "Provider credits spent by runs.", labels=["kind"]
        )
        durations = HistogramMetricFamily(
            "refresh_run_duration_seconds", "Duration of runs that ran to an outcome.", labels=["kind"]
        )
        active_counts: dict[tuple, int] = {}
        per_kind: dict[str, dict] = {}
        for row in rows:
            kind = row["kind"]
            if row["status"] in ACTIVE_STATUSES:
                key = (kind, row["status"])
                active_counts[key] = active_counts.get(key, 0) + row["runs"]
            else:
                finished.add_metric([kind, row["source"], row["status"]], row["runs"])
            totals = per_kind.setdefault(
                kind, {"calls": 0, "credits": 0, "count": 0, "sum": 0, "buckets": [0] * len(DURATION_BUCKETS)}
            )
            totals["calls"] += row["provider_calls"] or 0
            totals["credits"] += row["credits_used"] or 0
            if row["status"] in OUTCOME_STATUSES:
                totals["count"] += row["timed"]
                totals["sum"] += row["duration_ms_sum"] or 0
                for i in range(len(DURATION_BUCKETS)):
                    totals["buckets"][i] += row[f"le_{i}"]
        for (kind, status), count in sorted(active_counts.items()):
            active.add_metric([kind, status], count)
        for kind, totals in sorted(per_kind.items()):
            calls.add_metric([kind], totals["calls"])
            credits_spent.add_metric([kind], totals["credits"])
            buckets = [
                (floatToGoString(bound), count)
                for bound, count in zip(DURATION_BUCKETS, totals["buckets"], strict=True)
            ]
            durations.add_metric([kind], [*buckets, ("+Inf", totals["count"])], sum_value=totals["sum"] / 1000)
        yield from (finished, active, calls, credits_spent, durations)
        cache = CounterMetricFamily(
            "refresh_cache_keys", "Cache keys touched by runs, by action.", labels=["kind", "action"]
        )
        for kind, impact in sorted(lifetime_cache_impact().items()):
            for action, count in sorted(impact.items()):
                cache.add_metric([kind, action], count)
        yield cache


def render_prometheus() -> bytes:
    """The exposition text of a registry holding only the refresh collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RefreshRunCollector())
    return generate_latest(registry)
