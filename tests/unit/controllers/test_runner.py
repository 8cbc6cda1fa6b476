"""Triggers coalesce into few passes; one pass per key at a time; failures are retried."""

import asyncio

from bereit.controllers import runner as runner_module
from bereit.controllers.runner import Runner


def test_a_flurry_of_triggers_costs_one_pass_and_keys_never_overlap(monkeypatch):
    monkeypatch.setattr(runner_module, "TRIGGER_DELAY_SECONDS", 0.01)
    running: set = set()
    overlaps = []
    calls = []

    async def reconcile(key):
        if key in running:
            overlaps.append(key)
        running.add(key)
        calls.append(key)
        await asyncio.sleep(0.02)
        running.discard(key)

    async def scenario():
        runner = Runner("test", reconcile, asyncio.Semaphore(4))
        for _ in range(50):
            runner.trigger("a")
            runner.trigger("b")
        await asyncio.sleep(0.05)
        await asyncio.gather(runner.run("a"), runner.run("a"), runner.drain())
        await runner.drain()

    asyncio.run(scenario())
    assert calls.count("b") == 1
    assert 2 <= calls.count("a") <= 3
    assert not overlaps


def test_a_failed_triggered_pass_is_retried(monkeypatch):
    monkeypatch.setattr(runner_module, "TRIGGER_DELAY_SECONDS", 0.01)
    monkeypatch.setattr(runner_module, "BACKOFF_SECONDS", (0.01,))
    attempts = []

    async def reconcile(key):
        attempts.append(key)
        if len(attempts) < 3:
            raise RuntimeError("API server away")

    async def scenario():
        runner = Runner("test", reconcile, asyncio.Semaphore(1))
        runner.trigger("k")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(attempts) >= 3:
                break
        await runner.drain()

    asyncio.run(scenario())
    assert attempts == ["k", "k", "k"]
