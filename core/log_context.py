"""The request a log record belongs to: a context variable, and a filter that stamps records with it."""

import logging
from contextvars import ContextVar

request_context: ContextVar[dict | None] = ContextVar("request_context", default=None)


def current_request_id() -> str | None:
    context = request_context.get()
    return context.get("request_id") if context else None


class RequestContextFilter(logging.Filter):
    """Adds request_id (and who made the request, once known) to every record written in a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = request_context.get()
        if context:
            for name, value in context.items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True
