"""Recalculating and storing each asset's trend-momentum signal."""
from collections.abc import Sequence

import numpy as np
from django.db import transaction
from django.utils import timezone

from ..analytics.signals import MIN_BARS, signal_reason, trend_momentum
from ..batches import batched
from ..models import Signal
from ..selectors import active_asset_ids, load_recent_closes
from .storage import float_or_none, upsert

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
        rows = [
            Signal(
                asset_id=asset_id, as_of=last_dates[i].item(), calculated_at=calculated_at,
                action=str(figures["action"][i]), strength=float(figures["strength"][i]),
                trend=float_or_none(figures["trend"][i]), momentum=float_or_none(figures["momentum"][i]),
                reason=signal_reason(trend=figures["trend"][i], momentum=figures["momentum"][i]),
            )
            for i, asset_id in enumerate(batch)
            if not np.isnat(last_dates[i])
        ]
        with transaction.atomic():
            stored += upsert(Signal, rows, unique_fields=["asset"])
    return stored
