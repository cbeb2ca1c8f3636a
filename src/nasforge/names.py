"""Run names: what a run may be called. A name becomes part of file paths (its log, its
artifacts folder), so it is checked where a run is created, before anything is written."""

from __future__ import annotations

import re

from nasforge.errors import ConfigError

#: a letter or digit, then up to 99 letters, digits, dots, underscores or hyphens: no path
#: separator, no leading dot (``..``, hidden files), nothing a shell or HTML would interpret
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
RUN_NAME_RULE = "[A-Za-z0-9][A-Za-z0-9._-]{0,99}"


def check_run_name(name: object) -> str:
    """``name`` if it is a safe run name, else a ConfigError that quotes it and the rule."""
    if not isinstance(name, str) or RUN_NAME.fullmatch(name) is None:
        raise ConfigError(
            f"run name {name!r} is not accepted: use 1-100 characters of letters, digits, '.', "
            f"'_' and '-', starting with a letter or digit ({RUN_NAME_RULE})"
        )
    return name
