"""Services of the notifications app: receiving webhooks, queueing and sending notifications."""
