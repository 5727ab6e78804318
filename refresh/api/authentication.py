"""Token authentication that checks a key's shape before looking it up."""

import re

from rest_framework import authentication, exceptions

# Keys DRF makes are 40 hex digits; anything else printable still gets its lookup and its 401.
_PLAUSIBLE_KEY = re.compile(r"[!-~]{1,40}")


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``Authorization: Token <key>``; a key PostgreSQL cannot even compare (a NUL byte) is a 401."""

    def authenticate_credentials(self, key):
        if not _PLAUSIBLE_KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
