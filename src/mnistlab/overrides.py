"""Command-line overrides read as Hydra reads them (``a=1,2`` is a sweep, ``+b=x`` an addition).

``hydra.core.override_parser`` is Hydra's API for its plugins (its own example sweeper plugin
uses it). It lives apart from mnistlab.internals so that the sweep-folder resolver, which every
entry point registers before Hydra composes, loads without torch or Lightning. Tests:
tests/test_end_to_end.py (sweep job names), tests/test_resume.py (what a resume may change).
"""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override


def parse_overrides(overrides: list[str]) -> list[Override]:
    """Hydra's own parse of ``overrides``."""
    return OverridesParser.create().parse_overrides(overrides)
