"""The team's HTML report: one self-contained file (charts embedded as PNG), readable offline."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from rag.conversations.analytics import Stats, format_percent
from rag.conversations.store import StoredMessage
from rag.core.errors import ConfigurationError


def _matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigurationError(
            "The HTML report draws charts with matplotlib - `pip install 'rag-support-bot[report]'`"
        ) from exc
    return plt


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def charts(messages: Sequence[StoredMessage], stats: Stats) -> dict[str, str]:
    """Base64 PNGs: questions per day (answered / handed off), latency distribution, feedback."""
    plt = _matplotlib()
    out: dict[str, str] = {}
    days = sorted({m.created_at.date() for m in messages})
    answered = Counter(m.created_at.date() for m in messages if m.answered)
    handed = Counter(m.created_at.date() for m in messages if not m.answered)
    fig, ax = plt.subplots(figsize=(7, 3))
    labels = [d.isoformat() for d in days]
    ax.bar(labels, [answered[d] for d in days], label="answered", color="#2e7d32")
    ax.bar(
        labels,
        [handed[d] for d in days],
        bottom=[answered[d] for d in days],
        label="declined / handed off",
        color="#c62828",
    )
    ax.set_ylabel("questions")
    ax.set_title("Questions per day")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    out["per_day"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist([m.latency_ms for m in messages] or [0], bins=30, color="#1565c0")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("questions")
    ax.set_title("Answer latency")
    out["latency"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(["up", "down"], [stats.feedback_up, stats.feedback_down], color=["#2e7d32", "#c62828"])
    ax.set_title("Customer feedback")
    out["feedback"] = _png(fig)
    plt.close(fig)
    return out


def render_html(stats: Stats, messages: Sequence[StoredMessage], generated: datetime) -> str:
    images = charts(messages, stats)
    e = html.escape

    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f} ms"

    rows = (
        "".join(
            f"<tr><td>{g.count}</td><td>{e(g.question)}</td>"
            f"<td>{e(' / '.join(x for x in g.examples if x != g.question))}</td></tr>"
            for g in stats.top_unanswered
        )
        or '<tr><td colspan="3">Every question was answered.</td></tr>'
    )
    cards = [
        ("Conversations", stats.conversations),
        ("Questions", stats.questions),
        ("Answered", format_percent(stats.answered_rate)),
        ("Handed off", format_percent(stats.handoff_rate)),
        ("Feedback 👍 / 👎", f"{stats.feedback_up} / {stats.feedback_down}"),
        ("Latency p50 / p95", f"{ms(stats.latency_p50_ms)} / {ms(stats.latency_p95_ms)}"),
    ]
    card_html = "".join(
        f'<div class="card"><div class="v">{e(str(v))}</div><div class="k">{e(k)}</div></div>' for k, v in cards
    )
    period = f"since {e(stats.since)}" if stats.since else "all time"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Support bot report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; padding: 0 1rem; }}
.cards {{ display: flex; flex-wrap: wrap; gap: .75rem; }}
.card {{ border: 1px solid #ddd; border-radius: .5rem; padding: .75rem 1rem; min-width: 8rem; }}
.v {{ font-size: 1.4rem; font-weight: 600; }} .k {{ color: #666; font-size: .85rem; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #eee; padding: .4rem; text-align: left; vertical-align: top; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Support bot report</h1>
<p>{period}; generated {e(generated.strftime("%Y-%m-%d %H:%M UTC"))}</p>
<div class="cards">{card_html}</div>
<h2>What customers asked that the documents don't answer</h2>
<p>Unanswered questions grouped by similarity, most frequent first: candidates for new FAQ entries.</p>
<table><thead><tr><th>times</th><th>question</th><th>other wordings</th></tr></thead><tbody>{rows}</tbody></table>
<h2>Activity</h2>
<img alt="Questions per day, answered and handed off" src="data:image/png;base64,{images["per_day"]}">
<img alt="Answer latency distribution" src="data:image/png;base64,{images["latency"]}">
<img alt="Customer feedback, thumbs up and down" src="data:image/png;base64,{images["feedback"]}">
</body></html>
"""  # noqa: E501 - the page as it is sent
