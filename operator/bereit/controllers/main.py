"""The operator: kopf settings, shared state, probes. `kopf run -m bereit.controllers.main` or `main()`.

Importing this module registers every handler.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import hashlib
import json
import logging
from collections import OrderedDict
from typing import Any

import kopf

from bereit.constants import ANNOTATION_PREFIX, LABEL_SERVICE
from bereit.controllers import compute_target, indexes, inference_service, model
from bereit.controllers.api_client import ApiClient, load_connection
from bereit.controllers.runner import Runner
from bereit.controllers.settings import Settings
from bereit.controllers.state import Operator
from bereit.render.kinds import APPLIED_KINDS, CONFIG_MAP, KEYS_SECRET

log = logging.getLogger(__name__)
PREFIX = ANNOTATION_PREFIX.rstrip("/")
# Watched with a server-side label selector: only objects of bereit services reach the operator.
# ConfigMaps are watched whole: a user's code ConfigMap carries no label of ours.
LABELLED = ("pods", KEYS_SECRET.plural, *(child.plural for child in APPLIED_KINDS if child is not CONFIG_MAP))


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's record of the last handled spec, kept as a digest.

    kopf stores the whole spec in an annotation by default; inline code can be larger than the
    256 KiB that all annotations of an object may hold. A digest says "changed or not" just as well.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Essences by (uid, resourceVersion): kopf builds the current one too, for every event.
        self._essences: OrderedDict[tuple, tuple[Any, str]] = OrderedDict()

    def _essence(self, body: kopf.Body) -> tuple[Any, str]:
        key = (body.get("metadata", {}).get("uid"), body.get("metadata", {}).get("resourceVersion"))
        found = self._essences.get(key)
        if found is None:
            essence = self.build(body=body)
            found = self._essences[key] = (essence, _digest(essence))
            if len(self._essences) > ESSENCE_CACHE_SIZE:
                self._essences.popitem(last=False)
        return found

    def fetch(self, *, body: kopf.Body) -> Any:
        stored = super().fetch(body=body)
        if isinstance(stored, dict) and set(stored) == {"digest"}:
            essence, digest = self._essence(body)
            return essence if stored["digest"] == digest else stored
        return stored

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        super().store(body=body, patch=patch, essence={"digest": _digest(essence)})


ESSENCE_CACHE_SIZE = 256


def _digest(essence: Any) -> str:
    return hashlib.sha256(json.dumps(essence, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def configure(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = f"{PREFIX}/kopf-finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = DigestDiffBaseStorage(prefix=PREFIX, key="last-handled-configuration")
    # Our own events say what happened; kopf's "handler succeeded" events would be writes for nothing.
    settings.posting.level = logging.WARNING
    for plural in LABELLED:
        settings.watching.label_selectors[plural] = LABEL_SERVICE
    settings.networking.error_backoffs = (1, 2, 5, 10, 20)
    # Start-up lists in pages: no single answer of every object of a kind in a big cluster.
    settings.watching.chunk_size = 100
    # kopf logs every successful handler call at INFO: thousands of lines per minute for
    # hundreds of services. Failures (WARNING and up) still show; our own logs say what changed.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    configure(settings)
    app = Settings()
    kube = ApiClient(load_connection(), timeout=app.api_timeout_seconds, retries=app.api_retries)
    parallel = asyncio.Semaphore(app.max_parallel_reconciles)
    op = Operator(settings=app, kube=kube, caches=indexes.Caches(kwargs), parallel=parallel)
    op.targets = Runner("ComputeTarget", lambda key: compute_target.reconcile(op, key), parallel)
    op.models = Runner("Model", lambda key: model.reconcile(op, key), parallel)
    op.services = Runner("InferenceService", lambda key: inference_service.reconcile(op, key), parallel)
    op.housekeeping = asyncio.get_running_loop().create_task(tidy_memory(op))
    memo.operator = op
    log.info("bereit operator started", extra={"runtime_image": app.runtime_image})


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    op: Operator | None = getattr(memo, "operator", None)
    if op is None:
        return
    if op.housekeeping is not None:
        op.housekeeping.cancel()
    for runner in (op.targets, op.models, op.services):
        runner.cancel()
    await op.kube.close()


TIDY_EVERY_SECONDS = 30


async def tidy_memory(op: Operator) -> None:
    """After a burst of work, give freed memory back to the system.

    A burst parses thousands of watch events; Python keeps the freed heap unless asked. Runs
    only when passes happened since the last look, so an idle operator does nothing.
    """
    libc = _libc()
    last = -1
    while True:
        await asyncio.sleep(TIDY_EVERY_SECONDS)
        passes = op.services.passes + op.models.passes + op.targets.passes
        if passes == last:
            continue
        last = passes
        gc.collect()
        if libc is not None:
            libc.malloc_trim(0)


def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only; musl has no malloc_trim
        return libc
    except (OSError, AttributeError):
        return None


@kopf.on.probe(id="apiWrites")
async def api_writes(memo: kopf.Memo, **_: Any) -> int:
    """Writes made since start: the benchmark's idle check reads it from /healthz."""
    return memo.operator.kube.write_count


@kopf.on.probe(id="apiWritesByKind")
async def api_writes_by_kind(memo: kopf.Memo, **_: Any) -> dict:
    return dict(memo.operator.kube.writes)


@kopf.on.probe(id="apiRequests")
async def api_requests(memo: kopf.Memo, **_: Any) -> int:
    return memo.operator.kube.requests


@kopf.on.probe(id="reconciles")
async def reconciles(memo: kopf.Memo, **_: Any) -> dict:
    op: Operator = memo.operator
    return {
        runner.name: {"passes": runner.passes, "seconds": round(runner.pass_seconds, 1), "waited": round(runner.waited_seconds, 1)}
        for runner in (op.services, op.models, op.targets)
    }


def main() -> None:
    """Run with the settings from the environment (the chart uses `kopf run` with flags instead)."""
    app = Settings()
    kopf.configure(
        verbose=app.log_level == "DEBUG",
        quiet=app.log_level in ("WARNING", "ERROR"),
        log_format=kopf.LogFormat.JSON if app.log_format == "json" else kopf.LogFormat.FULL,
    )
    liveness = f"http://0.0.0.0:{app.liveness_port}/healthz" if app.liveness_port else None
    kopf.run(
        standalone=True,
        clusterwide=app.clusterwide,
        namespaces=app.watch_namespaces,
        liveness_endpoint=liveness,
    )
