"""Writes: recalculating and storing portfolio analytics, signals, allocations and rebalances."""
