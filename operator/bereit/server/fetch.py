"""Fetch model files over HTTPS into a folder (what the pod's init container runs).

    bereit-server fetch --url URL [--sha256 HEX] --dest DIR [--unpack] [--filename NAME]

The file is streamed to a temporary name in DIR, its SHA-256 checked when given, then renamed,
so DIR never holds a partial file under the real name. With ``--unpack`` a ``.tar.gz``/``.tgz``/
``.tar``/``.zip`` is extracted into DIR (members that would land outside DIR are refused) and
the archive removed. A credential, when the source needs one, comes from the environment
variable ``BEREIT_FETCH_AUTHORIZATION`` (sent as the ``Authorization`` header, never logged).
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bereit import constants as c

CHUNK = 1024 * 1024
TRIES = 3
TIMEOUT_S = 60
_ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")


class FetchError(Exception):
    """The model could not be fetched; the message says what and why."""


def _filename(url: str) -> str:
    name = unquote(Path(urlsplit(url).path).name)
    if not name or name in (".", ".."):
        raise FetchError(f"--url {url}: cannot tell a file name from the URL; pass --filename")
    return name


def _download(url: str, target: Path, headers: dict[str, str]) -> str:
    """Stream ``url`` to ``target``; returns the SHA-256. Retries transient failures."""
    last: Exception | None = None
    for attempt in range(1, TRIES + 1):
        digest = hashlib.sha256()
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(target, "wb") as out:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            return digest.hexdigest()
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # the server said no: retrying will not change it
                raise FetchError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
            last = exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            last = exc
        if attempt < TRIES:
            time.sleep(2**attempt)
    raise FetchError(f"download of {url} failed after {TRIES} tries: {last}")


def _unpack(archive: Path, dest: Path) -> None:
    name = archive.name.lower()
    try:
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="data")  # refuses absolute paths, "..", devices
        elif name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                root = dest.resolve()
                for member in zf.namelist():
                    if not (dest / member).resolve().is_relative_to(root):
                        raise FetchError(f"{archive.name}: member {member!r} would be written outside {dest}")
                zf.extractall(dest)
        else:
            raise FetchError(f"--unpack: {archive.name} is not one of {', '.join(_ARCHIVES)}")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"cannot unpack {archive.name}: {exc}") from None
    archive.unlink()


def fetch(url: str, dest: Path, sha256: str | None = None, unpack: bool = False, filename: str | None = None) -> Path:
    """Download ``url`` into ``dest`` and return the path of the file (or of ``dest`` if unpacked)."""
    scheme = urlsplit(url).scheme
    if scheme not in ("https", "http"):
        raise FetchError(f"--url {url}: only https:// (or http://) sources can be fetched")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise FetchError(f"--sha256 {sha256!r}: not 64 hexadecimal digits")
    name = filename or _filename(url)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    headers = {"User-Agent": "bereit-fetch"}
    if os.environ.get(c.ENV_FETCH_AUTHORIZATION):
        headers["Authorization"] = os.environ[c.ENV_FETCH_AUTHORIZATION]
    fd, tmp_name = tempfile.mkstemp(prefix=".fetch-", dir=dest)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        got = _download(url, tmp, headers)
        if sha256 is not None and got.lower() != sha256.lower():
            raise FetchError(f"sha256 mismatch for {url}: expected {sha256.lower()}, got {got}")
        target = dest / name
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    if unpack:
        _unpack(target, dest)
        return dest
    return target
