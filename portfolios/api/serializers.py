"""Shapes of the portfolio read API, for the OpenAPI schema.

The responses themselves are JSON-ready dicts built by portfolios.selectors and kept as they
are in the data cache; tests check that these serializers name exactly their fields.
"""
from rest_framework import serializers


class OwnerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class MetricsSummarySerializer(serializers.Serializer):
    as_of = serializers.DateField()
    market_value = serializers.DecimalField(max_digits=20, decimal_places=2)
    cost = serializers.DecimalField(max_digits=20, decimal_places=2)
    unrealised_pnl = serializers.DecimalField(max_digits=20, decimal_places=2)
    return_1d = serializers.FloatField(allow_null=True)
    return_1m = serializers.FloatField(allow_null=True)
    return_ytd = serializers.FloatField(allow_null=True)
    return_1y = serializers.FloatField(allow_null=True)


class MetricsSerializer(MetricsSummarySerializer):
    volatility = serializers.FloatField(allow_null=True, help_text="Annualised, from one year of daily returns.")
    sharpe = serializers.FloatField(allow_null=True)
    max_drawdown = serializers.FloatField(allow_null=True, help_text="Worst fall from a peak over one year, <= 0.")
    weights = serializers.DictField(child=serializers.FloatField(), help_text="Symbol to share of market value.")
    calculated_at = serializers.DateTimeField()


class PortfolioSummarySerializer(serializers.Serializer):
    """A portfolio in a list: who owns it and its headline figures (null before its first refresh)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    base_currency = serializers.CharField()
    owner = OwnerSerializer()
    metrics = MetricsSummarySerializer(allow_null=True)


class PortfolioPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PortfolioSummarySerializer(many=True)


class HoldingSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    name = serializers.CharField()
    asset_class = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=24, decimal_places=8)
    cost_basis = serializers.DecimalField(max_digits=20, decimal_places=2)
    price = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True,
                                     help_text="The quote when newer than the last daily bar, else the last close.")
    price_as_of = serializers.CharField(allow_null=True, help_text="The quote's time or the close's date.")
    market_value = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    weight = serializers.FloatField(allow_null=True)


class StrategySerializer(serializers.Serializer):
    signal_rule = serializers.CharField()
    tilt = serializers.DecimalField(max_digits=5, decimal_places=4)
    rebalance_threshold = serializers.DecimalField(max_digits=5, decimal_places=4)
    target_weights = serializers.DictField(child=serializers.FloatField())


class AllocationSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    target_weight = serializers.FloatField()
    tilted_weight = serializers.FloatField()
    current_weight = serializers.FloatField()


class SignalSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    as_of = serializers.DateField()
    action = serializers.ChoiceField(choices=["buy", "sell", "hold"])
    strength = serializers.FloatField()
    trend = serializers.FloatField(allow_null=True)
    momentum = serializers.FloatField(allow_null=True)
    reason = serializers.CharField()


class ProposalSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=24, decimal_places=8, help_text="Positive buys, negative sells.")
    price = serializers.DecimalField(max_digits=20, decimal_places=6)
    value = serializers.DecimalField(max_digits=20, decimal_places=2)
    current_weight = serializers.FloatField()
    target_weight = serializers.FloatField()
    created_at = serializers.DateTimeField()
    refresh_id = serializers.CharField()


class ComparisonSerializer(serializers.Serializer):
    benchmark_symbol = serializers.CharField()
    as_of = serializers.DateField()
    benchmark_return_1d = serializers.FloatField(allow_null=True)
    benchmark_return_1m = serializers.FloatField(allow_null=True)
    benchmark_return_ytd = serializers.FloatField(allow_null=True)
    benchmark_return_1y = serializers.FloatField(allow_null=True)
    excess_return_1y = serializers.FloatField(allow_null=True)
    excess_return_ytd = serializers.FloatField(allow_null=True)
    beta = serializers.FloatField(allow_null=True)
    correlation = serializers.FloatField(allow_null=True)
    tracking_error = serializers.FloatField(allow_null=True)
    asset_correlations = serializers.DictField(child=serializers.FloatField(allow_null=True))
    calculated_at = serializers.DateTimeField()


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
