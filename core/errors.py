"""The base of the errors services raise for the API to answer in its error envelope."""


class DomainError(Exception):
    """A refused request: a stable machine code, a human message and the HTTP status it maps to.

    ``retry_after`` (whole seconds) is set by refusals that pass with time, such as a rate limit;
    the API then adds it to the envelope and sends a Retry-After header.
    """

    code = "error"
    status_code = 400
    retry_after: int | None = None

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
