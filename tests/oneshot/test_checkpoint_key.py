"""The checkpoint key of a one-shot run ignores settings that are unset, so a nasforge that adds
a search setting with an empty default still resumes an older version's checkpoint."""

from __future__ import annotations

from nasforge.oneshot.run import _fingerprint


def test_unset_settings_do_not_change_the_key() -> None:
    old = {"cli": {"search": {"space": "nb201", "seed": 0}}, "oneshot": {"epochs": 10}}
    new = {
        "cli": {"search": {"space": "nb201", "seed": 0, "objectives": None, "constraints": []}},
        "oneshot": {"epochs": 10, "width": None},
    }
    assert _fingerprint(old) == _fingerprint(new)
    assert _fingerprint(old) != _fingerprint({**old, "oneshot": {"epochs": 11}})
    assert _fingerprint(old) != _fingerprint({**old, "oneshot": {"epochs": 10, "lr": 0.0}})
