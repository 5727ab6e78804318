"""django-q2 task entry points; each is one call into the services."""

from notifications.services.outbound import attempt_delivery, recover_lost_deliveries


def deliver_notification(delivery_id: int):
    """One attempt at one notification delivery (retries schedule themselves)."""
    delivery = attempt_delivery(delivery_id=delivery_id)
    return delivery.status if delivery else "nothing to do"


def recover_lost_notifications():
    """The periodic sweep: attempts left `sending` by a killed worker, deliveries whose task was lost."""
    return recover_lost_deliveries()
