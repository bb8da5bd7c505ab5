"""Idle and slow clients against `rag serve` itself, run as a subprocess whose open-files limit is lowered to
256: more idle sockets than it can hold must not lock out /health, idle and slow connections are closed in
time, and the log stays small. (Before: 1,100 idle sockets against a 1,024 limit made /health time out for as
long as they were held, and asyncio wrote 257 MB of "Too many open files" in 45 s.) Plus, in process, the
answer a newcomer gets when every connection is busy."""

from __future__ import annotations

import errno
import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rag.chat.service import ChatService
from rag.core.settings import Settings
from rag.generation.extractive import ExtractiveGenerator
from rag.store.knowledge_base import KnowledgeBase
from rag.text.tokenizer import get_encoding
from rag.wiring import Services, create_retriever
from tests.rag.api.serving import guarded_server
from tests.servers import free_port, wait_until_up

pytestmark = pytest.mark.integration
OPEN_FILES = 256
IDLE_SOCKETS = 400  # well past what the server may hold: OPEN_FILES less its reserve and backlog
HEADER_TIMEOUT = 2.0  # long enough for the 400 sockets to be open at once on a slow machine
BODY_TIMEOUT = 2.0


def _lower_open_files_limit() -> None:  # runs in the child, before `rag serve` starts
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


@pytest.fixture(scope="module")
def server(demo_kb, tmp_path_factory):
    """(base URL, log file) of `rag serve` with short timeouts and a 256 open-files limit."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | {
        "RAG_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "RAG_HTTP_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "RAG_HTTP_KEEP_ALIVE_TIMEOUT": "1",
        "RAG_DATABASE_URL": f"sqlite:///{log.parent / 'c.sqlite'}",
    }
    cmd = [str(Path(sys.executable).with_name("rag")), "serve", "--kb", str(demo_kb), "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_lower_open_files_limit)
        try:
            wait_until_up(f"http://127.0.0.1:{port}/health", 120, proc)
            yield f"http://127.0.0.1:{port}", port, log
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def open_idle_sockets(port: int, count: int, batch: int = 16) -> list[socket.socket]:
    """`count` loopback connections that send nothing, opened a batch at a time with a pause for the server to
    accept them: more than its listen backlog at once would leave SYNs to the kernel's retry timer (1 s, 3 s)."""
    sockets: list[socket.socket] = []
    while len(sockets) < count:
        selector = selectors.DefaultSelector()
        for _ in range(min(batch, count - len(sockets))):
            s = socket.socket()
            s.setblocking(False)
            assert s.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
            selector.register(s, selectors.EVENT_WRITE)
            sockets.append(s)
        deadline = time.monotonic() + 10
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                assert key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                selector.unregister(key.fileobj)
        assert not selector.get_map(), "the server stopped accepting connections"
        selector.close()
        time.sleep(0.02)
    return sockets


def wait_closed(sockets: list[socket.socket], within: float) -> list[socket.socket]:
    """The sockets the server has not closed after `within` seconds."""
    selector = selectors.DefaultSelector()
    for s in sockets:
        selector.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + within
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            try:
                data = key.fileobj.recv(4096)
            except ConnectionError:
                data = b""
            except BlockingIOError:
                continue
            if not data or data.startswith(b"HTTP/1.1 503"):
                selector.unregister(key.fileobj)
    left = [key.fileobj for key in selector.get_map().values()]
    selector.close()
    return left


def test_idle_sockets_past_the_open_files_limit_do_not_lock_out_health(server):
    base, port, log = server
    idle = open_idle_sockets(port, IDLE_SOCKETS)
    try:
        started = time.monotonic()
        r = httpx.get(f"{base}/health", timeout=10)
        assert r.status_code == 200 and time.monotonic() - started < 3
        # idle ones are closed: the oldest to make room, the rest once the header timeout has passed
        assert wait_closed(idle, within=HEADER_TIMEOUT + 4) == []
        assert httpx.get(f"{base}/health", timeout=10).status_code == 200
    finally:
        for s in idle:
            s.close()
    text = log.read_text(errors="replace")
    assert "Too many open files" not in text and "out of system resource" not in text
    # the cap was reached (the idle connections were closed to admit new ones), and said so once, not 232 times
    assert 1 <= text.count("Connection limit reached") <= 3
    assert log.stat().st_size < 64_000


def test_slow_headers_slow_bodies_and_idle_keep_alive_are_closed(server):
    _, port, _ = server
    dribbler = socket.create_connection(("127.0.0.1", port))
    dribbler.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    try:
        while time.monotonic() - started < HEADER_TIMEOUT + 3:  # a header byte every 0.2 s never completes
            dribbler.sendall(b"X")
            time.sleep(0.2)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert time.monotonic() - started < HEADER_TIMEOUT + 2, "a slowloris connection was kept open"
    dribbler.close()

    slow_body = socket.create_connection(("127.0.0.1", port))
    slow_body.sendall(
        b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    slow_body.setblocking(False)
    started = time.monotonic()
    assert wait_closed([slow_body], within=BODY_TIMEOUT + 3) == []
    assert BODY_TIMEOUT - 0.5 < time.monotonic() - started < BODY_TIMEOUT + 2
    slow_body.close()

    keep_alive = socket.create_connection(("127.0.0.1", port))  # one request, then idle
    keep_alive.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert keep_alive.recv(65536).startswith(b"HTTP/1.1 200")
    keep_alive.setblocking(False)
    assert wait_closed([keep_alive], within=4) == []
    keep_alive.close()


def test_when_every_connection_is_busy_a_new_one_is_told_so(demo_kb, embedder):
    """At the cap with no idle connection to close, the newcomer gets a 503 it can read, not a silent hang."""
    settings = Settings(kb_dir=demo_kb, _env_file=None, http_max_connections=8)
    with KnowledgeBase.open(demo_kb) as kb:
        service = ChatService(
            settings, create_retriever("bm25", kb, None, settings), ExtractiveGenerator(), get_encoding()
        )
        with guarded_server(settings, Services(service, kb, embedder)) as base:
            port = int(base.rsplit(":", 1)[1])
            busy = []
            for _ in range(8):  # requests in progress: headers in, body still coming
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(
                    b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
                )
                busy.append(s)
            time.sleep(0.3)
            newcomer = socket.create_connection(("127.0.0.1", port))
            newcomer.settimeout(5)
            reply = newcomer.recv(4096)
            assert reply.startswith(b"HTTP/1.1 503") and b"server_busy" in reply
            for s in busy:
                s.close()
            newcomer.close()
            time.sleep(0.3)
            assert httpx.get(f"{base}/health", timeout=10).status_code == 200  # room again
