"""Domain errors of the refresh system; the API turns each into a JSON error."""

from core.errors import DomainError


class RefreshError(DomainError):
    """Base of the refresh system's refusals."""

    code = "refresh_error"


class InvalidRefreshRequest(RefreshError):
    code = "invalid_request"
    status_code = 400


class TargetNotFound(RefreshError):
    code = "not_found"
    status_code = 404


class RunNotCancellable(RefreshError):
    code = "not_cancellable"
    status_code = 409


class RunNotQueued(RefreshError):
    """Only a run still waiting in the queue can be reprioritised."""

    code = "not_queued"
    status_code = 409


class RunNotRetryable(RefreshError):
    code = "not_retryable"
    status_code = 409


class IdempotencyKeyReused(RefreshError):
    """The key was sent before with a different request."""

    code = "idempotency_key_reused"
    status_code = 422


class RunStopped(Exception):
    """Raised at a checkpoint to stop a run between batches (cancel, timeout, lost lease)."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RunPreempted(RunStopped):
    """Raised at a checkpoint when an emergency run needs this run's scope, or its worker
    (``worker_busy``: every worker was busy): it goes back to the queue."""

    def __init__(self, by: str, *, worker_busy: bool = False):
        super().__init__("queued", f"Pre-empted by emergency run {by}.")
        self.by = by
        self.worker_busy = worker_busy
