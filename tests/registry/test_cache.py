"""The compiled cache: keyed by sha256, safe format, atomic, self-healing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portsniff.errors import RegistryError
from portsniff.registry import cache
from portsniff.registry.parse_csv import write_iana_csv
from portsniff.registry.paths import cache_dir, compiled_dir
from portsniff.registry.record import ServiceRecord

RECORDS = [
    ServiceRecord("http", "80", "tcp", "World Wide Web HTTP", "[T]", "[T]", "2001-01", "", "[RFC9110]", "", "", ""),
    ServiceRecord("", "788-799", "", "Unassigned", "", "", "", "", "", "", "Unauthorized Use Known on port 796", ""),
    ServiceRecord("x", "", "udp", "DNS-SD — ünïcode", "", "", "", "", "", "", "", "Defined TXT keys: None"),
]  # fmt: skip


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "reg.csv"
    path.write_bytes(write_iana_csv(RECORDS))
    return path


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSNIFF_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert compiled_dir() == tmp_path / "c" / "compiled"
    monkeypatch.delenv("PORTSNIFF_CACHE_DIR")
    assert "portsniff" in str(cache_dir())


def test_compiled_copy_is_written_and_used(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = cache.load_parsed(registry)
    compiled = list(compiled_dir().iterdir())
    assert [p.name.split(".")[0] for p in compiled] == [first.source.sha256]
    assert compiled[0].read_bytes().startswith(b'{"format"')  # JSON head, text columns

    def no_parse(data: bytes, path: str) -> object:
        raise AssertionError("parsed again despite a compiled copy")

    monkeypatch.setattr(cache, "parse_registry_bytes", no_parse)
    second = cache.load_parsed(registry)
    assert second == first
    index = cache.load_index([registry])
    assert index.lookup("tcp", 80).service == "http"
    assert index.lookup("udp", 796).unauthorized_use == "Unauthorized Use Known on port 796"
    assert index.by_name("_x._udp")[0].description == "DNS-SD — ünïcode"


def test_index_from_compiled_equals_index_from_parse(registry: Path) -> None:
    from portsniff.registry.index import RegistryIndex

    fresh = cache.load_index([registry])  # parses and compiles
    cached = cache.load_index([registry])  # from the compiled columns
    built = RegistryIndex.build([cache.load_parsed(registry)])
    for index in (fresh, cached):
        assert index.stats() == built.stats()
        assert index.sources == built.sources
        for port in (79, 80, 788, 796, 799, 800):
            assert index.lookup("tcp", port) == built.lookup("tcp", port)


def test_changed_file_gets_a_new_compiled_copy(registry: Path) -> None:
    cache.load_parsed(registry)
    registry.write_bytes(write_iana_csv(RECORDS[:1]))
    assert len(cache.load_parsed(registry).records) == 1
    assert len(list(compiled_dir().iterdir())) == 2


@pytest.mark.parametrize("damage", [b"", b"garbage", b'{"format": 1}\n', None])
def test_corrupt_compiled_copy_is_rebuilt(registry: Path, damage: bytes | None) -> None:
    good = cache.load_parsed(registry)
    target = cache.compiled_path(good.source.sha256)
    blob = target.read_bytes()
    target.write_bytes(blob[: len(blob) // 2] if damage is None else damage)
    assert cache.load_parsed(registry) == good
    assert target.read_bytes() == blob


def test_unwritable_cache_is_no_error(
    registry: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_bytes(b"")
    monkeypatch.setenv("PORTSNIFF_CACHE_DIR", str(blocker))
    assert len(cache.load_parsed(registry).records) == 3
    assert cache.load_index([registry]).lookup("tcp", 80).service == "http"


def test_no_temporary_files_left(registry: Path) -> None:
    cache.load_parsed(registry)
    assert [p.name for p in compiled_dir().iterdir() if p.name.startswith(".tmp-")] == []


def test_missing_file_is_a_registry_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no such registry file"):
        cache.load_parsed(tmp_path / "absent.xml")
    with pytest.raises(RegistryError, match="is a directory"):
        cache.load_index([tmp_path])


def test_official_xml_through_the_cache(official_xml: Path) -> None:
    first = cache.load_index([official_xml])
    again = cache.load_index([official_xml])
    assert again.lookup("udp", 44818).aliases == ("EtherNet/IP-2",)
    assert again.stats() == first.stats()
    assert os.path.exists(cache.compiled_path(first.sources[0].sha256))
