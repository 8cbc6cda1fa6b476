"""Optional collection of model inputs and outputs, as JSON lines.

``off`` (default), ``stdout``, or a folder (one file per process, appended). A fraction of
requests is kept (the sample rate). Only the body and run()'s answer are written, with the
request id and time: never headers, so never keys or tokens.
"""

from __future__ import annotations

import os
import random
import socket
import sys
import threading
import time
from pathlib import Path

import orjson


class Collector:
    def __init__(self, target: str, sample_rate: float, service: str = ""):
        self.enabled = target not in ("", "off") and sample_rate > 0
        self.sample_rate = sample_rate
        self.service = service
        self._lock = threading.Lock()
        self._file = None
        if not self.enabled:
            return
        if target == "stdout":
            self._file = sys.stdout
        else:
            folder = Path(target)
            folder.mkdir(parents=True, exist_ok=True)
            self._file = open(folder / f"collect-{socket.gethostname()}-{os.getpid()}.jsonl", "a", buffering=1)

    def sampled(self) -> bool:
        return self.enabled and (self.sample_rate >= 1.0 or random.random() < self.sample_rate)

    def write(self, request_id: str, body: bytes, output: bytes, status: int) -> None:
        record = {
            "time": time.time(),
            "logger": "bereit.collect",  # tells these lines from the logs when both go to stdout
            "service": self.service,
            "request_id": request_id,
            "status": status,
            "input": _as_json_or_text(body),
            "output": _as_json_or_text(output),
        }
        line = orjson.dumps(record).decode() + "\n"
        with self._lock:
            self._file.write(line)


def _as_json_or_text(data: bytes):
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode("utf-8", "replace")
