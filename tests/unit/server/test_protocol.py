"""Each response leaves in one write: the coalescing transport under uvicorn's protocol."""

from __future__ import annotations

import asyncio

import pytest

from bereit.server.protocol import CoalescingTransport

pytestmark = pytest.mark.anyio


class RecordingTransport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data):
        self.writes.append(bytes(data))

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True

    def is_closing(self):
        return self.closed or self.aborted

    def get_extra_info(self, name, default=None):
        return {"peername": ("10.0.0.7", 4711)}.get(name, default)


async def test_writes_of_one_loop_step_leave_as_one():
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert real.writes == []
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"next"]


async def test_close_sends_what_is_pending_first_and_abort_drops_it():
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"bye")
    transport.close()
    assert real.writes == [b"bye"] and real.closed
    await asyncio.sleep(0)
    assert real.writes == [b"bye"]  # the scheduled flush finds nothing left

    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"lost")
    transport.abort()
    await asyncio.sleep(0)
    assert real.writes == [] and real.aborted


async def test_everything_else_is_the_real_transport():
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == ("10.0.0.7", 4711)
    assert transport.is_closing() is False
    assert transport.get_write_buffer_limits == real.get_write_buffer_limits
