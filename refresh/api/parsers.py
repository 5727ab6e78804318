"""The API's JSON parser: any body that is not JSON is a 400 malformed_json, never a 500."""

import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant


class JSONParser(parsers.JSONParser):
    """DRF's own lets deep nesting's RecursionError through (a 500) and echoes Python's error text."""

    def parse(self, stream, media_type=None, parser_context=None):
        # DRF's own charset check (3.16+), which its stubs do not know yet.
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]
        try:
            text = stream.read().decode(encoding)
        except UnicodeError:
            raise ParseError(f"The body is not valid {encoding} text.") from None
        try:
            return json.loads(text, parse_constant=strict_constant if self.strict else None)
        except json.JSONDecodeError as exc:
            raise ParseError(f"The body is not valid JSON (line {exc.lineno}, column {exc.colno}).") from None
        except RecursionError:
            raise ParseError("The JSON body is nested too deeply.") from None
        except ValueError:  # NaN or Infinity; an integer of thousands of digits
            raise ParseError("The body is not valid JSON.") from None
