"""Query parameters and response shapes of the asset read API; the shapes render the responses.

The read cache keeps what these render (market_data/api/cached_reads.py): a page of assets, and
each asset's whole history, from which every requested window of prices is cut.
"""

from bisect import bisect_left, bisect_right
from datetime import date, timedelta
from operator import itemgetter

from django.utils import timezone
from rest_framework import serializers

from market_data.models import AssetClass

DEFAULT_WINDOW_DAYS = 365


class PriceRangeQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First day (YYYY-MM-DD); default one year before end.")
    end = serializers.DateField(required=False, help_text="Last day (YYYY-MM-DD); default the latest bar's day.")

    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError("start must not be after end.")
        return attrs


class QuoteSerializer(serializers.Serializer):
    price = serializers.DecimalField(max_digits=20, decimal_places=6)
    previous_close = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    change = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    as_of = serializers.DateTimeField()


class AssetSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    name = serializers.CharField()
    exchange = serializers.CharField()
    currency = serializers.CharField()
    asset_class = serializers.ChoiceField(choices=AssetClass.choices)
    is_active = serializers.BooleanField()
    quote = QuoteSerializer(allow_null=True, help_text="The latest stored quote; null before the first.")


class PriceBarSerializer(serializers.Serializer):
    date = serializers.DateField()
    open = serializers.DecimalField(max_digits=20, decimal_places=6)
    high = serializers.DecimalField(max_digits=20, decimal_places=6)
    low = serializers.DecimalField(max_digits=20, decimal_places=6)
    close = serializers.DecimalField(max_digits=20, decimal_places=6)
    volume = serializers.IntegerField()


class PriceHistorySerializer(AssetSerializer):
    """An asset with every stored daily bar, oldest first: what the data cache keeps per asset."""

    prices = PriceBarSerializer(many=True, source="bars")


class PriceWindowBoundsSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    count = serializers.IntegerField()


class PriceWindowSerializer(AssetSerializer, PriceWindowBoundsSerializer):
    """An asset's daily bars between start and end, oldest first."""

    prices = PriceBarSerializer(many=True)


def price_window(history: dict, *, start: date | None = None, end: date | None = None) -> dict:
    """PriceWindowSerializer's shape, cut from a rendered PriceHistorySerializer: its bars between
    start and end inclusive, by default the year up to the last bar.

    The asset and its bars were rendered once, when the history was cached; a request renders
    only the window's bounds.
    """
    bars = history["prices"]
    end = end or (date.fromisoformat(bars[-1]["date"]) if bars else timezone.localdate())
    year = timedelta(days=DEFAULT_WINDOW_DAYS)
    start = start or (end - year if end - date.min >= year else date.min)  # no year before year 1
    # Rendered dates are ISO dates, which sort as the days do.
    first = bisect_left(bars, start.isoformat(), key=itemgetter("date"))
    stop = bisect_right(bars, end.isoformat(), key=itemgetter("date"))
    asset = {name: value for name, value in history.items() if name != "prices"}
    bounds = PriceWindowBoundsSerializer({"start": start, "end": end, "count": stop - first}).data
    return {**asset, **bounds, "prices": bars[first:stop]}
