"""Money as stored: Decimal amounts to the cent."""

from decimal import Decimal

CENT = Decimal("0.01")
