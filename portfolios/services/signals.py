"""Recalculating and storing each asset's trend-momentum signal."""

from collections.abc import Sequence

import numpy as np
from django.db import transaction
from django.utils import timezone

from core.bulk_writes import write_rows
from portfolios.analytics.signals import MIN_BARS, signal_reason, trend_momentum
from portfolios.batches import batched
from portfolios.models import Signal
from portfolios.selectors.assets import active_asset_ids
from portfolios.selectors.prices import load_recent_closes

from .storage import finite_or_none

# Assets per read-calculate-write round; 500 assets of a year's bars is a few MB.
SIGNAL_BATCH = 500


def recalculate_signals(*, asset_ids: Sequence[int] | None = None) -> int:
    """Recalculates Signal for the assets (all active assets when None); returns how many were stored.

    An asset with no prices at all gets no signal: there is no date it would be as of.
    """
    ids = active_asset_ids() if asset_ids is None else list(dict.fromkeys(asset_ids))
    calculated_at = timezone.now()
    stored = 0
    for batch in batched(ids, SIGNAL_BATCH):
        last_dates, closes = load_recent_closes(asset_ids=batch, count=MIN_BARS)
        figures = trend_momentum(closes)
        found = ~np.isnat(last_dates)
        trend, momentum = figures["trend"][found], figures["momentum"][found]
        with transaction.atomic():
            stored += write_rows(
                Signal,
                unique_fields=["asset"],
                skip_unchanged=True,
                stamps=["calculated_at"],
                columns={
                    "asset": np.asarray(batch, dtype=np.int64)[found].tolist(),
                    "as_of": last_dates[found].tolist(),
                    "action": figures["action"][found].astype(str).tolist(),
                    "strength": figures["strength"][found].astype(float).tolist(),
                    "trend": finite_or_none(trend),
                    "momentum": finite_or_none(momentum),
                    "reason": [signal_reason(trend=t, momentum=m) for t, m in zip(trend, momentum, strict=True)],
                },
                constants={"calculated_at": calculated_at},
            )
    return stored
