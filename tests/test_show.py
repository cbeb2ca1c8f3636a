"""`nasforge show`'s summary of a stored run: when it last did something."""

from __future__ import annotations

from types import SimpleNamespace

from nasforge.report.show import last_activity


def trial(started: float, finished: float | None) -> SimpleNamespace:
    return SimpleNamespace(started=started, finished=finished)


def test_a_running_search_is_as_recent_as_its_latest_trial() -> None:
    run = SimpleNamespace(updated=100.0)  # the run's own record: written when it started
    assert last_activity(run, []) == 100.0
    assert last_activity(run, [trial(110.0, 150.0), trial(160.0, None)]) == 160.0
    assert last_activity(SimpleNamespace(updated=200.0), [trial(110.0, 150.0)]) == 200.0
