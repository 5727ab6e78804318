"""Shapes of the portfolio read API; they render the responses from portfolios.selectors.read_api's data.

The read cache keeps what these render (portfolios/api/cached_reads.py). Fields are declared
in the order the responses show them; bases come first, so a shared part sits where its base is.
"""

from datetime import datetime
from typing import cast

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class OwnerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


NULL_REASONS_HELP = "Figure name to why that figure is null: too few observations, or a zero denominator."
CALCULATED_AT_HELP = (
    "When the refresh stored these figures: a later run that calculates the same figures leaves them, "
    "and this time, as they were (docs/figures.md)."
)


class ShownNullReasonsField(serializers.DictField):
    """Null reasons of the figures its serializer shows only: a summary leaves the others out."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.CharField(), help_text=NULL_REASONS_HELP, **kwargs)

    def to_representation(self, value):
        shown = cast("serializers.Serializer", self.parent).fields
        return super().to_representation({name: reason for name, reason in value.items() if name in shown})


class HeadlineFiguresSerializer(serializers.Serializer):
    as_of = serializers.DateField(help_text="The portfolio's last observation: where its figures end.")
    market_value = serializers.DecimalField(max_digits=20, decimal_places=2, help_text="Of priced holdings only.")
    cost = serializers.DecimalField(max_digits=20, decimal_places=2, help_text="Of priced holdings only.")
    unrealised_pnl = serializers.DecimalField(max_digits=20, decimal_places=2)
    return_1d = serializers.FloatField(allow_null=True)
    return_1m = serializers.FloatField(allow_null=True)
    return_ytd = serializers.FloatField(allow_null=True)
    return_1y = serializers.FloatField(allow_null=True)


class MetricsSummarySerializer(HeadlineFiguresSerializer):
    null_reasons = ShownNullReasonsField()


class UnpricedHoldingSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    since = serializers.DateField(help_text="The first refresh that found it without a price.")


class FigureWindowSerializer(serializers.Serializer):
    """What a set of figures covers and the conventions behind it (docs/figures.md)."""

    return_basis = serializers.ChoiceField(
        choices=["total", "price"],
        help_text=(
            "total: dividends reinvested; price: prices adjusted for splits only. Both sides of a comparison alike."
        ),
    )
    window_start = serializers.DateField(allow_null=True, help_text="The value the window's first return starts from.")
    window_end = serializers.DateField(allow_null=True, help_text="The window's last observation.")
    observations = serializers.IntegerField(help_text="Daily returns in the window.")
    periods_per_year = serializers.IntegerField(
        allow_null=True, help_text=("Annualisation: 252 on a weekday calendar, 365 when observed at weekends too.")
    )
    risk_free_rate = serializers.FloatField(help_text="Annual rate Sharpe, Sortino and alpha are measured against.")
    null_reasons = serializers.DictField(child=serializers.CharField(), help_text=NULL_REASONS_HELP)


class MetricsSerializer(HeadlineFiguresSerializer, FigureWindowSerializer):
    """Valuation and performance over the portfolio's own calendar and its last 12 months."""

    unpriced_holdings = UnpricedHoldingSerializer(many=True, help_text="Left out of value, cost and every figure.")
    period_starts = serializers.DictField(
        child=serializers.DateField(),
        help_text=("Period return (return_1d, return_1m, return_ytd, return_1y) to the date it is measured from."),
    )
    cumulative_return = serializers.FloatField(allow_null=True, help_text="Over the window.")
    annualised_return = serializers.FloatField(allow_null=True, help_text="Compound annual growth; needs a year.")
    volatility = serializers.FloatField(allow_null=True, help_text="Annualised standard deviation of daily returns.")
    downside_deviation = serializers.FloatField(allow_null=True, help_text="Annualised, below the risk-free rate.")
    sharpe = serializers.FloatField(allow_null=True)
    sortino = serializers.FloatField(allow_null=True)
    max_drawdown = serializers.FloatField(allow_null=True, help_text="Worst fall from a peak in the window, <= 0.")
    max_drawdown_peak = serializers.DateField(allow_null=True)
    max_drawdown_trough = serializers.DateField(allow_null=True)
    max_drawdown_recovery = serializers.DateField(allow_null=True, help_text="Null while not back at the peak.")
    calmar = serializers.FloatField(allow_null=True, help_text="Annualised return / |max drawdown|.")
    weights = serializers.DictField(child=serializers.FloatField(), help_text="Symbol to share of market value.")
    calculated_at = serializers.DateTimeField(help_text=CALCULATED_AT_HELP)


class PortfolioSummarySerializer(serializers.Serializer):
    """A portfolio in a list: who owns it and its headline figures (null before its first refresh)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    base_currency = serializers.CharField()
    owner = OwnerSerializer()
    metrics = MetricsSummarySerializer(allow_null=True)


@extend_schema_field(OpenApiTypes.STR)
class PriceTimeField(serializers.Field):
    """When a price was true: a quote's time (a datetime, rendered as the API renders times) or a
    daily close's date."""

    def to_representation(self, value):
        if isinstance(value, datetime):
            return serializers.DateTimeField().to_representation(value)
        return serializers.DateField().to_representation(value)


class HoldingSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    name = serializers.CharField()
    asset_class = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=24, decimal_places=8)
    cost_basis = serializers.DecimalField(max_digits=20, decimal_places=2)
    price = serializers.DecimalField(
        max_digits=20,
        decimal_places=6,
        allow_null=True,
        help_text="The quote when newer than the last daily bar, else the last close.",
    )
    price_as_of = PriceTimeField(allow_null=True, help_text="The quote's time or the close's date.")
    market_value = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    weight = serializers.FloatField(allow_null=True)


class StrategySerializer(serializers.Serializer):
    signal_rule = serializers.CharField()
    tilt = serializers.DecimalField(max_digits=5, decimal_places=4)
    rebalance_threshold = serializers.DecimalField(max_digits=5, decimal_places=4)
    target_weights = serializers.DictField(child=serializers.FloatField())


class AllocationSerializer(serializers.Serializer):
    symbol = serializers.CharField(source="asset.symbol")
    target_weight = serializers.FloatField()
    tilted_weight = serializers.FloatField()
    current_weight = serializers.FloatField()


class SignalSerializer(serializers.Serializer):
    symbol = serializers.CharField(source="asset.symbol")
    as_of = serializers.DateField()
    action = serializers.ChoiceField(choices=["buy", "sell", "hold"])
    strength = serializers.FloatField()
    trend = serializers.FloatField(allow_null=True)
    momentum = serializers.FloatField(allow_null=True)
    reason = serializers.CharField()


class ProposalSerializer(serializers.Serializer):
    symbol = serializers.CharField(source="asset.symbol")
    quantity = serializers.DecimalField(max_digits=24, decimal_places=8, help_text="Positive buys, negative sells.")
    price = serializers.DecimalField(max_digits=20, decimal_places=6)
    value = serializers.DecimalField(max_digits=20, decimal_places=2)
    current_weight = serializers.FloatField()
    target_weight = serializers.FloatField()
    created_at = serializers.DateTimeField()
    refresh_id = serializers.CharField()


class ComparedWithSerializer(serializers.Serializer):
    benchmark_symbol = serializers.CharField()
    as_of = serializers.DateField()


class ComparisonSerializer(ComparedWithSerializer, FigureWindowSerializer):
    """Against the benchmark over the portfolio's periods; co-movement over the window's days
    on which the benchmark traded too."""

    benchmark_return_1d = serializers.FloatField(allow_null=True)
    benchmark_return_1m = serializers.FloatField(allow_null=True)
    benchmark_return_ytd = serializers.FloatField(allow_null=True)
    benchmark_return_1y = serializers.FloatField(allow_null=True)
    excess_return_1y = serializers.FloatField(allow_null=True)
    excess_return_ytd = serializers.FloatField(allow_null=True)
    beta = serializers.FloatField(allow_null=True)
    alpha = serializers.FloatField(allow_null=True, help_text="Jensen's alpha, annualised; needs a year.")
    correlation = serializers.FloatField(allow_null=True)
    tracking_error = serializers.FloatField(allow_null=True)
    information_ratio = serializers.FloatField(allow_null=True)
    asset_correlations = serializers.DictField(child=serializers.FloatField(allow_null=True))
    calculated_at = serializers.DateTimeField(help_text=CALCULATED_AT_HELP)


class PortfolioDetailSerializer(serializers.Serializer):
    """A portfolio with every figure the refresh stores about it."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    base_currency = serializers.CharField()
    owner = OwnerSerializer()
    created_at = serializers.DateTimeField()
    holdings = HoldingSerializer(many=True)
    metrics = MetricsSerializer(allow_null=True)
    strategy = StrategySerializer(allow_null=True)
    allocations = AllocationSerializer(many=True)
    signals = SignalSerializer(many=True, help_text="Of the assets it holds or its strategy targets.")
    rebalance_proposals = ProposalSerializer(many=True, help_text="Open (proposed) trades only.")
    benchmark_comparison = ComparisonSerializer(allow_null=True)
