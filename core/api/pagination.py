"""Pagination of the read API's lists: DRF's page shape around pages rendered once and cached."""

from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import InvalidPage
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.api.schema import documented_error

# A paginated list's errors, for its schema.
PAGE_ERRORS = {
    400: documented_error("invalid_request: a malformed page number."),
    404: documented_error("not_found: past the last page."),
}


class PageQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=10**6, default=1, help_text="1-based page number.")


class CachedPagePagination(PageNumberPagination):
    """DRF's PageNumberPagination for lists that the data cache keeps a page at a time.

    ``render_page`` renders one page of a queryset with a serializer, as the cache stores it
    (``{"count", "results"}``); ``get_cached_response`` answers with DRF's page shape around
    such a page, its links made per request so that a cached page does not depend on the host
    asked. A malformed ``?page=`` is a 400 invalid_request; past the last page, DRF's 404.
    """

    def get_page_size(self, request=None) -> int:
        # Not the class attribute, which is PAGE_SIZE at import: DRF's settings follow a change.
        if api_settings.PAGE_SIZE is None:
            raise ImproperlyConfigured("The read API's lists need REST_FRAMEWORK['PAGE_SIZE'].")
        return api_settings.PAGE_SIZE

    def get_page_number(self, request, paginator=None) -> int:
        query = PageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data["page"]

    def render_page(self, queryset, serializer_class: type[serializers.Serializer], *, number: int) -> dict | None:
        """Page `number` of the queryset rendered: {"count": all rows, "results"}; None past the last page."""
        paginator = self.django_paginator_class(queryset, self.get_page_size())
        try:
            page = paginator.page(number)
        except InvalidPage:
            return None
        return {"count": paginator.count, "results": serializer_class(page.object_list, many=True).data}

    def get_cached_response(self, request, page: dict | None, *, number: int) -> Response:
        """DRF's page response around a page from render_page (None: past the last page, a 404)."""
        if page is None:
            raise NotFound(self.invalid_page_message)
        self.request = request
        # A paginator over the cached count alone: DRF's links and page controls need no rows.
        self.page = self.django_paginator_class(range(page["count"]), self.get_page_size()).page(number)
        self.display_page_controls = self.page.paginator.num_pages > 1
        return self.get_paginated_response(page["results"])
