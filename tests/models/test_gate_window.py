"""A retrained candidate is weighed on its own, later holdout window; an earlier or unreadable one is not."""

from __future__ import annotations

from crm_analytics.models.gate import later_window


def test_later_window_only_for_a_holdout_starting_after_the_champions() -> None:
    newer, older = "2025-10-31+30d:fe49aa:from-2025-10-01", "2025-10-01+30d:a3b325:oof"
    assert later_window(newer, older)
    assert not later_window(older, newer)
    assert not later_window(newer, newer)
    assert not later_window("not a tag", older)
    assert not later_window(newer, None)
