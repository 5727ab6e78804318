"""Admin pages of the refresh app: runs with their buttons and dashboard, and refresh buttons for
users and portfolios."""

from refresh.admin import portfolios, runs, users  # noqa: F401  (registering is their side effect)
