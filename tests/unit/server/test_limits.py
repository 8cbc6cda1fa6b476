"""Concurrency limit and bounded queue: overload is a fast 503 with Retry-After, never a pile-up."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

from bereit.server.limits import Admission, Overloaded
from bereit.server.pool import FunctionJob, Job, RunPool
from bereit.server.scoring import ScoreRequest

from .conftest import client, eventually, started_app

pytestmark = pytest.mark.anyio


async def test_500_concurrent_requests_against_a_queue_of_10(tmp_path):
    app = started_app(
        tmp_path,
        "import threading\nGATE = threading.Event()\ndef init(): pass\ndef run(d):\n    GATE.wait(30)\n    return 'ok'\n",
        max_concurrent_requests=1,
        max_queue_length=10,
        max_queue_wait_ms=30_000,
    )
    async with client(app) as http:
        burst = [asyncio.ensure_future(http.post("/score", json={})) for _ in range(500)]
        # run() is held, so no place frees up: one running plus ten queued get in, everyone
        # else is refused at once, before any of the eleven is answered.
        await eventually(lambda: sum(f.done() for f in burst) >= 489)
        assert app.admission.places == 11 and not any(f.done() and f.result().status_code == 200 for f in burst)
        app.entry.module.GATE.set()
        responses = await asyncio.gather(*burst)
        after = await http.post("/score", json={})
    codes = [r.status_code for r in responses]
    assert (codes.count(200), codes.count(503)) == (11, 489)
    rejected = [r for r in responses if r.status_code == 503]
    assert all(r.headers["retry-after"] == "1" and "queue full" in r.json()["error"] for r in rejected)
    assert after.status_code == 200
    assert app.admission.running == 0 and app.admission.places == 0
    metrics = app.metrics.render().decode()
    assert 'bereit_rejected_total{reason="Overloaded"} 489.0' in metrics


async def test_queued_request_past_the_max_wait_is_503(tmp_path):
    app = started_app(
        tmp_path,
        "import time\ndef init(): pass\ndef run(d):\n    time.sleep(0.5)\n    return 'ok'\n",
        max_concurrent_requests=1,
        max_queue_length=10,
        max_queue_wait_ms=100,
    )
    async with client(app) as http:
        first, second = await asyncio.gather(http.post("/score", json={}), http.post("/score", json={}))
    assert first.status_code == 200
    assert second.status_code == 503 and "max queue wait" in second.json()["error"]
    assert app.admission.places == 0


async def test_two_run_slots_run_two_calls_at_once(tmp_path):
    app = started_app(
        tmp_path,
        "import time, threading\ndef init(): pass\ndef run(d):\n    time.sleep(0.3)\n    return threading.current_thread().name\n",
        max_concurrent_requests=2,
        max_queue_length=0,
    )
    async with client(app) as http:
        responses = await asyncio.gather(http.post("/score", json={}), http.post("/score", json={}))
    assert [r.status_code for r in responses] == [200, 200]
    assert len({r.json() for r in responses}) == 2


async def test_run_threads_take_jobs_in_arrival_order_and_skip_expired_ones():
    loop = asyncio.get_running_loop()
    pool = RunPool(1)
    gate, ran, answers = threading.Event(), [], asyncio.Queue()

    def run(name):
        if name == "first":
            gate.wait(5)
        ran.append(name)
        return name

    def done(job, ok, result):
        answers.put_nowait(result)

    jobs = [FunctionJob(run, name, loop, done) for name in ("first", "expired", "second", "third")]
    for job in jobs:
        pool.submit(job)
    await asyncio.sleep(0.05)
    assert jobs[1].take()  # the loop refuses it (max wait over) while "first" still runs
    gate.set()
    assert [await answers.get() for _ in range(3)] == ["first", "second", "third"]
    assert ran == ["first", "second", "third"]
    assert not jobs[2].take()  # a job a thread has run can no longer be taken back
    pool.close()


async def test_admission_counts_places_until_run_returns():
    admission = Admission(max_concurrent=1, max_queue=2, max_wait_s=5)
    for _ in range(3):
        admission.take_place()
    with pytest.raises(Overloaded, match="queue full: 0 running, 3 waiting"):
        admission.take_place()
    job = FunctionJob(lambda _: None, None, asyncio.get_running_loop(), lambda *_: None)
    admission.handed_over(job)
    job.started = 1.0
    assert (admission.running, admission.queued) == (1, 2)
    admission.finished(job)
    admission.give_up_place()
    admission.give_up_place()
    assert admission.running == 0 and admission.places == 0


async def test_the_scoring_timeout_counts_from_the_start_of_run_not_from_the_queue(tmp_path):
    app = started_app(
        tmp_path,
        "import time\ndef init(): pass\ndef run(d):\n    time.sleep(0.4)\n    return 'ok'\n",
        max_concurrent_requests=1,
        max_queue_length=5,
        max_queue_wait_ms=2_000,
        scoring_timeout_ms=700,
    )
    async with client(app) as http:
        responses = await asyncio.gather(*(http.post("/score", json={}) for _ in range(3)))
    # The third waits about 0.8 s in the queue, longer than the timeout, and still runs in time.
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert app.admission.places == 0


async def test_a_request_cancelled_in_the_queue_gives_its_place_back_and_never_runs(tmp_path):
    app = started_app(
        tmp_path,
        "import threading\nCALLS = []\nGATE = threading.Event()\ndef init(): pass\n"
        "def run(d):\n    CALLS.append(d)\n    GATE.wait(30)\n    return 'ok'\n",
        max_concurrent_requests=1,
        max_queue_length=5,
        max_queue_wait_ms=30_000,
    )
    text = {"content-type": "text/plain"}
    async with client(app) as http:
        first = asyncio.ensure_future(http.post("/score", content=b"first", headers=text))
        await eventually(lambda: app.admission.running == 1)
        queued = asyncio.ensure_future(http.post("/score", content=b"queued", headers=text))
        await eventually(lambda: app.admission.places == 2)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert app.admission.places == 1  # given back at once, not when the first returns
        app.entry.module.GATE.set()
        assert (await first).status_code == 200
        after = await http.post("/score", content=b"after", headers=text)
    assert after.status_code == 200
    assert app.entry.module.CALLS == ["first", "after"]
    assert app.admission.places == 0 and app.admission.running == 0


async def test_a_finished_request_leaves_nothing_for_the_cyclic_gc(tmp_path):
    # The body of every answered request must go by reference counting: left to the cyclic
    # GC, 32 connections' bodies pile up between its passes (measured: 11 objects a request).
    app = started_app(tmp_path, "def init(): pass\ndef run(d):\n    return len(d)\n")
    scope = {"type": "http", "method": "POST", "path": "/score", "headers": [(b"content-type", b"application/json")]}
    loop = asyncio.get_running_loop()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the GC finds goes to gc.garbage, to be looked at
    try:
        for _ in range(20):
            answered = loop.create_future()
            ScoreRequest.begin(app.plane, scope, answered.set_result).start(b'{"data": [1, 2]}', loop)
            assert (await answered).status == 200
        del answered
        gc.collect()
        # Only bereit's own objects count: the event loop or another thread may leave cycles.
        assert [o for o in gc.garbage if isinstance(o, ScoreRequest | Job)] == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
