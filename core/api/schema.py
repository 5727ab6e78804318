"""The API's error shape in the OpenAPI schema, and the errors every operation of a shape can answer."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine code, e.g. invalid_request, forbidden, rate_limited.")
    message = serializers.CharField(help_text="What went wrong, for a person.")
    # A declared field, not Serializer.fields: DRF's metaclass takes it off the class.
    fields = serializers.DictField(  # type: ignore[assignment]
        required=False, help_text="invalid_request only: messages per field."
    )
    retry_after = serializers.IntegerField(required=False, help_text="Rate limits only: seconds to wait.")


class ErrorResponseSerializer(serializers.Serializer):
    """Every error of the API has this shape."""

    status = serializers.ChoiceField(choices=["error"])
    error = ErrorDetailSerializer()


def documented_error(description: str) -> OpenApiResponse:
    """An error response for an operation's schema: the API's one error shape, with what it means there."""
    return OpenApiResponse(ErrorResponseSerializer, description=description)


_ERROR_SCHEMA = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}


def document_common_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: the errors any operation of its shape can answer.

    An address whose path parameter does not match is a 404 before any view runs, a body can be
    malformed, too large or of an unsupported type, and a protected operation is a 401 without
    credentials; each operation's own descriptions of these codes win.
    """

    def error(description: str) -> dict:
        return {"description": description, "content": _ERROR_SCHEMA}

    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation["responses"]
            if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
                responses.setdefault("404", error("not_found: nothing at this address."))
            if "requestBody" in operation:
                responses.setdefault("400", error("malformed_json or invalid_request; nothing changed."))
                responses.setdefault("413", error("request_too_large: the body is larger than allowed."))
                responses.setdefault("415", error("unsupported_media_type: a body in another format."))
            if operation.get("security") and {} not in operation["security"]:  # {}: anonymous allowed
                responses.setdefault("401", error("not_authenticated: no or a bad token or session."))
            operation["responses"] = dict(sorted(responses.items()))
    return result
