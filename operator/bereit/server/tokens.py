"""Access tokens for ``token`` auth mode (what ``bereit service token`` hands out).

HS256 JSON Web Tokens with an expiry (``exp``), signed with the service's primary or secondary
key, and bound to the service by their audience (``aud``: the service's name). The server
accepts a token signed with either key, so rotating one key leaves tokens of the other valid.
"""

from __future__ import annotations

import time

import jwt

ALGORITHM = "HS256"
DEFAULT_TTL_SECONDS = 3600


class TokenError(Exception):
    """The token is not accepted; the message says why (never the token or a key)."""


def _key(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def mint(key: str | bytes, service: str | None = None, ttl_seconds: int = DEFAULT_TTL_SECONDS, now: float | None = None) -> str:
    """A token valid for ``ttl_seconds`` for the service named ``service``."""
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    if not _key(key):
        raise ValueError("the signing key is empty")
    issued = int(time.time() if now is None else now)
    claims: dict = {"iat": issued, "exp": issued + int(ttl_seconds)}
    if service:
        claims["aud"] = service
    return jwt.encode(claims, _key(key), algorithm=ALGORITHM)


def verify(token: str | bytes, keys: tuple[bytes, ...], service: str | None = None) -> dict:
    """The token's claims if one of ``keys`` signed it, it has not expired, and it is for ``service``."""
    options = {"require": ["exp"], "verify_aud": bool(service)}
    mismatch = False
    for key in keys:
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM], audience=service or None, options=options)
        except jwt.InvalidSignatureError:
            mismatch = True
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired; get a new one") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"token is not for this service ({service})") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token: {exc}") from None
    raise TokenError("invalid token: not signed with a current key" if mismatch else "no key to check the token with")
