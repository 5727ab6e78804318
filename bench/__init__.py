"""Benchmarks of the refresh engine, the trigger endpoint and the queue: ``python -m bench``."""
