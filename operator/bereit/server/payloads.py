"""What run() is called with, and what becomes of what it returns or raises.

The request body becomes run()'s argument by the script's mode (:mod:`bereit.server.entry`):
the text itself, the parsed JSON object's fields, or an ``AMLRequest``; a body run() cannot
take is a 400 that says why. An exception from run() becomes a 400 when the input was at
fault, a 500 naming the error otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import re
import traceback

import orjson

from . import logs
from .compat.aml_request import AMLRequest
from .entry import EntryScript
from .responses import HTTPError

# Content types run(data) can take as text; anything else needs @rawhttp (415 otherwise).
TEXT_TYPES = (b"application/json", b"text/", b"application/x-www-form-urlencoded")
# Python's own json module gives up near 1000 levels (RecursionError inside run()); refuse
# deeper documents up front with a 400.
MAX_JSON_DEPTH = 512
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BAD_HEADER = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class NotSerializable(Exception):
    """run() returned something that is not JSON (raised on the run thread, answered 500)."""


def argument(script: EntryScript, scope: dict, body: bytes):
    """What run() is called with, or a 400 that says what is wrong with the body."""
    if script.mode == "raw":
        return AMLRequest(scope, body)
    if not body:
        raise HTTPError(400, "BadRequest", "the body is empty; send the JSON document run() expects")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise HTTPError(400, "BadRequest", f"the body is not valid UTF-8 (byte {exc.start})") from None
    if script.mode == "text":
        # run() parses the body itself; parsing it here too would cost up to half as much
        # again for large bodies. Its JSONDecodeError on this very text, or a RecursionError
        # on a body nested too deep, becomes a 400 (see run_failed).
        return text
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPError(400, "BadRequest", f"the body is not valid JSON: {exc}") from None
    if _too_deep(body):
        raise HTTPError(400, "BadRequest", f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(parsed, dict):
        raise HTTPError(
            400, "BadRequest", f"the body must be a JSON object with the fields {', '.join(script.input_params)}"
        )
    unknown = [k for k in parsed if k not in script.input_params]
    if unknown and not script.accepts_any_param:
        raise HTTPError(
            400,
            "BadRequest",
            f"unknown field(s) {', '.join(map(repr, unknown))}; run() takes {', '.join(script.input_params)}",
        )
    missing = [k for k in script.required_params if k not in parsed]
    if missing:
        raise HTTPError(400, "BadRequest", f"missing field(s) {', '.join(map(repr, missing))}")
    return parsed


def run_failed(script: EntryScript, exc: BaseException, rid: str, arg) -> None:
    """Raises the HTTPError for a run() that raised ``exc``."""
    if isinstance(exc, NotSerializable):
        logs.event(logging.ERROR, str(exc), request_id=rid)
        raise HTTPError(500, "NotSerializable", str(exc), ((b"x-ms-run-function-failed", b"True"),))
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}"
    message = f"{type(exc).__name__}: {exc}"
    if script.raised_before_run(exc):
        raise HTTPError(400, "BadRequest", f"the input does not match run()'s schema: {message}")
    if isinstance(exc, json.JSONDecodeError) and exc.doc is arg:
        # run() tried to read the request body as JSON, and it is not JSON: the client's error.
        raise HTTPError(400, "BadRequest", f"the body is not valid JSON: {exc}")
    if isinstance(exc, RecursionError) and isinstance(arg, str) and _too_deep(arg.encode()):
        raise HTTPError(400, "BadRequest", f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    logs.event(
        logging.ERROR,
        "run() raised",
        request_id=rid,
        error=message,
        traceback="".join(traceback.format_exception(exc)),
    )
    raise HTTPError(500, "RunFailed", f"run() raised {message}{where}", ((b"x-ms-run-function-failed", b"True"),))


def header_pairs(items) -> tuple:
    """Headers run() set on its response, as bytes; a line break in one would split the response."""
    pairs = tuple((str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in items)
    for name, value in pairs:
        if _BAD_HEADER.search(name) or _BAD_HEADER.search(value):
            raise ValueError(f"response header {name.decode('latin-1')!r} has a control character in its name or value")
    return pairs


def tolist(value):
    """numpy values inside what only the standard library can encode (e.g. with big integers)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _too_deep(body: bytes) -> bool:
    """Deeper than MAX_JSON_DEPTH (the body is valid JSON). Counting runs in C; the walk over
    the brackets only happens for bodies with more brackets than the limit."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for char in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if char == 91 or char == 123:  # [ {
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        else:
            depth -= 1
    return False
