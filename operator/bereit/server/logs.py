"""Structured logs: one JSON object a line on stdout (or plain text), access log included."""

from __future__ import annotations

import logging
import sys
import time

import orjson

LOGGER = "bereit.server"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": record.created, "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def get() -> logging.Logger:
    return logging.getLogger(LOGGER)


def event(level: int, msg: str, **fields) -> None:
    get().log(level, msg, extra={"fields": fields})


class AccessLog:
    """One line per request, kept in memory and written in one go: at least every second (the
    server's flusher), when ``MAX_PENDING`` lines are waiting, and at shutdown. The images run
    with PYTHONUNBUFFERED, where a write per line is a syscall per request; the logging module
    would cost more still (bench/README.md, "Figures behind the server's code")."""

    MAX_PENDING = 256

    def __init__(self, enabled: bool, fmt: str, stream=None):
        self.enabled = enabled
        self.fmt = fmt
        self.stream = stream or sys.stdout
        self._pending: list[str] = []

    def write(self, method: str, path: str, status: int, seconds: float, request_id: str, size_in: int, size_out: int) -> None:
        if self.fmt == "json":
            duration_ms = round(seconds * 1000, 3)
            line = orjson.dumps(
                {
                    "time": time.time(),
                    "level": "info",
                    "logger": "bereit.access",
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                    "request_id": request_id,
                    "bytes_in": size_in,
                    "bytes_out": size_out,
                }
            ).decode()
        else:
            # %-formatting: cheaper than an f-string with round() (bench/README.md).
            line = "%s %s %d %.3fms id=%s in=%d out=%d" % (method, path, status, seconds * 1000, request_id, size_in, size_out)  # noqa: UP031
        self._pending.append(line)
        if len(self._pending) >= self.MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stdout must not take the server down
