"""Pure numpy calculations behind portfolio metrics, benchmarks, signals and allocations."""
