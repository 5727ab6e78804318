"""The portfolio reads the read cache keeps, and which of them a change of portfolios touches.

``portfolio:<id>`` is a portfolio in full, ``portfolio-list:<owner id | all>:page:<n>`` a page of
one owner's portfolios or of everyone's; each holds its endpoint's serializer's rendering, built
here for the views and for warming alike.
"""

from collections.abc import Iterable

from core.api.pagination import CachedPagePagination
from core.read_cache import CachedRead
from portfolios.selectors.holdings import existing_portfolio_ids
from portfolios.selectors.read_api import portfolio_detail, portfolio_list, portfolio_list_pages

from .serializers import PortfolioDetailSerializer, PortfolioSummarySerializer


def portfolio_read(portfolio_id: int) -> CachedRead:
    def build():
        portfolio = portfolio_detail(portfolio_id=portfolio_id)
        return None if portfolio is None else PortfolioDetailSerializer(portfolio).data

    return CachedRead(f"portfolio:{portfolio_id}", build)


def portfolio_page_read(*, owner_id: int | None, page: int) -> CachedRead:
    """A page of one owner's portfolios, or of everyone's (owner_id None) for admins and support."""
    return CachedRead(
        f"portfolio-list:{'all' if owner_id is None else owner_id}:page:{page}",
        lambda: CachedPagePagination().render_page(
            portfolio_list(owner_id=owner_id), PortfolioSummarySerializer, number=page
        ),
    )


def reads_showing(*, portfolio_ids: Iterable[int] | None) -> list[CachedRead]:
    """Every read whose content depends on these portfolios (None: all of them).

    A portfolio appears in its own entry and on one page of its owner's list and of the list
    of everyone's.
    """
    every_id = existing_portfolio_ids()
    ids = every_id if portfolio_ids is None else sorted(set(portfolio_ids))
    size = CachedPagePagination().get_page_size()
    # Every page of every list is counted, not searched for.
    owner_pages, all_pages = portfolio_list_pages(portfolio_ids=None if set(ids) >= set(every_id) else ids, size=size)
    return [
        *(portfolio_read(pid) for pid in ids),
        *(
            portfolio_page_read(owner_id=owner, page=page)
            for owner, pages in sorted(owner_pages.items())
            for page in sorted(pages)
        ),
        *(portfolio_page_read(owner_id=None, page=page) for page in sorted(all_pages)),
    ]
