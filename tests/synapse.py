"""A real Matrix homeserver for the tests: Synapse from the `matrix-synapse` package, SQLite in a temporary folder,
one plain-HTTP client listener on 127.0.0.1, no federation, rate limits lifted (the tests send faster than people
type), stopped and deleted afterwards.

    with synapse_server() as server:
        bot = server.register("bot")            # a Matrix account, through the shared-secret admin API
        alice = server.register("alice")
        ...                                     # server.url is the homeserver's base URL

Users are created with `/_synapse/admin/v1/register` (an HMAC of the registration shared secret), the way
Synapse's own `register_new_matrix_user` script does it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from tests.servers import _missing, free_port, wait_until_up

SERVER_NAME = "localhost"
_START_ATTEMPTS = 3  # another process may take the free port before Synapse binds it
_LIFTED = {"per_second": 10000, "burst_count": 100000}


@dataclass(frozen=True)
class MatrixUser:
    user_id: str  # "@alice:localhost"
    password: str
    access_token: str
    device_id: str


@dataclass
class SynapseServer:
    url: str  # http://127.0.0.1:<port>
    shared_secret: str
    folder: Path
    started_in: float  # seconds from launch until /health answered
    _admin: MatrixUser | None = None

    def register(self, localpart: str, *, admin: bool = False) -> MatrixUser:
        """A new account `@<localpart>:localhost`, logged in (its access token), with no rate limits."""
        password = secrets.token_urlsafe(16)
        nonce = httpx.get(f"{self.url}/_synapse/admin/v1/register", timeout=10).json()["nonce"]
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(
            b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"admin" if admin else b"notadmin"])
        )
        response = httpx.post(
            f"{self.url}/_synapse/admin/v1/register",
            json={
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        return MatrixUser(body["user_id"], password, body["access_token"], body["device_id"])

    def limit_messages(self, user_id: str, per_second: int, burst_count: int) -> None:
        """Give `user_id` its own message rate limit (the admin API's override), to provoke a 429."""
        if self._admin is None:
            self._admin = self.register(f"admin-{secrets.token_hex(4)}", admin=True)
        response = httpx.post(
            f"{self.url}/_synapse/admin/v1/users/{quote(user_id, safe='')}/override_ratelimit",
            json={"messages_per_second": per_second, "burst_count": burst_count},
            headers={"Authorization": f"Bearer {self._admin.access_token}"},
            timeout=10,
        )
        response.raise_for_status()

    def log(self) -> str:
        return _tail(self.folder / "homeserver.log")


@contextlib.contextmanager
def synapse_server() -> Iterator[SynapseServer]:
    """Start a throwaway Synapse; yields it once /health answers. Skips the test when it cannot start, fails it
    under CI=true."""
    folder = Path(tempfile.mkdtemp(prefix="rag-synapse-"))
    proc: subprocess.Popen | None = None
    try:
        try:
            proc, server = _start(folder)
        except Exception as exc:  # any reason at all: report it as the skip (or CI failure) reason
            _missing(f"could not start Synapse from matrix-synapse: {exc}\n{_tail(folder / 'homeserver.log')}".strip())
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def _start(folder: Path) -> tuple[subprocess.Popen, SynapseServer]:
    try:
        import synapse  # noqa: F401
        from signedjson.key import generate_signing_key, write_signing_keys
    except ImportError as exc:
        raise RuntimeError(f"{exc} - `pip install matrix-synapse`") from exc
    with open(folder / "localhost.signing.key", "w") as key_file:
        write_signing_keys(key_file, [generate_signing_key("a_test")])
    shared_secret = secrets.token_hex(16)
    for attempt in range(_START_ATTEMPTS):
        port = free_port()
        config = folder / "homeserver.yaml"
        config.write_text(json.dumps(_config(folder, port, shared_secret), indent=1))  # JSON is YAML
        log = open(folder / "homeserver.log", "ab")
        launched = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "--config-path", str(config)],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{url}/health", 120, proc)
        except Exception:
            _stop(proc)
            if attempt == _START_ATTEMPTS - 1 or "Address already in use" not in _tail(folder / "homeserver.log"):
                raise
            continue
        return proc, SynapseServer(url, shared_secret, folder, time.monotonic() - launched)
    raise AssertionError("unreachable")


def _config(folder: Path, port: int, shared_secret: str) -> dict:
    """A minimal homeserver.yaml: the client API only, on loopback, nothing reaching out."""
    return {
        "server_name": SERVER_NAME,
        "pid_file": str(folder / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(folder / "homeserver.db")}},
        "media_store_path": str(folder / "media"),
        "signing_key_path": str(folder / "localhost.signing.key"),
        "registration_shared_secret": shared_secret,
        "enable_registration": False,
        "macaroon_secret_key": secrets.token_hex(16),
        "form_secret": secrets.token_hex(16),
        "report_stats": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "url_preview_enabled": False,
        "enable_metrics": False,
        "presence": {"enabled": False},
        "rc_message": _LIFTED,
        "rc_registration": _LIFTED,
        "rc_login": {"address": _LIFTED, "account": _LIFTED, "failed_attempts": _LIFTED},
        "rc_joins": {"local": _LIFTED, "remote": _LIFTED},
        "rc_joins_per_room": _LIFTED,
        "rc_invites": {"per_room": _LIFTED, "per_user": _LIFTED, "per_issuer": _LIFTED},
        "rc_room_creation": _LIFTED,
        "rc_admin_redaction": _LIFTED,
    }


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
