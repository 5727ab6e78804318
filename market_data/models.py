"""Assets, their daily price bars and latest quotes; price anomalies and provider credit use."""

from django.db import models


class AssetClass(models.TextChoices):
    EQUITY = "equity", "Equity"
    ETF = "etf", "ETF"
    BOND = "bond", "Bond fund"
    COMMODITY = "commodity", "Commodity"
    REIT = "reit", "Real estate"
    CRYPTO = "crypto", "Crypto"


class Asset(models.Model):
    """A tradable instrument whose prices the refresh keeps current."""

    symbol = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200, blank=True)
    exchange = models.CharField(max_length=50, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    asset_class = models.CharField(max_length=20, choices=AssetClass.choices, default=AssetClass.EQUITY)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self):
        return self.symbol


class PriceBar(models.Model):
    """One trading day's open, high, low, close and volume for an asset."""

    # No index of its own: unique_bar_per_asset_day leads with it, and a third index on the
    # largest table would cost every bar written.
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="bars", db_index=False)
    date = models.DateField()
    open = models.DecimalField(max_digits=20, decimal_places=6)
    high = models.DecimalField(max_digits=20, decimal_places=6)
    low = models.DecimalField(max_digits=20, decimal_places=6)
    close = models.DecimalField(max_digits=20, decimal_places=6)
    volume = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["asset", "date"]
        constraints = [models.UniqueConstraint(fields=["asset", "date"], name="unique_bar_per_asset_day")]

    def __str__(self):
        return f"{self.asset_id} {self.date} {self.close}"


class Quote(models.Model):
    """The latest known price of an asset, as last fetched from the provider."""

    asset = models.OneToOneField(Asset, on_delete=models.CASCADE, primary_key=True, related_name="quote")
    price = models.DecimalField(max_digits=20, decimal_places=6)
    previous_close = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    change = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    as_of = models.DateTimeField(help_text="When the provider says the price was true.")
    fetched_at = models.DateTimeField()
    source = models.CharField(max_length=20)

    def __str__(self):
        return f"{self.asset_id} {self.price}"


class AnomalyKind(models.TextChoices):
    NON_POSITIVE = "non_positive", "Price of zero or below"
    MISSING_FIELD = "missing_field", "Missing field"
    STALE = "stale", "Stale timestamp"
    LARGE_MOVE = "large_move", "One-day move beyond the threshold"


class PriceAnomaly(models.Model):
    """A suspicious price the provider sent; quarantined ones were not applied."""

    symbol = models.CharField(max_length=20, db_index=True)
    kind = models.CharField(max_length=20, choices=AnomalyKind.choices)
    message = models.CharField(max_length=300)
    observed_on = models.DateField(null=True, blank=True, help_text="The day the price is for.")
    value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    reference = models.DecimalField(
        max_digits=20, decimal_places=6, null=True, blank=True, help_text="The stored price it was compared with."
    )
    quarantined = models.BooleanField(default=True)
    refresh_id = models.CharField(max_length=40, blank=True, db_index=True)
    source = models.CharField(max_length=20)
    detected_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-detected_at", "symbol"]
        verbose_name_plural = "price anomalies"

    def __str__(self):
        return f"{self.symbol} {self.kind} {self.observed_on}"


class CreditPeriod(models.TextChoices):
    MINUTE = "minute", "Minute"
    DAY = "day", "Day (UTC)"


class CreditWindow(models.Model):
    """Provider credits taken in one minute or one UTC day: the shared budget without Redis."""

    period = models.CharField(max_length=6, choices=CreditPeriod.choices)
    starts_at = models.DateTimeField()
    used = models.PositiveIntegerField(default=0)
    exhausted = models.BooleanField(default=False, help_text="The provider said this window's credits are gone.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["period", "starts_at"], name="one_credit_window_per_period")]

    def __str__(self):
        return f"{self.period} {self.starts_at:%Y-%m-%d %H:%M}: {self.used}"


class ProviderUsage(models.Model):
    """Provider requests and credits spent on one UTC day, per provider."""

    day = models.DateField()
    provider = models.CharField(max_length=20)
    calls = models.PositiveIntegerField(default=0)
    credits = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "provider"]
        constraints = [models.UniqueConstraint(fields=["day", "provider"], name="one_usage_row_per_day")]

    def __str__(self):
        return f"{self.day} {self.provider}: {self.calls} calls, {self.credits} credits"
