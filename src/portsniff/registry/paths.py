"""Where portsniff keeps its registry cache."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE_DIR = "PORTSNIFF_CACHE_DIR"


def cache_dir() -> Path:
    """``$PORTSNIFF_CACHE_DIR`` if set, else the user's cache directory for portsniff."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("portsniff"))


def compiled_dir() -> Path:
    """Compiled (pre-parsed) registries, keyed by the source file's sha256."""
    return cache_dir() / "compiled"


def registry_dir() -> Path:
    """Downloaded or imported registry files."""
    return cache_dir() / "registry"
