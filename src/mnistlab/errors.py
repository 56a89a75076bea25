"""The exception types of a user's mistake, below every other module so that any can raise them.

Each message names the bad value and the fix in one line; the entry points print it and exit
with status 2.
"""

from __future__ import annotations

import sys
from typing import NoReturn


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and the fix."""


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message says what it is, in one line."""


def exit_with(err: Exception | str, status: int = 2) -> NoReturn:
    """End the program with the error's one line on stderr and ``status`` (2: bad input)."""
    print(f"Error: {err}", file=sys.stderr)
    raise SystemExit(status) from None
