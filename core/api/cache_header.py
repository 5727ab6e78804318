"""The X-Cache header of responses served through the read cache, and the schema's note on it."""

from rest_framework.response import Response

CACHE_HEADER = "X-Cache"
CACHE_NOTE = "Served from the data cache when fresh; the X-Cache header says hit or miss."


def with_cache_header(response: Response, *, hit: bool) -> Response:
    """The response, saying whether its data came from the cache."""
    response[CACHE_HEADER] = "hit" if hit else "miss"
    return response
