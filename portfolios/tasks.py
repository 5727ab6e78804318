"""django-q2 task entry points; each is one call into the services."""

from portfolios.services.chunks import calculate_pending_chunks


def calculate_chunks(batch_id: int) -> int:
    """Help a run's coordinator calculate its portfolio chunks; returns how many this task did."""
    return calculate_pending_chunks(batch_id=batch_id)
