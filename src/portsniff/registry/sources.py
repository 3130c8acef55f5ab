"""Which registry files a command uses, and in which order of preference.

Explicit files (``--registry FILE`` or ``$PORTSNIFF_REGISTRY``) mean exactly those files.
Otherwise the sources layer, first preferred:

1. the user cache (``cache_dir()/registry/``), filled by ``registry update``/``import``;
2. the system's copies: Wireshark's ``services`` file and ``/etc/services``;
3. the excerpt of the registry shipped with portsniff.

Only files that exist are used. A broken system or cache copy is skipped and reported
as a problem; a broken explicit file is an error.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from portsniff.errors import RegistryError
from portsniff.registry.record import ParsedRegistry

if TYPE_CHECKING:
    from portsniff.registry.cache import Compiled
    from portsniff.registry.index import RegistryIndex

#: Where Debian/Ubuntu (wireshark-common, tshark), Fedora and Homebrew put Wireshark's
#: copy of the registry, then the classic services(5) file. Overridable with
#: ``$PORTSNIFF_SYSTEM_SERVICES`` (os.pathsep-separated; empty means none).
SYSTEM_SERVICES: tuple[str, ...] = (
    "/usr/share/wireshark/services",
    "/usr/local/share/wireshark/services",
    "/opt/homebrew/share/wireshark/services",
    "/etc/services",
)
SYSTEM_ENV = "PORTSNIFF_SYSTEM_SERVICES"

#: The cache copy is ``registry_dir()/<CACHE_STEM><suffix>``; one at a time.
CACHE_STEM = "service-names-port-numbers"
CACHE_SUFFIXES: dict[str, str] = {
    "iana-xml": ".xml",
    "iana-csv": ".csv",
    "iana-text": ".txt",
    "services": ".services",
    "wireshark-services": ".services",
}
#: ETag, Last-Modified and origin of the cache copy, beside it.
CACHE_META = "download.json"

#: Where ``registry update`` downloads from (IANA's XML URL works too).
DEFAULT_URL = (
    "https://www.iana.org/assignments/service-names-port-numbers/service-names-port-numbers.csv"
)

BUNDLED_PACKAGE = "portsniff"
# Skipped files per index built by open_registry (weak: dies with the index).
_SKIPPED: weakref.WeakKeyDictionary[RegistryIndex, tuple[SourceProblem, ...]] = (
    weakref.WeakKeyDictionary()
)
BUNDLED_NAME = "data/iana-registry-excerpt.txt"


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A registry file that was found but skipped, and why."""

    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def registry_cache_dir() -> Path:
    """The directory holding the downloaded or imported registry (may not exist yet)."""
    from portsniff.registry.paths import registry_dir

    return registry_dir()


def cached_registry_file() -> Path | None:
    """The cache copy of the registry, or None when there is none."""
    base = registry_cache_dir()
    for suffix in dict.fromkeys(CACHE_SUFFIXES.values()):
        candidate = base / f"{CACHE_STEM}{suffix}"
        if os.path.isfile(candidate):  # False, not an error, when unreadable
            return candidate
    return None


def system_service_files() -> tuple[Path, ...]:
    """The system's registry copies that exist, in order of preference."""
    env = os.environ.get(SYSTEM_ENV)
    names = SYSTEM_SERVICES if env is None else tuple(p for p in env.split(os.pathsep) if p)
    seen: set[Path] = set()
    found: list[Path] = []
    for name in names:
        path = Path(name)
        if not os.path.isfile(path):  # an unreadable folder is not an error here
            continue
        real = path.resolve()
        if real in seen:  # e.g. a distribution symlinks one copy to another
            continue
        seen.add(real)
        found.append(path)
    return tuple(found)


@contextlib.contextmanager
def bundled_excerpt() -> Iterator[Path]:
    """The excerpt shipped with the package, as a file path while the context lasts."""
    ref = resources.files(BUNDLED_PACKAGE).joinpath(BUNDLED_NAME)
    with resources.as_file(ref) as path:
        yield path


def _bundled_path() -> str | None:
    ref = resources.files(BUNDLED_PACKAGE).joinpath(BUNDLED_NAME)
    return str(ref) if isinstance(ref, Path) else None


def load_explicit(name: str) -> ParsedRegistry:
    """Parse the registry file ``name`` given by the user; RegistryError names it."""
    from portsniff.registry.cache import load_parsed

    path = Path(name)
    if not path.exists():
        raise RegistryError(f"{name}: no such registry file")
    if path.is_dir():
        raise RegistryError(f"{name}: is a directory, not a registry file")
    try:
        return load_parsed(path)
    except OSError as exc:
        raise RegistryError(f"{name}: cannot read: {exc.strerror or exc}") from exc


def _load_optional(path: Path, problems: list[SourceProblem]) -> Compiled | None:
    from portsniff.registry.cache import load_compiled

    try:
        return load_compiled(path)
    except RegistryError as exc:
        # The error names the file already; the problem keeps the path apart.
        problems.append(SourceProblem(str(path), str(exc).removeprefix(f"{path}: ")))
    except OSError as exc:
        problems.append(SourceProblem(str(path), f"cannot read: {exc.strerror or exc}"))
    return None


def _explicit_columns(name: str) -> Compiled:
    from portsniff.registry.cache import _as_columns

    return _as_columns(load_explicit(name))


def load_source_columns(
    files: Sequence[str] | None, problems: list[SourceProblem] | None = None
) -> list[Compiled]:
    """The sources as (source, caveat, the 12 columns), first preferred (see the module
    docstring). Skipped files are appended to ``problems`` when a list is given."""
    if files:
        return [_explicit_columns(name) for name in files]
    found: list[SourceProblem] = []
    loaded: list[Compiled] = []
    layered: list[Path] = []
    cached = cached_registry_file()
    if cached is not None:
        layered.append(cached)
    layered.extend(system_service_files())
    for path in layered:
        result = _load_optional(path, found)
        if result is not None and result[0].records:
            loaded.append(result)
        elif result is not None:
            found.append(SourceProblem(str(path), "holds no registry records"))
    with bundled_excerpt() as path:
        bundled = _load_optional(path, found)
    if bundled is not None:
        loaded.append(bundled)
    if problems is not None:
        problems.extend(found)
    if not loaded:
        detail = "; ".join(str(p) for p in found) or "none of them exists"
        raise RegistryError(
            f"no usable registry: tried the cache, the system's copies and the bundled "
            f"excerpt ({detail}); give one with --registry FILE"
        )
    return loaded


def load_sources(
    files: Sequence[str] | None, problems: list[SourceProblem] | None = None
) -> list[ParsedRegistry]:
    """The parsed sources, first preferred (see the module docstring).

    Skipped files are appended to ``problems`` when a list is given.
    """
    from portsniff.registry.record import ServiceRecord

    return [
        ParsedRegistry(
            records=tuple(ServiceRecord(*row) for row in zip(*cols, strict=True)),
            source=source,
            caveat=caveat,
        )
        for source, caveat, cols in load_source_columns(files, problems)
    ]


def open_registry(
    files: Sequence[str] | None, *, problems: list[SourceProblem] | None = None
) -> RegistryIndex:
    """The registry index every command uses.

    ``files`` (``--registry``/``$PORTSNIFF_REGISTRY``) means exactly those files; a broken
    one raises RegistryError. Without it, the cache, the system's copies and the bundled
    excerpt are layered; broken ones are skipped and appended to ``problems`` (pass a list
    to report them).
    """
    from portsniff.registry.index import RegistryIndex

    found: list[SourceProblem] = []
    index = RegistryIndex.from_columns(load_source_columns(files, found))
    _SKIPPED[index] = tuple(found)
    if problems is not None:
        problems.extend(found)
    return index


def skipped_sources(index: RegistryIndex) -> tuple[SourceProblem, ...]:
    """The files ``open_registry`` skipped while building ``index`` (broken copies)."""
    return _SKIPPED.get(index, ())


def source_origin(path: str) -> str:
    """``"cache"``, ``"system"``, ``"bundled"`` or ``"file"``: where a source path came from."""
    try:
        p = Path(path).resolve()
    except (OSError, RuntimeError):
        return "file"
    with contextlib.suppress(OSError):
        if p.is_relative_to(registry_cache_dir().resolve()):
            return "cache"
    bundled = _bundled_path()
    if bundled is not None and Path(bundled).resolve() == p:
        return "bundled"
    env = os.environ.get(SYSTEM_ENV)
    names = SYSTEM_SERVICES if env is None else tuple(x for x in env.split(os.pathsep) if x)
    if any(Path(name).resolve() == p for name in names):
        return "system"
    return "file"


def describe_sources(index: RegistryIndex) -> list[dict[str, object]]:
    """Each source of ``index``, first preferred: kind, path, updated, sha256, records and
    origin (cache, system, bundled or file)."""
    return [{**s.as_dict(), "origin": source_origin(s.path)} for s in index.sources]


def registry_provenance(index: RegistryIndex) -> dict[str, object]:
    """What every report says about its registry: ``{"sources": describe_sources(index),
    "skipped": [{"path", "reason"}, ...]}`` (files ``open_registry`` could not use)."""
    return {
        "sources": describe_sources(index),
        "skipped": [p.as_dict() for p in skipped_sources(index)],
    }
