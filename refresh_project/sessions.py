"""Django's database sessions, with a session cookie no key could be taken for no session."""

import re

from django.contrib.sessions.backends import db

# Django's keys are 32 lowercase letters and digits; a cookie with a NUL byte would reach
# PostgreSQL, which refuses to compare it (a 500 on every page, the admin's login too).
_PLAUSIBLE_KEY = re.compile(r"[a-z0-9]{8,64}")


class SessionStore(db.SessionStore):
    """Any other cookie value starts a fresh session, as an unknown key does."""

    def __init__(self, session_key=None):
        super().__init__(session_key if session_key and _PLAUSIBLE_KEY.fullmatch(session_key) else None)
