"""Shared test fixtures: paths to ../shared (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed seed so that its verdict is reproducible; local
# runs keep exploring new examples (and a failure found there becomes a named test).
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PORTSNIFF_SHARED", ROOT.parent / "shared"))
CAPTURES = ROOT / "captures"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared test data is not next to this checkout")
    return path


@pytest.fixture
def official_xml() -> Path:
    return shared_path("registry", "service-names-port-numbers.xml")


@pytest.fixture
def official_csv() -> Path:
    return shared_path("registry", "service-names-port-numbers.csv")


@pytest.fixture
def seed_excerpt() -> Path:
    return shared_path("seed", "iana-registry-excerpt.txt")


@pytest.fixture
def shared_captures() -> Path:
    return shared_path("captures")


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never let a test read or write the user's real registry cache."""
    monkeypatch.setenv("PORTSNIFF_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("PORTSNIFF_REGISTRY", raising=False)


@pytest.fixture(scope="session")
def official_index():  # type: ignore[no-untyped-def]
    """The index of the official XML registry (skipped when ../shared is absent)."""
    from portsniff.registry.cache import load_index

    return load_index([shared_path("registry", "service-names-port-numbers.xml")])
