"""Building the demo data set: real tickers, users with portfolios and strategies, history.

The same builder scales up for benchmarks (--users, --assets, --years); it is deterministic
for a given seed and writes in bulk.
"""

from datetime import timedelta
from decimal import Decimal
from typing import TypedDict

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from market_data.batching import split_batches
from market_data.calendar import last_closed_session
from market_data.models import Asset, AssetClass
from market_data.providers import get_provider
from market_data.services import store_history
from portfolios.conventions import history_adjustment
from portfolios.models import Holding, Portfolio, Strategy

DEMO_ADMIN = ("admin", "admin-demo")
DEMO_USERS = ("alice", "bob", "carol")
DEMO_PASSWORD = "demo-pass"  # noqa: S105 - the demo users' published password, not a secret
# (symbol, name, exchange, class): about thirty real tickers across asset classes.
DEMO_ASSETS = [
    ("AAPL", "Apple Inc", "NASDAQ", AssetClass.EQUITY),
    ("MSFT", "Microsoft Corp", "NASDAQ", AssetClass.EQUITY),
    ("GOOGL", "Alphabet Inc", "NASDAQ", AssetClass.EQUITY),
    ("AMZN", "Amazon.com Inc", "NASDAQ", AssetClass.EQUITY),
    ("NVDA", "NVIDIA Corp", "NASDAQ", AssetClass.EQUITY),
    ("META", "Meta Platforms", "NASDAQ", AssetClass.EQUITY),
    ("JPM", "JPMorgan Chase", "NYSE", AssetClass.EQUITY),
    ("JNJ", "Johnson & Johnson", "NYSE", AssetClass.EQUITY),
    ("XOM", "Exxon Mobil", "NYSE", AssetClass.EQUITY),
    ("PG", "Procter & Gamble", "NYSE", AssetClass.EQUITY),
    ("KO", "Coca-Cola Co", "NYSE", AssetClass.EQUITY),
    ("V", "Visa Inc", "NYSE", AssetClass.EQUITY),
    ("UNH", "UnitedHealth Group", "NYSE", AssetClass.EQUITY),
    ("HD", "Home Depot", "NYSE", AssetClass.EQUITY),
    ("SPY", "SPDR S&P 500 ETF", "NYSE ARCA", AssetClass.ETF),
    ("QQQ", "Invesco QQQ", "NASDAQ", AssetClass.ETF),
    ("IWM", "iShares Russell 2000", "NYSE ARCA", AssetClass.ETF),
    ("EFA", "iShares MSCI EAFE", "NYSE ARCA", AssetClass.ETF),
    ("EEM", "iShares MSCI Emerging Markets", "NYSE ARCA", AssetClass.ETF),
    ("VTI", "Vanguard Total Stock Market", "NYSE ARCA", AssetClass.ETF),
    ("AGG", "iShares Core US Aggregate Bond", "NYSE ARCA", AssetClass.BOND),
    ("TLT", "iShares 20+ Year Treasury", "NASDAQ", AssetClass.BOND),
    ("LQD", "iShares Investment Grade Corporate", "NYSE ARCA", AssetClass.BOND),
    ("BND", "Vanguard Total Bond Market", "NASDAQ", AssetClass.BOND),
    ("GLD", "SPDR Gold Shares", "NYSE ARCA", AssetClass.COMMODITY),
    ("SLV", "iShares Silver Trust", "NYSE ARCA", AssetClass.COMMODITY),
    ("VNQ", "Vanguard Real Estate", "NYSE ARCA", AssetClass.REIT),
    ("O", "Realty Income", "NYSE", AssetClass.REIT),
    ("BTC/USD", "Bitcoin", "Coinbase", AssetClass.CRYPTO),
    ("ETH/USD", "Ethereum", "Coinbase", AssetClass.CRYPTO),
]


class DemoSummary(TypedDict):
    """What seeding created or found, and how to sign in as the demo admin."""

    users: int
    assets: int
    portfolios_created: int
    bars: int
    admin_username: str
    admin_password: str


def _ensure_user(username: str, password: str, **flags: bool) -> User:
    user, created = get_user_model().objects.get_or_create(username=username, defaults=flags)
    if created:
        user.set_password(password)
        user.save()
    return user


def _seed_assets(n_assets: int) -> list[Asset]:
    rows = [Asset(symbol=s, name=n, exchange=e, asset_class=c) for s, n, e, c in DEMO_ASSETS[:n_assets]]
    rows += [
        Asset(symbol=f"SYN{i:04d}", name=f"Synthetic asset {i}", exchange="DEMO")
        for i in range(max(0, n_assets - len(DEMO_ASSETS)))
    ]
    if settings.BENCHMARK_SYMBOL not in {a.symbol for a in rows}:
        rows.append(Asset(symbol=settings.BENCHMARK_SYMBOL, name="Benchmark", asset_class=AssetClass.ETF))
    Asset.objects.bulk_create(rows, ignore_conflicts=True)
    return list(Asset.objects.filter(symbol__in=[a.symbol for a in rows]).order_by("symbol"))


def _seed_portfolios(users: list[User], assets: list[Asset], rng: np.random.Generator) -> int:
    """One portfolio per user without one, 4-12 holdings, and a strategy over them."""
    have = set(Portfolio.objects.filter(owner__in=users).values_list("owner_id", flat=True))
    owners = [u for u in users if u.pk not in have]
    portfolios = Portfolio.objects.bulk_create(
        [Portfolio(owner=u, name=f"{u.username.capitalize()}'s portfolio") for u in owners]
    )
    holdings, strategies = [], []
    for portfolio in portfolios:
        picks = rng.choice(len(assets), size=min(len(assets), int(rng.integers(4, 13))), replace=False)
        raw = rng.dirichlet(np.ones(len(picks)))
        weights = np.round(raw / raw.sum(), 4)
        weights[-1] = round(1 - weights[:-1].sum(), 4)
        for index in picks:
            quantity = Decimal(str(round(float(rng.uniform(5, 200)), 4)))
            cost = (quantity * Decimal(str(round(float(rng.uniform(20, 400)), 2)))).quantize(Decimal("0.01"))
            holdings.append(Holding(portfolio=portfolio, asset=assets[index], quantity=quantity, cost_basis=cost))
        strategies.append(
            Strategy(
                portfolio=portfolio,
                target_weights={assets[i].symbol: float(w) for i, w in zip(picks, weights, strict=True)},
            )
        )
    Holding.objects.bulk_create(holdings, batch_size=5000)
    Strategy.objects.bulk_create(strategies, batch_size=5000)
    return len(portfolios)


def _seed_history(assets: list[Asset], years: int) -> int:
    if years <= 0:
        return 0
    provider = get_provider()
    end = last_closed_session(now=timezone.now())  # where a refresh's history ends too
    start = end - timedelta(days=round(365.25 * years))
    rows = 0
    for batch in split_batches([a.symbol for a in assets], provider.batch_size):
        result = provider.fetch_history(batch, start=start, end=end, adjust=history_adjustment())
        rows += store_history(histories=result.items.values())
    return rows


def seed_demo(
    *, users: int = len(DEMO_USERS), assets: int = len(DEMO_ASSETS), years: int = 2, seed: int = 42
) -> DemoSummary:
    """Create (or top up) the demo; returns counts and the admin login."""
    rng = np.random.default_rng(seed)
    with transaction.atomic():
        _ensure_user(DEMO_ADMIN[0], DEMO_ADMIN[1], is_staff=True, is_superuser=True)
        named = [_ensure_user(name, DEMO_PASSWORD) for name in DEMO_USERS[:users]]
        extra = max(0, users - len(DEMO_USERS))
        if extra:
            password = make_password(DEMO_PASSWORD)
            get_user_model().objects.bulk_create(
                [get_user_model()(username=f"user{i:05d}", password=password) for i in range(extra)],
                ignore_conflicts=True,
                batch_size=5000,
            )
        people = named + list(get_user_model().objects.filter(username__startswith="user").order_by("id")[:extra])
        asset_rows = _seed_assets(assets)
        created = _seed_portfolios(people, asset_rows, rng)
    bars = _seed_history(asset_rows, years)
    return {
        "users": len(people),
        "assets": len(asset_rows),
        "portfolios_created": created,
        "bars": bars,
        "admin_username": DEMO_ADMIN[0],
        "admin_password": DEMO_ADMIN[1],
    }
