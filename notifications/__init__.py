"""Inbound webhooks that trigger refreshes, and outbound notifications of refresh events."""
