"""One incremental prices refresh in a fresh process, with the mock provider answering slowly.

Run as ``python -m bench.provider_concurrency`` with MOCK_PROVIDER_LATENCY (seconds per
provider call) and MARKET_DATA_CONCURRENCY (batches in flight at once) set in the
environment; prints JSON. With real network latency the provider's wait dominates a prices
refresh, which is what fetching batches concurrently saves.
"""

import json

import django


def main():
    django.setup()
    from django.conf import settings

    from bench.suite import timed_run

    timed_run("prices", "smart")  # warm-up: the first plan's one-off costs (the exchange calendar) are not timed
    result = timed_run("prices", "incremental")
    print(
        json.dumps(
            {**result, "latency_s": settings.MOCK_PROVIDER_LATENCY, "concurrency": settings.MARKET_DATA_CONCURRENCY}
        )
    )


if __name__ == "__main__":
    main()
