"""The streaming decline-marker hold-back, as a pure function."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.chat.holdback import hold_back_marker
from rag.generation.prompting import DECLINE_MARKER

pytestmark = pytest.mark.unit


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False)]


@given(st.text(max_size=40), st.lists(st.integers(min_value=0, max_value=60), max_size=6))
def test_a_reply_comes_through_whole_however_it_is_split(reply, cuts):
    out = "".join(hold_back_marker(split(reply, cuts), DECLINE_MARKER))
    visible = reply.strip() and not reply.strip().startswith(DECLINE_MARKER)
    assert out == (reply if visible else "")


@given(
    st.text(max_size=30), st.lists(st.integers(min_value=0, max_value=60), max_size=6), st.sampled_from(["", " ", "\n"])
)
def test_a_decline_shows_nothing_however_it_is_split(tail, cuts, lead):
    assert list(hold_back_marker(split(lead + DECLINE_MARKER + tail, cuts), DECLINE_MARKER)) == []


def test_text_streams_as_soon_as_it_cannot_be_the_marker():
    pieces = iter(["Ships", " in 3 days"])
    out = hold_back_marker(pieces, DECLINE_MARKER)
    assert next(out) == "Ships"  # released before the rest of the reply was even read
    assert list(pieces) == [" in 3 days"]
