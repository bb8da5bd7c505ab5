"""The README's first command, tried as a new user would: a fresh clone, `make run` before anything else is
installed there, then /health and one question over HTTP. Catches a dependency that only the test extras
install (those pass `make test` and still break `make run`).

Usage: python3 .ci/check_make_run.py [REPO]   (default: this repository; only committed work is cloned)
Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 1200  # a cold pip cache installs torch and the model package first
QUESTION = "How long does standard shipping take?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wait_for_health(base: str, proc: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"`make run` exited with {proc.returncode} before serving; its output:\n{log.read_text()[-4000:]}")
        try:
            return get_json(f"{base}/health")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(2)
    sys.exit(
        f"`make run` did not serve {base}/health within {START_TIMEOUT_S}s; its output:\n{log.read_text()[-4000:]}"
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory(prefix="make-run-") as tmp:
        clone, log = Path(tmp) / "clone", Path(tmp) / "make-run.log"
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "VIRTUAL_ENV"))}
        started = time.monotonic()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["make", "run", f"PORT={port}"],
                cwd=clone,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            health = wait_for_health(base, proc, log)
            ready_s = time.monotonic() - started
            answer = get_json(f"{base}/chat", {"question": QUESTION})
        finally:
            stop(proc)
    if health.get("status") != "ok" or not health.get("knowledge_base", {}).get("chunks"):
        sys.exit(f"/health after `make run` is not ok or serves an empty knowledge base: {health}")
    if not answer.get("answered") or not answer.get("citations"):
        sys.exit(f"`make run` served, but {QUESTION!r} got no cited answer: {answer}")
    print(
        f"make run: fresh clone served /health in {ready_s:.0f}s "
        f"({health['knowledge_base']['chunks']} chunks); {QUESTION!r} -> {answer['answer'][:80]!r} "
        f"[{answer['citations'][0]['source']}]"
    )


if __name__ == "__main__":
    main()
