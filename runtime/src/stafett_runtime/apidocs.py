"""The OpenAPI document every service serves at /schema/openapi.json, and its page at /schema.

**Responses.** Litestar lists what an operation answers when it succeeds; `document_refusals`
adds every refusal the operation can give, each with the one body every refusal has (`Refusal`,
`stafett_runtime.service`) and an example, so that the document lists the statuses the service
really answers (a test checks each answer against it with schemathesis):

| status | when | operations |
|---|---|---|
| 400 | the body is not valid UTF-8 or JSON, or nests too deeply | with a body |
| 401 | no bearer token, or one that cannot be trusted | all |
| 403 | not allowed: the access rule or a role refused, naming the rule | commands, and those that declare it |
| 404 | what the path names does not exist | with a path parameter, and those that declare it |
| 409 | a rule refused, or someone changed it meanwhile | commands, and those that declare it |
| 413 | the body is larger than `MAX_BODY_BYTES` | with a body |
| 422 | a field or parameter is missing, unknown or invalid, naming it | with parameters or a body |
| 503 | the event store, the register or the identity provider does not answer | all |

A route declares the refusals its shape does not show with `responses=refusals(403, 404)`.

**Fields.** A field's description comes from its type (`stafett_contracts.inputs` describes every
bounded input); a field of a plain type, an id or a version, gets the one meaning its name has
in every service (`FIELDS`).

**The page.** /schema is Swagger UI, whose files come from the `swagger-ui-bundle` package and
are served by the service itself under /schema/assets/: nothing is loaded from elsewhere, and
the page's Content-Security-Policy allows scripts, styles and requests from the service alone.
That Swagger UI (4.15) reads OpenAPI 3.0 documents, and Litestar writes 3.1, so the page's own
script shows the document through a small translation of the 3.1 keywords it does not know
(`type` lists with `null`, `examples` in schemas); the document served stays 3.1.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIType
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # ships no types

ASSETS = "/assets"  # under the OpenAPI path: /schema/assets/
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
REFUSAL = "Refusal"

# Why each refusal is answered, and an example of its body.
_REFUSALS: dict[int, tuple[str, dict[str, Any]]] = {
    400: (
        "The request body cannot be read: not valid UTF-8 or JSON, or nested too deeply.",
        {
            "status_code": 400,
            "detail": "the request body is not valid UTF-8",
            "extra": {"key": "body"},
        },
    ),
    401: (
        "No bearer token, or one that cannot be trusted (expired, another issuer or audience, "
        "a wrong signature); `WWW-Authenticate` says why.",
        {"status_code": 401, "detail": "missing bearer token"},
    ),
    403: (
        "Not allowed: the access rule or the caller's role refuses it; `extra.rule` names the "
        "rule where one refused.",
        {
            "status_code": 403,
            "detail": "no consent, legal basis or report covers this service now",
            "extra": {"rule": "covered-now"},
        },
    ),
    404: (
        "What the path or the query names does not exist.",
        {"status_code": 404, "detail": "not found: 6f1c3e0a-8a8e-4a57-9d4c-3c2b8f0e5d21"},
    ),
    409: (
        "A rule of the domain refuses it (`extra.rule` names the rule), or someone changed the "
        "same thing at the same time: reload and try again.",
        {
            "status_code": 409,
            "detail": "level 3 needs a coordinator",
            "extra": {"rule": "level-3-needs-coordinator"},
        },
    ),
    413: (
        "The request body is larger than the service reads (256 KiB).",
        {"status_code": 413, "detail": "Request Entity Too Large"},
    ),
    422: (
        "A field or parameter is missing, unknown or invalid: `extra` names each (`key`), why "
        "(`message`) and where (`source`: body, query or path).",
        {
            "status_code": 422,
            "detail": "Validation failed for POST /cases",
            "extra": [
                {
                    "key": "concern",
                    "message": "Expected `str` of length >= 1",
                    "source": "body",
                }
            ],
        },
    ),
    503: (
        "The event store, the population register or the identity provider does not answer "
        "now: try again after `Retry-After` seconds.",
        {"status_code": 503, "detail": "unavailable, try again shortly: NATS is reconnecting"},
    ),
}
_METHODS = ("get", "put", "post", "delete", "patch")

# What a field of a plain type means, by its name: the same in every service's document.
FIELDS = {
    "expected_version": "the version you last saw; if it changed since, the command is refused "
    "(409, rule expected-version); leave it out to skip the check",
    "id": "the id of what the command made or changed",
    "version": "its version after the command: give it as expected_version next time",
    "case_id": "the case, by id",
    "child_id": "the child, by the population register's pseudonymous id",
    "consent_id": "the consent, by id",
    "meeting_id": "the meeting, by id",
    "measure_id": "the measure, by id",
    "item_id": "the action item, by id (chosen by the client, so a retry makes no second)",
    "decision_id": "the decision, by id",
    "notification_id": "the notification, by id",
    "with_guardians": "whether the guardians took part",
    "evaluation_date": "when the measure is evaluated (rule 6)",
    "next_evaluation_date": "when the measure is evaluated next; none when it is to end",
    "due_on": "the day it is due",
    "valid_from": "from when it holds",
    "valid_until": "until when it holds",
    "occurred_at": "when it happened",
    "requested_at": "when it was requested",
    "sent_at": "when it was sent",
    "retry_at": "when the next attempt is due",
    "attempts": "how many attempts were made",
    "personal_data": "the child's identity, when the access rule lets you know who the child is",
    "erased": "instead of the identity, once the child's personal data is erased",
}


def refusals(*statuses: int) -> dict[int, ResponseSpec]:
    """For a route's decorator: the refusals it gives that its shape does not show, such as 403
    from the access rule on a read (`document_refusals` gives each its body and example)."""
    unknown = [status for status in statuses if status not in _REFUSALS]
    if unknown:
        raise ValueError(f"no refusal is documented for {unknown}")
    return {
        status: ResponseSpec(data_container=None, description=_REFUSALS[status][0])
        for status in statuses
    }


def document_refusals(openapi: OpenAPI) -> None:
    """Give every operation the refusals it can answer with (the table above), in place."""
    components = openapi.components if openapi.components is not None else Components()
    openapi.components = components
    components.schemas = {**(components.schemas or {}), REFUSAL: _refusal_schema()}
    for schema in components.schemas.values():
        if isinstance(schema, Schema):
            _describe_fields(schema)
    for item in (openapi.paths or {}).values():
        for method in _METHODS:
            operation: Operation | None = getattr(item, method)
            if operation is not None:
                _document(operation, method)


def _document(operation: Operation, method: str) -> None:
    parameters = [p for p in operation.parameters or () if isinstance(p, Parameter)]
    with_body = operation.request_body is not None
    # Litestar documents a 400 for any operation with parameters: only a body is ever unreadable.
    responses = {
        code: answer
        for code, answer in (operation.responses or {}).items()
        if with_body or code != "400"
    }
    statuses = {401, 503}
    statuses |= {422} if parameters or with_body else set()
    statuses |= {400, 413} if with_body else set()
    statuses |= {404} if any(p.param_in == "path" for p in parameters) else set()
    statuses |= {403, 409} if method == "post" else set()
    statuses |= {int(code) for code in responses if code.isdigit() and int(code) in _REFUSALS}
    for status in statuses:
        responses[str(status)] = _refusal_response(status)
    operation.responses = dict(sorted(responses.items()))


def _describe_fields(schema: Schema) -> None:
    for name, field in (schema.properties or {}).items():
        if isinstance(field, Schema) and field.description is None and name in FIELDS:
            field.description = FIELDS[name]


def _refusal_response(status: int) -> OpenAPIResponse:
    description, example = _REFUSALS[status]
    return OpenAPIResponse(
        description=description,
        content={
            "application/json": OpenAPIMediaType(
                schema=Reference(ref=f"#/components/schemas/{REFUSAL}"),
                examples={"refused": Example(summary=description, value=example)},
            )
        },
    )


def _refusal_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        title=REFUSAL,
        description="Every refusal and failure has this body.",
        required=["status_code", "detail"],
        properties={
            "status_code": Schema(
                type=OpenAPIType.INTEGER, description="the HTTP status, repeated"
            ),
            "detail": Schema(type=OpenAPIType.STRING, description="what was wrong, in words"),
            "extra": Schema(
                type=[OpenAPIType.OBJECT, OpenAPIType.ARRAY],
                description="what it concerns: `{rule}` for a refusal by a rule; a list of "
                "`{key, message, source}` for invalid input",
            ),
        },
    )


class LocalSwaggerUI(OpenAPIRenderPlugin):
    """Swagger UI at /schema, every file of it served by the service (see the module)."""

    def __init__(self) -> None:
        super().__init__(path="/", favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        base = request.app.openapi_config.path if request.app.openapi_config else "/schema"
        assets = f"{base}{ASSETS}"
        title = openapi_schema["info"]["title"]
        return (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title}</title>"
            f"<link rel='stylesheet' href='{assets}/swagger-ui.css'>"
            f"<link rel='icon' href='{assets}/favicon-32x32.png'>"
            "</head><body><div id='swagger-ui'></div>"
            f"<script src='{assets}/swagger-ui-bundle.js'></script>"
            f"<script src='{assets}/stafett.js'></script>"
            "</body></html>"
        ).encode()

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                ASSETS, directories=[swagger_ui_path], include_in_schema=False, name="assets"
            )
        )
        router.register(_start_script)


def schema_router(path: str) -> Router:
    """The router of /schema, with the page's Content-Security-Policy on every answer."""
    return Router(
        path,
        route_handlers=[],
        include_in_schema=False,
        response_headers=[
            ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY)
        ],
    )


# Loads the document and shows it; 3.1 keywords this Swagger UI does not read are translated
# for the page only (see the module).
_START = """\
"use strict";
function as30(node) {
  if (Array.isArray(node)) return node.map(as30);
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) out[key] = as30(value);
  if (Array.isArray(out.type)) {
    const types = out.type.filter((t) => t !== "null");
    if (types.length < out.type.length) out.nullable = true;
    if (types.length === 1) out.type = types[0]; else delete out.type;
  }
  for (const key of ["anyOf", "oneOf"]) {
    if (!Array.isArray(out[key])) continue;
    const kept = out[key].filter((s) => s.type !== "null");
    if (kept.length < out[key].length) out.nullable = true;
    if (kept.length === 1) { Object.assign(out, kept[0]); delete out[key]; } else out[key] = kept;
  }
  if ("const" in out) { out.enum = [out.const]; delete out.const; }
  if (Array.isArray(out.examples) && (out.type || out.properties || out.$ref)) {
    out.example = out.examples[0];
    delete out.examples;
  }
  return out;
}
fetch("%(spec)s")
  .then((answer) => answer.json())
  .then((spec) => {
    const shown = as30(spec);
    shown.openapi = "3.0.3";
    window.ui = SwaggerUIBundle({ spec: shown, dom_id: "#swagger-ui", deepLinking: true });
  });
"""


@get(
    f"{ASSETS}/stafett.js",
    media_type="text/javascript",
    include_in_schema=False,
    sync_to_thread=False,
)
def _start_script(request: Request[Any, Any, Any]) -> str:
    base = request.app.openapi_config.path if request.app.openapi_config else "/schema"
    return _START % {"spec": f"{base}/openapi.json"}
