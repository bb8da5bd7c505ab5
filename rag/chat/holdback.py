"""Streaming a reply that may turn out to be the model's decline marker (a pure function)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def hold_back_marker(pieces: Iterable[str], marker: str) -> Iterator[str]:
    """The pieces of a streamed reply, except that its start is held back until it cannot be `marker`.

    A reply that starts with the marker yields nothing: the customer never sees a half-written marker.

    >>> list(hold_back_marker(["NO_", "ANS", "WER"], "NO_ANSWER"))
    []
    >>> list(hold_back_marker(["NO", "pe, ", "it ships"], "NO_ANSWER"))
    ['NOpe, ', 'it ships']
    >>> list(hold_back_marker(["NO"], "NO_ANSWER"))
    ['NO']
    """
    held = ""
    rest = iter(pieces)
    for piece in rest:
        held += piece
        probe = held.lstrip()
        if probe.startswith(marker) or marker.startswith(probe):
            continue
        yield held
        yield from rest
        return
    probe = held.strip()
    if probe and not probe.startswith(marker):
        yield held  # a reply shorter than the marker
