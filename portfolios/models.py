"""Portfolios, holdings, strategies and the analytics a refresh stores for them."""

from django.conf import settings
from django.db import models


class Portfolio(models.Model):
    """A user's collection of holdings, valued in its base currency."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portfolios")
    name = models.CharField(max_length=100)
    base_currency = models.CharField(max_length=3, default="USD")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.name} ({self.owner})"


class Holding(models.Model):
    """A position: how much of an asset a portfolio owns and what it cost in total."""

    # No index of its own: unique_holding_per_asset leads with it.
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="holdings", db_index=False)
    asset = models.ForeignKey("market_data.Asset", on_delete=models.PROTECT, related_name="holdings")
    quantity = models.DecimalField(max_digits=24, decimal_places=8)
    cost_basis = models.DecimalField(max_digits=20, decimal_places=2, help_text="Total cost of the position.")

    class Meta:
        ordering = ["portfolio", "asset"]
        constraints = [models.UniqueConstraint(fields=["portfolio", "asset"], name="unique_holding_per_asset")]

    def __str__(self):
        return f"{self.portfolio_id}: {self.quantity} {self.asset_id}"


class SignalRule(models.TextChoices):
    TREND_MOMENTUM = "trend_momentum", "200-day trend and 12-1 month momentum"


class Strategy(models.Model):
    """Target weights for a portfolio, the rule that tilts them and when to rebalance."""

    portfolio = models.OneToOneField(Portfolio, on_delete=models.CASCADE, related_name="strategy")
    target_weights = models.JSONField(help_text='Symbol to weight, e.g. {"SPY": 0.6, "AGG": 0.4}.')
    signal_rule = models.CharField(max_length=30, choices=SignalRule.choices, default=SignalRule.TREND_MOMENTUM)
    tilt = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=0.5,
        help_text="How far a signal of strength 1 moves a weight: 0.5 means up to +/-50% of it.",
    )
    rebalance_threshold = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=0.05,
        help_text="Absolute weight drift that triggers a rebalance proposal.",
    )

    class Meta:
        verbose_name_plural = "strategies"

    def __str__(self):
        return f"Strategy of {self.portfolio}"


class SignalAction(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
    HOLD = "hold", "Hold"


class Signal(models.Model):
    """The strategy's latest view of one asset; shared by every portfolio holding it."""

    asset = models.OneToOneField("market_data.Asset", on_delete=models.CASCADE, related_name="signal")
    as_of = models.DateField()
    action = models.CharField(max_length=4, choices=SignalAction.choices)
    strength = models.FloatField(help_text="-1 (strong sell) to 1 (strong buy).")
    trend = models.FloatField(null=True, help_text="Price over its 200-day average, minus 1.")
    momentum = models.FloatField(null=True, help_text="Return from 12 months to 1 month ago.")
    reason = models.CharField(max_length=300)
    calculated_at = models.DateTimeField()

    def __str__(self):
        return f"{self.asset_id} {self.action} {self.strength:+.2f}"


class Allocation(models.Model):
    """A strategy's target weight for one asset after tilting by signals."""

    # No index of its own: unique_allocation_per_asset leads with it.
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="allocations", db_index=False)
    asset = models.ForeignKey("market_data.Asset", on_delete=models.CASCADE, related_name="+")
    target_weight = models.FloatField()
    tilted_weight = models.FloatField()
    current_weight = models.FloatField()
    calculated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["strategy", "asset"], name="unique_allocation_per_asset")]

    def __str__(self):
        return f"Strategy {self.strategy_id}, asset {self.asset_id}: {self.tilted_weight:.2%}"


class ProposalStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPLIED = "applied", "Applied"
    SUPERSEDED = "superseded", "Superseded"


class RebalanceProposal(models.Model):
    """A trade that would bring one asset back to its tilted weight."""

    # No index of its own: Meta.indexes lead with it.
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="proposals", db_index=False)
    asset = models.ForeignKey("market_data.Asset", on_delete=models.CASCADE, related_name="+")
    current_weight = models.FloatField()
    target_weight = models.FloatField()
    quantity = models.DecimalField(max_digits=24, decimal_places=8, help_text="Positive buys, negative sells.")
    price = models.DecimalField(max_digits=20, decimal_places=6)
    value = models.DecimalField(max_digits=20, decimal_places=2)
    status = models.CharField(max_length=12, choices=ProposalStatus.choices, default=ProposalStatus.PROPOSED)
    created_at = models.DateTimeField()
    applied_at = models.DateTimeField(null=True, blank=True)
    refresh_id = models.CharField(max_length=40, blank=True, help_text="The run that proposed or applied it.")

    class Meta:
        ordering = ["-created_at", "asset"]
        indexes = [models.Index(fields=["strategy", "status"])]

    def __str__(self):
        return f"Strategy {self.strategy_id}: {self.quantity:+} of asset {self.asset_id} ({self.status})"


class ReturnBasis(models.TextChoices):
    TOTAL = "total", "Total return (dividends reinvested)"
    PRICE = "price", "Price return"


class FigureWindow(models.Model):
    """The window and conventions a row of figures was calculated over (docs/figures.md)."""

    return_basis = models.CharField(max_length=5, choices=ReturnBasis.choices, default=ReturnBasis.TOTAL)
    window_start = models.DateField(null=True, help_text="The value the window's first return starts from.")
    window_end = models.DateField(null=True, help_text="The window's last observation.")
    observations = models.PositiveIntegerField(default=0, help_text="Daily returns in the window.")
    periods_per_year = models.PositiveIntegerField(
        null=True, help_text="252 on a weekday calendar, 365 when it trades at weekends too."
    )
    risk_free_rate = models.FloatField(default=0.0, help_text="Annual; what Sharpe, Sortino and alpha are against.")
    null_reasons = models.JSONField(default=dict, help_text="Figure name to why it is null.")

    class Meta:
        abstract = True


class PortfolioMetrics(FigureWindow):
    """A portfolio's latest valuation and performance figures, on its own calendar."""

    portfolio = models.OneToOneField(Portfolio, on_delete=models.CASCADE, primary_key=True, related_name="metrics")
    as_of = models.DateField()
    market_value = models.DecimalField(max_digits=20, decimal_places=2, help_text="Of priced holdings only.")
    cost = models.DecimalField(max_digits=20, decimal_places=2, help_text="Of priced holdings only.")
    unrealised_pnl = models.DecimalField(max_digits=20, decimal_places=2)
    unpriced_holdings = models.JSONField(
        default=list, help_text="Holdings without any price, left out of value and cost: symbol and since when."
    )
    return_1d = models.FloatField(null=True)
    return_1m = models.FloatField(null=True)
    return_ytd = models.FloatField(null=True)
    return_1y = models.FloatField(null=True)
    period_starts = models.JSONField(default=dict, help_text="Period return to the date it starts from.")
    cumulative_return = models.FloatField(null=True, help_text="Over the window.")
    annualised_return = models.FloatField(null=True, help_text="Compound annual growth over the window.")
    volatility = models.FloatField(null=True, help_text="Annualised standard deviation of daily returns.")
    downside_deviation = models.FloatField(null=True, help_text="Annualised, below the risk-free rate.")
    sharpe = models.FloatField(null=True)
    sortino = models.FloatField(null=True)
    max_drawdown = models.FloatField(null=True, help_text="Worst peak-to-trough fall in the window, <= 0.")
    max_drawdown_peak = models.DateField(null=True)
    max_drawdown_trough = models.DateField(null=True)
    max_drawdown_recovery = models.DateField(null=True, help_text="Back to the peak; null while it is not.")
    calmar = models.FloatField(null=True)
    weights = models.JSONField(default=dict)
    calculated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "portfolio metrics"

    def __str__(self):
        return f"Portfolio {self.portfolio_id} as of {self.as_of}"


class BenchmarkComparison(FigureWindow):
    """How a portfolio did against the benchmark over the same periods, on the same basis.

    The window is the days of the portfolio's one-year window on which the benchmark traded too.
    """

    portfolio = models.OneToOneField(
        Portfolio, on_delete=models.CASCADE, primary_key=True, related_name="benchmark_comparison"
    )
    benchmark_symbol = models.CharField(max_length=20)
    as_of = models.DateField()
    benchmark_return_1d = models.FloatField(null=True)
    benchmark_return_1m = models.FloatField(null=True)
    benchmark_return_ytd = models.FloatField(null=True)
    benchmark_return_1y = models.FloatField(null=True)
    excess_return_1y = models.FloatField(null=True)
    excess_return_ytd = models.FloatField(null=True)
    beta = models.FloatField(null=True)
    alpha = models.FloatField(null=True, help_text="Jensen's alpha, annualised, against the risk-free rate.")
    correlation = models.FloatField(null=True)
    tracking_error = models.FloatField(null=True)
    information_ratio = models.FloatField(null=True)
    asset_correlations = models.JSONField(default=dict, help_text="Symbol to correlation with the benchmark.")
    calculated_at = models.DateTimeField()

    def __str__(self):
        return f"Portfolio {self.portfolio_id} against {self.benchmark_symbol} as of {self.as_of}"


class ChunkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class CalculationBatch(models.Model):
    """One calculation over many portfolios, in chunks that any worker may take (services/chunks.py).

    It lives as long as the process that started it (the coordinator) renews its lease.
    """

    work = models.CharField(max_length=200, help_text="Dotted path of the function that calculates a chunk.")
    params = models.JSONField(default=dict, help_text="What every chunk shares: the run's conventions and time.")
    portfolios = models.PositiveIntegerField()
    coordinator = models.CharField(max_length=100)
    series = models.CharField(
        max_length=32,
        blank=True,
        help_text="The coordinator's shared reads: the passes of one recalculation share it, and a worker "
        "that helped with one pass moves on to the next, keeping what it read.",
    )
    lease_expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "calculation batches"

    def __str__(self):
        return f"{self.work} over {self.portfolios} portfolios"


class CalculationChunk(models.Model):
    """Some portfolios of a batch, calculated and stored in one transaction by whoever claims them."""

    # No index of its own: unique_chunk_position leads with it.
    batch = models.ForeignKey(CalculationBatch, on_delete=models.CASCADE, related_name="chunks", db_index=False)
    position = models.PositiveIntegerField()
    portfolio_ids = models.JSONField()
    size = models.PositiveIntegerField()
    status = models.CharField(max_length=9, choices=ChunkStatus.choices, default=ChunkStatus.PENDING)
    claimed_by = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, help_text="A running chunk whose lease lapsed is claimed again.")
    counts = models.JSONField(default=dict, help_text="What the chunk stored, by kind of row.")
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "position"], name="unique_chunk_position")]

    def __str__(self):
        return f"chunk {self.position} of batch {self.batch_id}: {self.status}"
