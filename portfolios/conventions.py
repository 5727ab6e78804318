"""The conventions every stored figure shares, read from settings: return basis and risk-free rate."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .models import ReturnBasis

# The history adjustment (as Twelve Data names it) that gives each basis's returns.
HISTORY_ADJUSTMENT: dict[str, str] = {ReturnBasis.TOTAL: "all", ReturnBasis.PRICE: "splits"}


def return_basis() -> str:
    """REFRESH_RETURN_BASIS: "total" (dividends reinvested) or "price", for portfolios and benchmark alike."""
    basis = settings.REFRESH_RETURN_BASIS
    if basis not in ReturnBasis.values:
        raise ImproperlyConfigured(
            f"REFRESH_RETURN_BASIS must be one of {', '.join(ReturnBasis.values)}, got {basis!r}"
        )
    return basis


def history_adjustment() -> str:
    """The adjustment every symbol's daily history is fetched with, the benchmark's included, so
    that both sides of a comparison are on the same basis."""
    return HISTORY_ADJUSTMENT[return_basis()]


def risk_free_rate() -> float:
    """REFRESH_RISK_FREE_RATE: the annual rate Sharpe, Sortino, downside deviation and alpha are measured against."""
    return float(settings.REFRESH_RISK_FREE_RATE)
