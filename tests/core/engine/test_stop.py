"""Stop strings hold back only text that could still become a stop string."""

from __future__ import annotations

from app.core.engine.stop import StopMatcher


def feed_all(matcher: StopMatcher, parts: list[str]) -> str:
    shown = ""
    for part in parts:
        shown += matcher.feed(part)
        if matcher.hit:
            return shown
    return shown + matcher.flush()


def test_without_stops_text_passes_through() -> None:
    assert feed_all(StopMatcher([]), ["a", "b"]) == "ab"


def test_stop_split_across_chunks_is_caught_and_hidden() -> None:
    matcher = StopMatcher(["\nUser:"])
    assert feed_all(matcher, ["Paris.", "\nUs", "er: next"]) == "Paris."
    assert matcher.hit == "\nUser:"


def test_a_partial_match_that_fails_is_released() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("ST") == ""
    assert matcher.feed("AR") == "STAR"
    assert matcher.hit is None


def test_held_text_is_flushed_at_the_end() -> None:
    matcher = StopMatcher(["STOP"])
    assert feed_all(matcher, ["go ST"]) == "go ST"


def test_earliest_of_several_stops_wins() -> None:
    matcher = StopMatcher(["b", "abc"])
    assert feed_all(matcher, ["xabc"]) == "x"
    assert matcher.hit == "abc"
