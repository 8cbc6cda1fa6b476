"""The server's own OpenAPI document, in version 2 (Swagger) and 3.

The /score body and answer come from run()'s ``inference-schema`` decorators when it has them;
otherwise the body is any JSON document (text mode) or anything at all (``@rawhttp``).
"""

from __future__ import annotations

import copy

from bereit import constants as c

from .entry import EntryScript

_ERRORS = {
    "400": "The body is not what run() takes (empty, not UTF-8, not JSON, wrong fields)",
    "401": "Missing or wrong key or token",
    "413": "The body is larger than the limit",
    "415": "A content type run() cannot take",
    "500": "run() raised, or returned something that is not JSON; the body names the error and the request id",
    "503": "Not ready yet, or overloaded: retry after the Retry-After header's seconds",
    "504": "run() took longer than the scoring timeout",
}
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "code": {"type": "string"}, "request_id": {"type": "string"}},
}


def _schemas(entry: EntryScript) -> tuple[dict, dict, str]:
    """(request body schema, response schema, request content type)."""
    output = copy.deepcopy(entry.output_schema) if entry.output_schema else {}
    if entry.mode == "typed":
        body = copy.deepcopy(entry.input_schema)
        # inference-schema leaves this out; the server refuses a body without these fields.
        if entry.required_params:
            body["required"] = list(entry.required_params)
        return body, output, "application/json"
    if entry.mode == "raw":
        return {"type": "string", "format": "binary"}, output, "application/octet-stream"
    return {}, output, "application/json"


def openapi3(entry: EntryScript, title: str, auth: bool) -> dict:
    body, output, content_type = _schemas(entry)
    responses: dict = {"200": {"description": "run()'s answer", "content": {"application/json": {"schema": output}}}}
    for code, text in _ERRORS.items():
        if code == "401" and not auth:
            continue
        responses[code] = {"description": text, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}
    score: dict = {
        "operationId": "score",
        "summary": "Score: the body goes to the entry script's run()",
        "requestBody": {"required": True, "content": {content_type: {"schema": body}}},
        "responses": responses,
    }
    if auth:
        score["security"] = [{"Bearer": []}]
    paths: dict = {
        c.LIVENESS_PATH: {"get": {"operationId": "live", "responses": {"200": {"description": "The server is alive"}}}},
        c.READINESS_PATH: {
            "get": {
                "operationId": "ready",
                "responses": {"200": {"description": "init() has finished"}, "503": {"description": "Not ready"}},
            }
        },
        c.SCORE_PATH: {"post": score},
    }
    doc: dict = {"openapi": "3.0.3", "info": {"title": title, "version": "1.0"}, "paths": paths}
    if auth:
        doc["components"] = {"securitySchemes": {"Bearer": {"type": "http", "scheme": "bearer"}}}
    return doc


def swagger2(entry: EntryScript, title: str, auth: bool) -> dict:
    body, output, content_type = _schemas(entry)
    responses: dict = {"200": {"description": "run()'s answer", "schema": output}}
    for code, text in _ERRORS.items():
        if code == "401" and not auth:
            continue
        responses[code] = {"description": text, "schema": _ERROR_SCHEMA}
    score: dict = {
        "operationId": "score",
        "summary": "Score: the body goes to the entry script's run()",
        "consumes": [content_type],
        "produces": ["application/json"],
        "parameters": [{"name": "body", "in": "body", "required": True, "schema": body}],
        "responses": responses,
    }
    if auth:
        score["security"] = [{"Bearer": []}]
    doc: dict = {
        "swagger": "2.0",
        "info": {"title": title, "version": "1.0"},
        "schemes": ["http"],
        "paths": {
            c.LIVENESS_PATH: {"get": {"operationId": "live", "responses": {"200": {"description": "The server is alive"}}}},
            c.READINESS_PATH: {
                "get": {
                    "operationId": "ready",
                    "responses": {"200": {"description": "init() has finished"}, "503": {"description": "Not ready"}},
                }
            },
            c.SCORE_PATH: {"post": score},
        },
    }
    if auth:
        doc["securityDefinitions"] = {
            "Bearer": {"type": "apiKey", "name": "Authorization", "in": "header", "description": "'Bearer <key>'"}
        }
    return doc
