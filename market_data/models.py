"""Assets, their daily price bars and latest quotes."""
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

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="bars")
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
