"""Screenshots of the console's pages, desktop and tablet, for the README: a knowledge base built from data/ over the
API, a few conversations (answered, declined, frustrated, handed off, rated down), then each page in headless Chromium.

    .venv/bin/python docs/screenshots.py          # writes docs/console-<page>-<desktop|tablet>.png
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.api import create_app  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.wiring import build_services  # noqa: E402
from tests.rag.api.chromium import headless_chromium  # noqa: E402
from tests.servers import uvicorn_in_thread  # noqa: E402

KEY = "screenshots-admin"
SIZES = {"desktop": {"width": 1280, "height": 860}, "tablet": {"width": 820, "height": 1180}}
QUESTIONS = [
    "How long does standard shipping take?",
    "What are your phone support hours?",
    "Do you have a shop in Boston?",
    "Is there a store in Boston?",
    "This is ridiculous, I asked three times! When will my refund arrive???",
    "退货运费谁承担？",
    "I want to talk to a person",
]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(kb_root=Path(tmp) / "root", admin_api_key=KEY, _env_file=None)
        services = build_services(settings, background=True)
        try:
            with uvicorn_in_thread(create_app(settings, services=services)) as base:
                prepare(base)
                shoot(base)
        finally:
            services.close()


def prepare(base: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    httpx.post(f"{base}/api/kbs", json={"id": "pinecrest", "name": "Pinecrest Supply Co."}, headers=auth)
    files = [("files", (p.name, p.read_bytes())) for p in sorted((ROOT / "data").iterdir()) if p.is_file()]
    job = httpx.post(f"{base}/api/kbs/pinecrest/documents", files=files, headers=auth, timeout=120).json()
    while httpx.get(f"{base}/api/jobs/{job['job_id']}", headers=auth).json()["state"] in ("queued", "running"):
        time.sleep(0.5)
    answers = [
        httpx.post(f"{base}/api/kbs/pinecrest/chat", json={"question": q}, headers=auth, timeout=60).json()
        for q in QUESTIONS
    ]
    rating = {"message_id": answers[1]["message_id"], "rating": "down", "comment": "I needed the weekend hours"}
    httpx.post(f"{base}/api/kbs/pinecrest/feedback", json=rating, headers=auth)


def shoot(base: str) -> None:
    with headless_chromium() as browser:
        for size, viewport in SIZES.items():
            context = browser.new_context(viewport=viewport)
            page = context.new_page()
            page.goto(base + "/console")
            page.get_by_label("Key", exact=True).fill(KEY)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Pinecrest Supply Co. (pinecrest)").wait_for()
            page.wait_for_timeout(800)
            save(page, "knowledge", size)
            for tab in ("Conversations", "Dashboard", "Inbox", "Handoffs"):
                page.locator(f"#tab-{tab.lower()}").click()
                page.wait_for_timeout(1500)
                save(page, tab.lower(), size)
            context.close()


def save(page, name: str, size: str) -> None:
    path = ROOT / "docs" / f"console-{name}-{size}.png"
    page.screenshot(path=str(path), full_page=False)
    print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
