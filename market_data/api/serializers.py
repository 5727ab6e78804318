"""Query parameters and response shapes of the asset read API.

The responses are JSON-ready dicts built by market_data.selectors and kept as they are in
the data cache; the response serializers describe them for the OpenAPI schema, and tests
check that they name exactly their fields.
"""
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from market_data.models import AssetClass


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


@extend_schema_serializer(many=False)  # a page object, though the view is a list action
class AssetPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AssetSerializer(many=True)


class PriceBarSerializer(serializers.Serializer):
    date = serializers.DateField()
    open = serializers.DecimalField(max_digits=20, decimal_places=6)
    high = serializers.DecimalField(max_digits=20, decimal_places=6)
    low = serializers.DecimalField(max_digits=20, decimal_places=6)
    close = serializers.DecimalField(max_digits=20, decimal_places=6)
    volume = serializers.IntegerField()


class PriceWindowSerializer(AssetSerializer):
    """An asset's daily bars between start and end, oldest first."""

    start = serializers.DateField()
    end = serializers.DateField()
    count = serializers.IntegerField()
    prices = PriceBarSerializer(many=True)
