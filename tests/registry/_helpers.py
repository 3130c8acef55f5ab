"""Shared helpers for the registry tests: parse the official files once per session."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from portsniff.registry.load import load_registry_file
from portsniff.registry.record import ParsedRegistry


@lru_cache(maxsize=8)
def parsed(path: Path) -> ParsedRegistry:
    return load_registry_file(path)
