"""Tests of portsniff.registry.sources: which files a command uses, in which order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portsniff.errors import RegistryError
from portsniff.registry import sources
from portsniff.registry.record import IANA_HEADER
from portsniff.registry.sources import (
    SourceProblem,
    cached_registry_file,
    describe_sources,
    load_sources,
    open_registry,
    registry_provenance,
    skipped_sources,
    source_origin,
    system_service_files,
)
from portsniff.registry.update import import_registry

HEADER = ",".join(IANA_HEADER) + "\r\n"
CACHE_CSV = (HEADER + "cached-svc,47808,udp,From the cache,,,,,,,,\r\n").encode()
SERVICES = b"# a test services file\nsys-svc\t47808/udp\t# From the system\nhttp 80/tcp www\n"


@pytest.fixture
def no_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sources.SYSTEM_ENV, "")


def _origins(index: object) -> list[str]:
    return [str(s["origin"]) for s in describe_sources(index)]  # type: ignore[arg-type]


def test_default_with_empty_cache_and_no_system_uses_the_bundled_excerpt(no_system: None) -> None:
    problems: list[SourceProblem] = []
    index = open_registry(None, problems=problems)
    assert problems == []
    assert [s.kind for s in index.sources] == ["iana-text"]
    assert _origins(index) == ["bundled"]
    label = index.lookup("udp", 47808)
    assert label.service == "bacnet"
    assert cached_registry_file() is None


def test_system_copies_come_before_the_excerpt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "services"
    system.write_bytes(SERVICES)
    monkeypatch.setenv(sources.SYSTEM_ENV, os.pathsep.join([str(tmp_path / "absent"), str(system)]))
    assert system_service_files() == (system,)
    index = open_registry(None)
    assert _origins(index) == ["system", "bundled"]
    assert index.sources[0].path == str(system)
    # The excerpt still answers for ports the system copy does not know.
    assert index.lookup("udp", 44818).service == "EtherNet-IP-2"


def test_cache_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "services"
    system.write_bytes(SERVICES)
    monkeypatch.setenv(sources.SYSTEM_ENV, str(system))
    imported = tmp_path / "cache-me.csv"
    imported.write_bytes(CACHE_CSV)
    import_registry(imported)
    index = open_registry(None)
    assert _origins(index) == ["cache", "system", "bundled"]
    assert index.lookup("udp", 47808).service == "cached-svc"


def test_a_broken_system_copy_is_skipped_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken-services"
    broken.write_bytes(b"<!DOCTYPE html><html><body>not services</body></html>")
    unreadable = tmp_path / "binary"
    unreadable.write_bytes(bytes(range(256)) * 4)
    monkeypatch.setenv(sources.SYSTEM_ENV, os.pathsep.join([str(broken), str(unreadable)]))
    problems: list[SourceProblem] = []
    index = open_registry(None, problems=problems)
    assert _origins(index) == ["bundled"]
    assert [p.path for p in problems] == [str(broken), str(unreadable)]
    assert all(p.reason and "\n" not in p.reason for p in problems)
    assert skipped_sources(index) == tuple(problems)
    provenance = registry_provenance(index)
    assert provenance["skipped"] == [p.as_dict() for p in problems]
    assert provenance["sources"] == describe_sources(index)
    # Every index remembers its own skipped files.
    assert skipped_sources(open_registry(None)) == tuple(problems)
    good = tmp_path / "good-services"
    good.write_bytes(SERVICES)
    assert skipped_sources(open_registry([str(good)])) == ()


def test_a_broken_cache_copy_is_skipped(no_system: None) -> None:
    base = sources.registry_cache_dir()
    base.mkdir(parents=True)
    (base / f"{sources.CACHE_STEM}.csv").write_bytes(
        HEADER.encode() + b"x,99999,tcp,bad,,,,,,,,\r\n"
    )
    problems: list[SourceProblem] = []
    index = open_registry(None, problems=problems)
    assert _origins(index) == ["bundled"]
    assert len(problems) == 1 and "99999" in problems[0].reason
    assert not problems[0].reason.startswith(problems[0].path)


def test_explicit_files_mean_exactly_those(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "services"
    system.write_bytes(SERVICES)
    monkeypatch.setenv(sources.SYSTEM_ENV, str(system))
    mine = tmp_path / "mine.csv"
    mine.write_bytes(CACHE_CSV)
    index = open_registry([str(mine)])
    assert [s.path for s in index.sources] == [str(mine)]
    assert _origins(index) == ["file"]
    assert index.lookup("tcp", 80).status == "unassigned"  # not from the system copy


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such registry file"),
        (b"", "empty"),
        (b"<html><body>404</body></html>", "HTML"),
        (HEADER.encode() + b'a,1,tcp,"One', "truncated"),
        (b"name,port\r\nx,1\r\n", "unknown registry format"),
    ],
    ids=["missing", "empty", "html", "truncated", "wrong-columns"],
)
def test_a_broken_explicit_file_is_an_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "reg.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RegistryError) as info:
        open_registry([str(path)])
    assert str(path) in str(info.value) and message in str(info.value)


def test_a_directory_is_not_a_registry(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="is a directory"):
        open_registry([str(tmp_path)])


def test_no_usable_source_at_all(no_system: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "BUNDLED_NAME", "data/does-not-exist.txt")
    with pytest.raises(RegistryError, match="no usable registry"):
        load_sources(None)


def test_symlinked_system_copies_count_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "services"
    real.write_bytes(SERVICES)
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.setenv(sources.SYSTEM_ENV, os.pathsep.join([str(link), str(real)]))
    assert system_service_files() == (link,)


def test_default_system_paths_include_wireshark_and_etc_services(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(sources.SYSTEM_ENV, raising=False)
    assert "/usr/share/wireshark/services" in sources.SYSTEM_SERVICES
    assert "/etc/services" in sources.SYSTEM_SERVICES
    found = system_service_files()
    assert all(p.is_file() for p in found)
    for path in found:
        assert source_origin(str(path)) == "system"
