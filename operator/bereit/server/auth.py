"""Who may call /score: keys from files, HS256 tokens signed with those keys, or nobody checks.

The keys are the files ``primaryKey`` and ``secondaryKey`` in the keys folder (a mounted
Secret). Kubernetes swaps the files in place when the Secret changes; the folder is looked at
again at most once a second, so a rotated key works without a restart.

Tokens (``token`` mode) are made and checked by :mod:`bereit.server.tokens`.
"""

from __future__ import annotations

import hmac
import os
import time
from pathlib import Path
from urllib.parse import parse_qsl

from bereit import constants as c

from . import tokens

RECHECK_SECONDS = 1.0
# Query parameter names people try for keys; refused with a message saying where keys go.
QUERY_KEY_NAMES = frozenset({"key", "api_key", "apikey", "api-key", "code", "token", "access_token", "subscription-key"})


class AuthError(Exception):
    """Why a request is not let in (the message is safe to return: it never holds a key)."""


class KeyFiles:
    """The current primary and secondary keys, re-read when the files change."""

    def __init__(self, folder: Path, clock=time.monotonic):
        self.folder = Path(folder)
        self._clock = clock
        self._next_check = 0.0
        self._stamp: tuple = ()
        self._keys: tuple[bytes, ...] = ()

    def _read_stamp(self) -> tuple:
        stamp = []
        for name in (c.PRIMARY_KEY, c.SECONDARY_KEY):
            try:
                st = os.stat(self.folder / name)  # follows the Secret volume's ..data symlink
                stamp.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append(None)
        return tuple(stamp)

    def keys(self) -> tuple[bytes, ...]:
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + RECHECK_SECONDS
            stamp = self._read_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                self._keys = tuple(k for k in (self._read(c.PRIMARY_KEY), self._read(c.SECONDARY_KEY)) if k)
        return self._keys

    def _read(self, name: str) -> bytes:
        try:
            return (self.folder / name).read_bytes().strip()
        except OSError:
            return b""


def bearer(authorization: bytes | None) -> bytes:
    """The credential from an ``Authorization: Bearer …`` header value."""
    if not authorization:
        raise AuthError("missing Authorization header; send 'Authorization: Bearer <key>'")
    scheme, _, value = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not value.strip():
        raise AuthError("the Authorization header must be 'Bearer <key>'")
    return value.strip()


def check_key(presented: bytes, keys: tuple[bytes, ...]) -> None:
    # Compare against every key, always, so the time taken does not tell which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    if not matched:
        raise AuthError("invalid key")


class Authenticator:
    """Checks one request's headers and query string for the configured mode."""

    def __init__(self, mode: str, keys_dir: Path, service: str = ""):
        self.mode = mode
        self.service = service
        self.key_files = KeyFiles(keys_dir) if mode != "none" else None

    def check(self, authorization: bytes | None, query_string: bytes) -> None:
        if self.key_files is None:
            return
        if query_string and _has_key_in_query(query_string):
            raise AuthError("keys and tokens are not accepted in the query string; send 'Authorization: Bearer <key>'")
        keys = self.key_files.keys()
        if not keys:
            raise AuthError(
                f"auth mode {self.mode!r} but no key files in {self.key_files.folder} "
                f"({c.PRIMARY_KEY}, {c.SECONDARY_KEY}); use --auth-mode none for local use"
            )
        presented = bearer(authorization)
        if self.mode == "key":
            check_key(presented, keys)
        else:
            try:
                tokens.verify(presented, keys, self.service)
            except tokens.TokenError as exc:
                raise AuthError(str(exc)) from None


def _has_key_in_query(query_string: bytes) -> bool:
    return any(name.lower() in QUERY_KEY_NAMES for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
