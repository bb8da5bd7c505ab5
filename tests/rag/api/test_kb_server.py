"""Acceptance of the knowledge-base management API against `rag serve --kb-root` itself, run as a subprocess and
spoken to over loopback HTTP: uploads of every supported type into two knowledge bases at once while sixteen
clients keep chatting, a server killed (SIGKILL) in the middle of an ingest job and started again on the same
folder, and hostile uploads (100 MB, `../../x.md`, `.exe`)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.builders import write_markdown, write_product_file
from tests.servers import free_port, wait_until_up

pytestmark = pytest.mark.integration
ADMIN_KEY = "kb-server-test-admin-key"
FINISHED = ("succeeded", "failed")
JOB_TIMEOUT = 180.0  # seconds an ingest job may take on a slow, busy 2-core machine
MIB = 1024 * 1024


# ---- the server ----------------------------------------------------------------------------------------------
@dataclass
class RagServer:
    base: str
    port: int
    root: Path
    proc: subprocess.Popen
    log: Path

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One request with the admin key."""
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"} | kwargs.pop("headers", {})
        return httpx.request(method, self.base + path, headers=headers, timeout=kwargs.pop("timeout", 60), **kwargs)

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def ok(self, response: httpx.Response, status: int = 200) -> dict:
        """The JSON of `response`, which must have `status` (else the failure shows the body and the server log)."""
        assert response.status_code == status, (
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:800]}\n"
            f"--- server log ---\n{self.log_tail()}"
        )
        return response.json() if response.content else {}

    def create_kb(self, kb: str) -> None:
        self.ok(self.call("POST", "/api/kbs", json={"id": kb, "name": kb.title()}), 201)

    def upload(self, kb: str, paths: list[Path]) -> dict:
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
        return self.ok(self.call("POST", f"/api/kbs/{kb}/documents", files=files), 202)

    def job(self, job_id: str) -> dict:
        return self.ok(self.call("GET", f"/api/jobs/{job_id}"))

    def wait_job(self, job_id: str, seen: list[dict] | None = None, timeout: float = JOB_TIMEOUT) -> dict:
        """The job once finished; every state polled on the way is appended to `seen`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if seen is not None:
                seen.append(job)
            if job["state"] in FINISHED:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} not finished in {timeout}s: {job}\n--- server log ---\n{self.log_tail()}")

    def documents(self, kb: str) -> dict[str, dict]:
        """name -> document of the knowledge base."""
        return {d["name"]: d for d in self.ok(self.call("GET", f"/api/kbs/{kb}/documents"))["data"]}

    def ask(self, kb: str, question: str) -> dict:
        return self.ok(self.call("POST", f"/api/kbs/{kb}/chat", json={"question": question}))


@contextlib.contextmanager
def rag_serve(
    root: Path, log: Path, *, single_kb: bool = False, env: dict[str, str] | None = None
) -> Iterator[RagServer]:
    """`rag serve --kb-root root` (or `--kb root` with `single_kb`) on a free loopback port, in its own session (so
    that what it started, its sandboxed loaders, can be stopped with it), with the environment of a fresh machine:
    no RAG_* but ours (and `env`), and the same with or without CI=true."""
    port = free_port()
    folder = {"RAG_KB_DIR": str(root)} if single_kb else {"RAG_KB_ROOT": str(root)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_") and k != "CI"} | {
        **folder,
        "RAG_ADMIN_API_KEY": ADMIN_KEY,
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    where = ["--kb", str(root)] if single_kb else ["--kb-root", str(root)]
    cmd = [str(Path(sys.executable).with_name("rag")), "serve", *where, "--host", "127.0.0.1"]
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)],
            env=env,
            cwd=root.parent,  # no .env of the checkout
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_up(f"http://127.0.0.1:{port}/health", 120, proc)
            yield RagServer(f"http://127.0.0.1:{port}", port, root, proc, log)
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # sandboxed loaders a killed server left behind
        os.killpg(proc.pid, signal.SIGKILL)


# ---- chatting clients ----------------------------------------------------------------------------------------
@dataclass
class ChatLoad:
    """`threads` clients each asking question after question on one of `paths` until stopped; every outcome kept."""

    server: RagServer
    paths: list[str]
    questions: list[str]
    threads: int = 16
    outcomes: list[tuple[str, int | None, str]] = field(default_factory=list)  # (path, status, error)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> ChatLoad:
        for i in range(self.threads):
            worker = threading.Thread(target=self._ask, args=(i,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=90)

    def _ask(self, i: int) -> None:
        path = self.paths[i % len(self.paths)]
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=self.server.base, headers=headers, timeout=60) as client:
            n = i
            while not self._stop.is_set():
                question = self.questions[n % len(self.questions)]
                n += 1
                try:
                    r = client.post(path, json={"question": question})
                    self.outcomes.append((path, r.status_code, "" if r.status_code == 200 else r.text[:500]))
                except httpx.HTTPError as exc:
                    self.outcomes.append((path, None, repr(exc)))

    def failures(self) -> list[tuple[str, int | None, str]]:
        return [o for o in self.outcomes if o[1] != 200]


# ---- test 1: every type, two knowledge bases, uploads side by side, chat all along ---------------------------
@dataclass(frozen=True)
class Product:
    file: str  # the uploaded file's name
    product: str
    code: str
    price: str
    filler: int = 0

    @property
    def question(self) -> str:
        return f"How much does the {self.product} {self.code} cost?"


PRODUCTS = [
    Product("widget.txt", "Zorvex Widget", "ZX-1001", "$101.17", filler=300),  # a larger file: a longer job
    Product("gadget.text", "Quolm Gadget", "QG-2002", "$202.28"),
    Product("gizmo.md", "Brindle Gizmo", "BG-3003", "$303.39"),
    Product("doohickey.markdown", "Vantrel Doohickey", "VD-4004", "$404.41"),
    Product("sprocket.html", "Ossifrage Sprocket", "OS-5005", "$505.52"),
    Product("flange.htm", "Marrowick Flange", "MF-6006", "$606.63"),
    Product("valve.pdf", "Tessaract Valve", "TV-7007", "$707.74"),
    Product("bracket.docx", "Gildenfog Bracket", "GB-8008", "$808.85"),
    Product("spindle.csv", "Hollowmere Spindle", "HS-9009", "$909.96"),
    Product("ratchet.xlsx", "Pellucid Ratchet", "PR-1110", "$111.07"),
    Product("lever.json", "Crumhorn Lever", "CL-1221", "$122.18"),
    Product("pulley.jsonl", "Drabwick Pulley", "DP-1332", "$133.29"),
    Product("gear.md", "Fennimore Gear", "FG-1443", "$144.31"),
    Product("hinge.txt", "Jorvald Hinge", "JH-1554", "$155.42"),
    Product("nozzle.html", "Kestrine Nozzle", "KN-1665", "$166.53"),
    Product("coupler.csv", "Lumbergast Coupler", "LC-1776", "$177.64"),
    Product("caster.docx", "Nimbletoe Caster", "NC-1887", "$188.75"),
    Product("dynamo.jsonl", "Orrery Dynamo", "OD-1998", "$199.86"),
    Product("piston.pdf", "Plimsoll Piston", "PP-2109", "$210.97"),
]
BROKEN = "broken.pdf"  # not a PDF: the job must report it, not fail as a whole or hang
SUPPORTED = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".csv", ".xlsx", ".json", ".jsonl"}
KBS = ("alpha", "beta")


def _batches(folder: Path) -> list[tuple[str, list[Path]]]:
    """The 20 files in four upload requests of five, two per knowledge base; the broken one among good ones."""
    folder.mkdir()
    paths = [write_product_file(folder / p.file, p.product, p.code, p.price, p.filler) for p in PRODUCTS]
    (folder / BROKEN).write_bytes(b"This is not a PDF, only text with a .pdf name.\n" * 20)
    paths.insert(9, folder / BROKEN)
    assert len(paths) == 20 and {p.suffix for p in paths} == SUPPORTED
    return [(KBS[i % 2], paths[i::4]) for i in range(4)]


def _kb_of(batches: list[tuple[str, list[Path]]], name: str) -> str:
    return next(kb for kb, paths in batches for p in paths if p.name == name)


def _upload_and_follow(server: RagServer, kb: str, paths: list[Path], start: threading.Barrier) -> tuple[dict, list]:
    start.wait(timeout=30)
    submitted = server.upload(kb, paths)
    seen: list[dict] = [submitted]
    return server.wait_job(submitted["job_id"], seen), seen


def _check_job(final: dict, paths: list[Path]) -> None:
    assert final["state"] in FINISHED, final
    assert final["files_total"] == final["files_done"] == len(paths), final
    assert sorted(final["files"]) == sorted(p.name for p in paths), final
    for failure in final["failures"]:
        assert failure["file"] in final["files"] and failure["reason"].strip(), final
    if final["state"] == "failed":
        assert final["error"] and final["failures"], final


def test_uploads_of_every_type_into_two_kbs_while_sixteen_clients_chat(tmp_path):
    batches = _batches(tmp_path / "docs")
    with rag_serve(tmp_path / "data" / "root", tmp_path / "serve.log") as server:
        for kb in KBS:
            server.create_kb(kb)
        paths = ["/chat", *(f"/api/kbs/{kb}/chat" for kb in KBS)]
        questions = [p.question for p in PRODUCTS] + ["Do you ship to Canada?"]
        start = threading.Barrier(len(batches))
        with ChatLoad(server, paths, questions) as load, ThreadPoolExecutor(len(batches)) as pool:
            time.sleep(1.0)  # the chat load is under way before the first upload
            futures = [pool.submit(_upload_and_follow, server, kb, files, start) for kb, files in batches]
            results = [f.result(timeout=JOB_TIMEOUT + 60) for f in futures]
            time.sleep(0.5)
        finals = [final for final, _ in results]

        # progress was visible while the jobs ran
        polls = [job for _, seen in results for job in seen]
        assert any(j["state"] == "running" or 0 < j["files_done"] < j["files_total"] for j in polls), (
            f"no poll saw a job in progress: {[(j['state'], j['files_done']) for j in polls]}"
        )
        for final, (_, files) in zip(finals, batches, strict=True):
            _check_job(final, files)
        reported = {f["file"]: f["reason"] for final in finals for f in final["failures"]}
        assert set(reported) == {BROKEN}, f"only the broken file should fail: {reported}"

        # every file ingested (chunks > 0) or reported (failed, with its reason)
        for kb, files in batches:
            docs = server.documents(kb)
            for path in files:
                doc = docs.get(path.name)
                assert doc is not None, f"{path.name} missing from {kb}'s documents: {sorted(docs)}"
                assert doc["source"] == f"files/{path.name}"
                if path.name == BROKEN:
                    assert doc["status"] == "failed" and doc["error"], doc
                else:
                    assert doc["status"] == "ingested" and doc["chunks"] > 0, doc

        # not one chat request failed while all this went on
        assert len(load.outcomes) >= 3 * load.threads, f"the chat load hardly ran: {len(load.outcomes)} requests"
        assert load.failures() == [], (
            f"{len(load.failures())} of {len(load.outcomes)} chat requests failed: {load.failures()[:5]}\n"
            f"--- server log ---\n{server.log_tail()}"
        )
        assert {path for path, _, _ in load.outcomes} == set(paths)

        # each uploaded file's own content is found and cited, whatever its type
        for product in PRODUCTS:
            answer = server.ask(_kb_of(batches, product.file), product.question)
            sources = [c["source"] for c in answer["citations"]]
            assert answer["answered"] and f"files/{product.file}" in sources, (product, answer)
            assert product.price in answer["answer"], (product, answer)


# ---- test 2: SIGKILL in the middle of a job ------------------------------------------------------------------
def _big_markdown(path: Path, paragraphs: int) -> Path:
    lines = [
        f"Section {i} of the {path.stem} service manual: tighten bolt {i % 97} to {10 + i % 13} newton metres "
        f"and check the seal on valve {i % 31} before restarting pump {i % 7}."
        for i in range(paragraphs)
    ]
    return write_markdown(path, body=f"# {path.stem} manual\n\n" + "\n\n".join(lines) + "\n")


def _wait_running(server: RagServer, job_id: str, timeout: float = 60) -> dict:
    """The job once it runs and has embedded something (or has run for two seconds)."""
    deadline, running_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        job = server.job(job_id)
        assert job["state"] not in FINISHED, f"the job finished before it could be killed - use bigger files: {job}"
        if job["state"] == "running":
            running_since = running_since or time.monotonic()
            if job["chunks_embedded"] > 0 or time.monotonic() - running_since > 2:
                return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never ran: {job}\n--- server log ---\n{server.log_tail()}")


def test_a_server_killed_mid_job_restarts_with_the_job_failed_and_the_kb_usable(tmp_path):
    root, docs, kb = tmp_path / "data" / "root", tmp_path / "docs", "manuals"
    docs.mkdir()
    anchor = write_product_file(docs / "anchor.md", "Quillfeather Anchor", "QA-4242", "$42.42")
    big = [_big_markdown(docs / f"manual{i}.md", 3000) for i in range(4)]
    with rag_serve(root, tmp_path / "first.log") as server:
        server.create_kb(kb)
        first = server.wait_job(server.upload(kb, [anchor])["job_id"])
        assert first["state"] == "succeeded", first
        job_id = server.upload(kb, big)["job_id"]
        _wait_running(server, job_id)
        os.kill(server.proc.pid, signal.SIGKILL)
        assert server.proc.wait(timeout=30) == -signal.SIGKILL

    with rag_serve(root, tmp_path / "second.log") as server:
        loaded = server.ok(server.call("GET", f"/api/kbs/{kb}"))
        assert loaded["id"] == kb and loaded["documents"] == 1, f"the killed job left part of its work: {loaded}"
        job = server.job(job_id)
        assert job["state"] == "failed", job
        assert "server stopped while this job was running" in job["error"], job
        assert server.job(first["job_id"])["state"] == "succeeded"
        jobs = server.ok(server.call("GET", f"/api/kbs/{kb}/jobs"))["data"]
        assert all(j["state"] in FINISHED for j in jobs), jobs

        documents = server.documents(kb)
        for path in big:  # reported failed, with the reason, and not half in the index
            doc = documents[path.name]
            assert doc["status"] == "failed" and "server stopped" in doc["error"] and doc["chunks"] == 0, doc
        assert documents["anchor.md"]["status"] == "ingested", documents["anchor.md"]

        answer = server.ask(kb, "How much does the Quillfeather Anchor QA-4242 cost?")  # the last committed state
        assert answer["answered"] and "files/anchor.md" in [c["source"] for c in answer["citations"]], answer

        later = write_product_file(docs / "later.txt", "Wobbleshaft Later", "WL-5151", "$51.51")
        job = server.wait_job(server.upload(kb, [later])["job_id"])
        assert job["state"] == "succeeded" and not job["failures"], job
        assert server.documents(kb)["later.txt"]["status"] == "ingested"
        answer = server.ask(kb, "How much does the Wobbleshaft Later WL-5151 cost?")
        assert "files/later.txt" in [c["source"] for c in answer["citations"]], answer


# ---- test 3: hostile uploads ---------------------------------------------------------------------------------
def post_raw(port: int, path: str, headers: dict[str, str], body: Iterable[bytes]) -> tuple[int, bytes]:
    """(status, reply) of a POST whose body is sent piece by piece over a plain socket while the reply is read:
    a server that refuses a body early answers and closes while the client still sends, which an HTTP client
    library reports as a broken pipe rather than as the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    reply = bytearray()

    def read() -> None:
        with contextlib.suppress(OSError):
            while data := sock.recv(65536):
                reply.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with contextlib.suppress(OSError):  # refused mid-body: the reply is on its way
        sock.sendall(head.encode())
        for piece in body:
            sock.sendall(piece)
    reader.join(timeout=60)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 "), f"no HTTP reply: {bytes(reply[:200])!r}"
    return int(reply.split(b" ", 2)[1]), bytes(reply)


def _multipart_of_size(name: str, size: int, boundary: str = "kb-server-test-boundary") -> tuple[int, Iterator[bytes]]:
    """(length, pieces) of a multipart body with one `files` field of `size` bytes of Markdown, made as sent."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        f"Content-Type: text/markdown\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    line = b"Filler line of a very large upload.\n"
    piece = line * (MIB // len(line))

    def pieces() -> Iterator[bytes]:
        yield head
        left = size
        while left > 0:
            yield piece[:left]
            left -= len(piece[:left])
        yield tail

    return len(head) + size + len(tail), pieces()


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


def _tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_hostile_uploads_are_refused_or_contained_and_the_server_keeps_serving(tmp_path):
    data, kb = tmp_path / "data", "shop"
    with rag_serve(data / "root", tmp_path / "serve.log") as server:
        server.create_kb(kb)
        server.ask(kb, "Do you ship to Canada?")
        kb_dir = server.root / kb
        auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
        length, pieces = _multipart_of_size("huge.md", 100 * 1000 * 1000)
        content_type = "multipart/form-data; boundary=kb-server-test-boundary"
        sized = auth | {"Content-Type": content_type, "Content-Length": str(length)}
        status, reply = post_raw(server.port, f"/api/kbs/{kb}/documents", sized, pieces)
        assert status == 413 and b"RAG_MAX_UPLOAD_BYTES" in reply, reply[:600]
        _, pieces = _multipart_of_size("huge.md", 100 * 1000 * 1000)
        streamed = auth | {"Content-Type": content_type, "Transfer-Encoding": "chunked"}
        status, reply = post_raw(server.port, f"/api/kbs/{kb}/documents", streamed, _chunked(pieces))
        assert status == 413 and b"RAG_MAX_UPLOAD_BYTES" in reply, reply[:600]
        assert server.ok(server.call("GET", "/health"))["status"] == "ok"
        server.ask(kb, "Do you ship to Canada?")
        assert not any(p.name == "huge.md" for p in _tree(data)), "a refused upload was kept"

        before = _tree(data)
        content = b"# Escape\n\nThe Tunnelwick Escape (product code TE-8080) costs $80.80.\n"
        files = [("files", ("../../x.md", content, "text/markdown"))]
        job = server.wait_job(server.ok(server.call("POST", f"/api/kbs/{kb}/documents", files=files), 202)["job_id"])
        assert job["state"] == "succeeded" and job["files"] == ["x.md"], job
        assert (kb_dir / "files" / "x.md").read_bytes() == content
        outside = {p for p in _tree(data) - before if kb_dir not in p.parents}
        assert outside == set(), f"written outside {kb_dir}: {outside}"
        assert [p for p in _tree(tmp_path) if p.name == "x.md"] == [kb_dir / "files" / "x.md"]
        assert server.documents(kb)["x.md"]["source"] == "files/x.md"

        evil = server.call("POST", f"/api/kbs/{kb}/documents", files=[("files", ("evil.exe", b"MZ\x90\x00", "x/y"))])
        assert evil.status_code == 415 and ".exe" in evil.json()["error"]["message"], evil.text
        mixed = [("files", ("fine.md", b"# Fine\n\nfine\n", "text/markdown")), ("files", ("evil.exe", b"MZ", "x/y"))]
        assert server.call("POST", f"/api/kbs/{kb}/documents", files=mixed).status_code == 415
        assert not {"evil.exe", "fine.md"} & {p.name for p in _tree(data)}, "a refused upload was kept"
        assert server.ok(server.call("GET", "/health"))["status"] == "ok"
