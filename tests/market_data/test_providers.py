"""get_provider: the provider settings ask for, or a clear configuration error."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from market_data.providers import MockProvider, TwelveDataClient, get_provider


def test_mock_provider_from_settings(settings):
    settings.MARKET_DATA_PROVIDER = "mock"
    settings.MOCK_PROVIDER_SEED = 11
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["NIKK"]
    settings.TWELVEDATA_BATCH_SIZE = 50

    provider = get_provider()

    assert isinstance(provider, MockProvider)
    assert (provider.name, provider.seed, provider.batch_size) == ("mock", 11, 50)
    assert provider.fetch_quotes(["NIKK"]).errors


def test_twelvedata_provider_from_settings(settings):
    settings.MARKET_DATA_PROVIDER = "twelvedata"
    settings.TWELVEDATA_API_KEY = "k"
    settings.TWELVEDATA_BASE_URL = "https://proxy.test/td/"
    settings.TWELVEDATA_CONNECT_TIMEOUT, settings.TWELVEDATA_READ_TIMEOUT = 2.0, 9.0

    provider = get_provider()

    assert isinstance(provider, TwelveDataClient)
    assert (provider.name, provider.base_url, provider.timeout) == ("twelvedata", "https://proxy.test/td", (2.0, 9.0))


def test_twelvedata_without_a_key_is_improperly_configured(settings):
    settings.MARKET_DATA_PROVIDER = "twelvedata"
    settings.TWELVEDATA_API_KEY = ""

    with pytest.raises(ImproperlyConfigured, match="TWELVEDATA_API_KEY"):
        get_provider()


def test_unknown_provider_is_improperly_configured(settings):
    settings.MARKET_DATA_PROVIDER = "bloomberg"

    with pytest.raises(ImproperlyConfigured, match="bloomberg"):
        get_provider()
