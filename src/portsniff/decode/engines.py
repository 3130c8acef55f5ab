"""Decoding engines by name: each turns a block of raw packets into a DecodedBatch.

``fast`` (default) is numpy over raw bytes; ``scapy`` and ``pyshark`` use those
libraries' dissectors. All three must produce the same batches.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from portsniff.capture.block import RawBlock
from portsniff.decode.batch import DecodedBatch
from portsniff.errors import UsageError


class Engine(Protocol):
    """Decodes the packets of one capture file, block after block, in order."""

    name: str

    def decode(self, block: RawBlock) -> DecodedBatch:
        """Decode every packet of ``block`` (rows in the block's order)."""
        ...

    def close(self) -> None:
        """Release what the engine holds (subprocesses, files)."""
        ...


#: name -> "module:factory"; factory(path: str) -> Engine, called once per capture file.
ENGINES: dict[str, str] = {
    "fast": "portsniff.decode.fast:FastEngine",
    "scapy": "portsniff.decode.scapy_engine:ScapyEngine",
    "pyshark": "portsniff.decode.pyshark_engine:PysharkEngine",
}


def open_engine(name: str, path: str) -> Engine:
    """An engine instance for the capture at ``path`` (imported lazily)."""
    try:
        target = ENGINES[name]
    except KeyError:
        raise UsageError(f"unknown engine {name!r} (choose from {', '.join(ENGINES)})") from None
    module_name, _, factory = target.partition(":")
    module = importlib.import_module(module_name)
    engine: Engine = getattr(module, factory)(path)
    return engine
