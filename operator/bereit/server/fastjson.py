"""The entry script's own ``json.loads`` and ``json.load`` on orjson, wherever the answer is
provably the standard library's.

A script written for Azure Machine Learning parses the body itself (``json.loads(raw_data)``);
on the standard library that is most of a 100-row request's CPU (``bench/README.md``, "The
script's own JSON"). ``scope(module)`` gives the loaded entry script, and nothing else in the
process, a ``json`` whose ``loads``/``load`` ask orjson first and keep its answer only when the
standard library would have given the same one. Everything else goes to the standard library,
so results, exceptions and their messages are its own: keyword or extra arguments, input that is
not exactly ``str``/``bytes``/``bytearray``, anything orjson refuses (NaN and Infinity, numbers
that overflow to infinity, lone surrogates, byte order marks, UTF-16/32 bytes, invalid JSON), and
the two kinds of input both accept but read differently:

- integers beyond 64 bits, which orjson turns into floats: a run of 19 or more digits that starts
  a number (not a fraction's) sends the text to the standard library;
- nesting deep enough that the standard library, counting the caller's stack, would raise
  RecursionError where orjson (up to 1024 levels) answers.

Covered, once the script's top-level code has run (``scope`` is called between loading and
init()): globals bound to the ``json`` module (``import json``, ``import json as j``,
``import json.decoder``) and to its functions (``from json import loads, load as read``). Not
covered, and left on the standard library: imports inside functions, the script's top-level code
itself, references kept elsewhere (default arguments, containers), and every module the script
imports (its helpers and libraries see the real ``json``; ``sys.modules["json"]`` is untouched).
"""

from __future__ import annotations

import json as _json
import sys
from itertools import accumulate
from types import ModuleType

import orjson

_orjson_loads = orjson.loads
_std_loads, _std_load = _json.loads, _json.load

# One byte per class: digits -> "0", "." -> ".", openers -> "[", anything else -> " ".
_CLASSES = bytes(48 if 48 <= b <= 57 else b if b in b".[" else 91 if b == 123 else 32 for b in range(256))
# The shortest digit run that can be an integer outside orjson's range ([-2**63, 2**64)).
_LONG_NUMBER = b"0" * 19
_NOT_MARKS = bytes(b for b in range(256) if b not in b'[]{}"\\')
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_STEP = {ord("["): 1, ord("]"): -1}
# The standard library's scanner and Python frames share one recursion count (CPython 3.11:
# nesting + stack depth reaching the limit less ~3 raises; later versions count the scanner's
# C recursion apart, with more room); a margin kept on top of that.
_STACK_MARGIN = 20


def _long_integer(marks: bytes) -> bool:
    """Whether ``marks`` (the text in classes) has a run of 19 or more digits that starts a
    number: after a point it is a fraction's, a float's whatever its length."""
    return marks.startswith(_LONG_NUMBER) or b" " + _LONG_NUMBER in marks or b"[" + _LONG_NUMBER in marks


def _nesting(text: bytes) -> int:
    """How deeply containers nest in ``text`` (valid JSON): strings dropped, brackets counted."""
    marks = text.translate(None, _NOT_MARKS)
    if b"\\" in marks:  # escaped quotes and backslashes out first, so quotes pair up
        marks = text.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_MARKS)
    brackets = b"".join(marks.split(b'"')[::2]).translate(_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _read_alike(text: bytes) -> bool:
    """True when the standard library reads ``text`` (valid JSON to orjson) exactly as orjson did."""
    marks = text.translate(_CLASSES)
    if _LONG_NUMBER in marks and _long_integer(marks):
        return False
    nesting = marks.count(b"[")  # at least as deep as the text nests
    room = sys.getrecursionlimit() - _STACK_MARGIN
    if nesting >= room // 2:
        nesting = _nesting(text)
    try:
        sys._getframe(room - nesting)  # the caller's stack is deeper than the nesting leaves room for
    except ValueError:
        return True
    return False


def loads(s, *args, **kwargs):
    """``json.loads``: orjson's answer when it is provably the standard library's, else the latter's."""
    kind = type(s)
    if not args and not kwargs and (kind is str or kind is bytes or kind is bytearray):
        try:
            value = _orjson_loads(s)
        # Whatever orjson refuses, the standard library answers, outside this block so that its
        # exception carries no orjson error as its context.
        except Exception:  # noqa: BLE001, S110
            pass
        else:
            if _read_alike(s.encode() if kind is str else s):
                return value
    return _std_loads(s, *args, **kwargs)


def load(fp, *args, **kwargs):
    """``json.load``: ``loads(fp.read())``, as the standard library's."""
    if args or kwargs:
        return _std_load(fp, *args, **kwargs)
    return loads(fp.read())


class _Json(ModuleType):
    """``json`` for the entry script: its own ``loads`` and ``load``; any other name is read from
    the real module when used, and assignments go to the real module as they would without this
    stand-in (one to ``loads``/``load`` is then the script's too)."""

    def __getattr__(self, name: str):
        return getattr(_json, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(_json, name, value)
        if name in ("loads", "load"):
            super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return dir(_json)


def _module() -> _Json:
    module = _Json(_json.__name__, _json.__doc__)
    for name in ("__file__", "__spec__", "__loader__", "__package__", "__path__"):
        ModuleType.__setattr__(module, name, getattr(_json, name))
    ModuleType.__setattr__(module, "loads", loads)
    ModuleType.__setattr__(module, "load", load)
    return module


def scope(module: ModuleType) -> None:
    """Point the entry script's globals that name ``json``, ``json.loads`` or ``json.load`` at
    the fast ones (its own namespace only). A ``json`` whose functions something in the process
    has already replaced is left as it is."""
    replaced = _json.loads is not _std_loads or _json.load is not _std_load
    own = None  # the script's own stand-in: what it assigns to its loads stays its own
    for name, value in list(vars(module).items()):
        if value is _json and not replaced:
            own = own or _module()
            setattr(module, name, own)
        elif value is _std_loads:
            setattr(module, name, loads)
        elif value is _std_load:
            setattr(module, name, load)
