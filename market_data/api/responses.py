"""Responses of the read API built from cached data: the X-Cache header, page links, error docs."""
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from refresh.api.schema import ErrorResponseSerializer

CACHE_HEADER = "X-Cache"
CACHE_NOTE = "Served from the data cache when fresh; the X-Cache header says hit or miss."


def error(description: str) -> OpenApiResponse:
    """An error response for the schema: the API's one error shape."""
    return OpenApiResponse(ErrorResponseSerializer, description=description)


PAGE_ERRORS = {400: error("invalid_request: a malformed page number."), 404: error("not_found: past the last page.")}


class PageQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=10**6, default=1, help_text="1-based page number.")


def requested_page(request) -> int:
    """The ?page= number; a malformed one is a 400 invalid_request."""
    query = PageQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data["page"]


def cached_response(data: dict, *, hit: bool) -> Response:
    """The data as it is, saying whether it came from the cache."""
    return Response(data, headers={CACHE_HEADER: "hit" if hit else "miss"})


def page_response(request, *, data: dict | None, page: int, size: int, hit: bool) -> Response:
    """DRF's page shape ({"count", "next", "previous", "results"}) around a cached page.

    The links are made per request, so the cached page does not depend on the host asked.
    """
    if data is None:
        raise NotFound("Invalid page.")
    url = request.build_absolute_uri()
    last = max(1, -(-data["count"] // size))
    previous = None
    if page > 1:
        previous = remove_query_param(url, "page") if page == 2 else replace_query_param(url, "page", page - 1)
    body = {
        "count": data["count"],
        "next": replace_query_param(url, "page", page + 1) if page < last else None,
        "previous": previous,
        "results": data["results"],
    }
    return cached_response(body, hit=hit)
