"""bereit-server's own HTTP/1.1 connection, spoken to over a real socket: keep-alive,
pipelining, chunked bodies, Expect: 100-continue, early answers, malformed input, a client
that leaves while its request waits, idle connections."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bereit.server import connection as connection_mod
from bereit.server.connection import MAX_HEADER_BYTES, IdleWatch

from .conftest import ServerProcess, eventually, write_script

SCRIPT = """
import os, time
CALLS = []
RELEASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "release")

def init():
    pass

def run(data):
    CALLS.append(data)
    if data == "slow":  # held until the test creates the file, or 20 s
        deadline = time.monotonic() + 20
        while not os.path.exists(RELEASE) and time.monotonic() < deadline:
            time.sleep(0.01)
    if data == "calls":
        return CALLS
    return data
"""
LIMIT = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    script = write_script(tmp_path_factory.mktemp("connection"), SCRIPT)
    process = ServerProcess(["--entry-script", str(script), "--max-request-bytes", str(LIMIT), "--max-queue-length", "8"])
    process.wait_ready()
    process.release = script.parent / "release"  # lets a "slow" run() return
    yield process
    process.stop()
    for stream in (process.proc.stdout, process.proc.stderr):
        stream.close()


def score(body: bytes, *headers: bytes) -> bytes:
    head = [b"POST /score HTTP/1.1", b"Host: x", b"Content-Type: text/plain", b"Content-Length: %d" % len(body), *headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_response(sock: socket.socket, buffered: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response from ``sock`` (``buffered`` keeps what came after it)."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response; got {bytes(buffered)!r}")
        buffered += chunk
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    buffered[:] = rest[length:]
    return status, headers, rest[:length]


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_keep_alive_answers_several_requests_on_one_connection(server):
    with connect(server) as sock:
        buffered = bytearray()
        for word in (b"one", b"two", b"three"):
            sock.sendall(score(word))
            status, headers, body = read_response(sock, buffered)
            assert (status, body) == (200, b'"%s"' % word)
            assert headers["content-type"] == "application/json" and "connection" not in headers
            assert "date" in headers and len(headers["x-request-id"]) == 16


@pytest.mark.parametrize(
    "target, expected",
    [
        (b"/score", b'"plain"'),  # the plain path, as clients send it
        (b"/sc%6Fre", b'"plain"'),  # escapes are decoded before routing
        (b"/score?trace=1", b'"plain"'),  # a query that is not a key
        (b"http://x/score", b'"plain"'),  # the absolute form HTTP/1.1 servers must accept
    ],
)
def test_every_form_of_request_target_reaches_score(server, target, expected):
    request = score(b"plain").replace(b"POST /score ", b"POST %s " % target, 1)
    with connect(server) as sock:
        sock.sendall(request)
        status, _, body = read_response(sock, bytearray())
    assert (status, body) == (200, expected)


def test_a_query_string_reaches_the_other_routes(server):
    with connect(server) as sock:
        sock.sendall(b"GET /swagger.json?version=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(sock, bytearray())
    assert status == 200 and b'"openapi"' in body


def test_pipelined_requests_are_answered_in_order(server):
    with connect(server) as sock:
        wrong_type = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 2\r\n\r\nhi"
        sock.sendall(score(b"a") + b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n" + score(b"b") + wrong_type + score(b"c"))
        buffered = bytearray()
        answers = [read_response(sock, buffered) for _ in range(5)]
    assert [(s, b) for s, _, b in answers[:3]] == [(200, b'"a"'), (200, b"Ready"), (200, b'"b"')]
    assert answers[3][0] == 415 and b"image/png" in answers[3][2]
    assert answers[4][::2] == (200, b'"c"')


def test_a_chunked_body_is_put_together(server):
    with connect(server) as sock:
        sock.sendall(
            b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nchu\r\n4\r\nnked\r\n0\r\n\r\n"
        )
        status, _, body = read_response(sock, bytearray())
    assert (status, body) == (200, b'"chunked"')


def test_expect_100_continue_is_answered_after_the_checks_on_the_headers(server):
    with connect(server) as sock:
        body = b"waited"
        head = score(body, b"Expect: 100-continue")[: -len(body)]
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        status, _, answer = read_response(sock, bytearray())
    assert (status, answer) == (200, b'"waited"')

    with connect(server) as sock:  # refused on its headers: the final answer instead of 100
        sock.sendall(score(b"x" * (LIMIT + 1), b"Expect: 100-continue")[: -(LIMIT + 1)])
        status, headers, answer = read_response(sock, bytearray())
        assert status == 413 and headers["connection"] == "close"
        assert closed_by_server(sock)


def test_an_early_answer_drops_the_rest_of_the_body_and_keeps_the_connection(server):
    with connect(server) as sock:
        wrong_type = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 10\r\n\r\n"
        sock.sendall(wrong_type)
        buffered = bytearray()
        status, headers, _ = read_response(sock, buffered)
        assert status == 415 and "connection" not in headers
        sock.sendall(b"0123456789" + score(b"next"))  # the refused body, then the next request
        assert read_response(sock, buffered)[::2] == (200, b'"next"')


def test_a_streamed_body_over_the_limit_is_413_and_closes(server):
    with connect(server) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            sock.sendall(b"800\r\n" + b"x" * 2048 + b"\r\n")
        status, headers, body = read_response(sock, bytearray())
        assert status == 413 and headers["connection"] == "close" and b"over the limit" in body
        assert closed_by_server(sock)


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"POST /score HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n\r\n", 431),
    ],
    ids=["garbage", "length-and-chunked", "headers-too-large"],
)
def test_malformed_requests_get_a_reason_and_the_connection_closes(server, request_bytes, status):
    with connect(server) as sock:
        sock.sendall(request_bytes)
        got, headers, body = read_response(sock, bytearray())
        assert got == status and headers["connection"] == "close" and b'"error"' in body
        assert closed_by_server(sock)
    with connect(server) as sock:  # and the server goes on
        sock.sendall(score(b"fine"))
        assert read_response(sock, bytearray())[0] == 200


def test_head_has_the_headers_and_no_body_and_http_1_0_closes(server):
    with connect(server) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        buffered = bytearray()
        sock.settimeout(10)
        while buffered.count(b"\r\n\r\n") < 2:
            buffered += sock.recv(65536)
        head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 7" in head
        assert rest.startswith(b"HTTP/1.1 200")  # the next answer follows at once: no body in between
    with connect(server) as sock:
        sock.sendall(b"GET /ready HTTP/1.0\r\n\r\n")
        status, headers, body = read_response(sock, bytearray())
        assert (status, body, headers["connection"]) == (200, b"Ready", "close")
        assert closed_by_server(sock)


def test_a_client_that_leaves_while_queued_never_runs(server):
    running = connect(server)
    running.sendall(score(b"slow"))
    server.wait_for_metric("bereit_in_flight 1.0")  # "slow" is inside run() now
    with connect(server) as leaving:
        leaving.sendall(score(b"left"))
        server.wait_for_metric("bereit_queued 1.0")  # queued behind "slow"
    server.wait_for_metric("bereit_queued 0.0")  # the server has seen it leave
    server.release.touch()
    assert read_response(running, bytearray())[::2] == (200, b'"slow"')
    running.sendall(score(b"calls"))
    status, _, body = read_response(running, bytearray())
    running.close()
    assert status == 200 and b'"left"' not in body and b'"slow"' in body


@pytest.mark.anyio
async def test_idle_connections_are_closed_by_one_timer(monkeypatch):
    monkeypatch.setattr(connection_mod, "IDLE_TICK_S", 0.02)

    class Connection:
        def __init__(self, busy: bool):
            self.loop = asyncio.get_running_loop()
            self.current = object() if busy else None
            self.parsing = None
            self.idle_ticks = 0
            self.closed = False
            self.transport = self

        def close(self):
            self.closed = True
            watch.connections.discard(self)

    watch = IdleWatch(0.1)
    idle, busy = Connection(busy=False), Connection(busy=True)
    watch.add(idle)
    watch.add(busy)
    await eventually(lambda: idle.closed)
    assert not busy.closed
    busy.current = None
    busy.idle_ticks = 0
    await eventually(lambda: busy.closed and watch._timer is None)  # no connections left: the timer stops
