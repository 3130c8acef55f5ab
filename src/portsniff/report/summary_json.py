"""The summary as one JSON document (schema: docs/summary.schema.json). Every flow is
listed unless ``--top`` is given.

The layout is ``json.dumps(..., indent=1)``'s, byte for byte, but produced mostly by the
C encoder (the standard library uses its pure-Python encoder whenever ``indent`` is set):
a container whose members are all scalars (a service row) is encoded in one C call with
the newline and indentation as its item separator, and so is a run of such dicts in a
list, their boundaries then indented apart. The flows, most of a capture's document, are
written field by field from their FlowRecords (the text of their dicts, without them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import compress
from typing import Any, TextIO

from portsniff.flows import FlowRecord
from portsniff.report.summaries import ReportOptions
from portsniff.summary import Summary

#: Types the C encoder writes exactly as the indenting encoder does, whatever the depth.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = frozenset({list, dict, tuple})  # plain when empty
_PLAIN_TYPES = _SCALARS | _CONTAINERS


def _plain(v: object) -> bool:
    """Whether ``v`` is a scalar or an empty list or dict: the C encoder writes it."""
    t = type(v)
    return t in _SCALARS or ((t is list or t is dict or t is tuple) and not v)


def _flat(obj: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> bool:
    """Whether every member of ``obj`` is plain (:func:`_plain`, with the loops in C:
    a capture's flows are checked one by one)."""
    members = tuple(obj.values() if isinstance(obj, dict) else obj)
    types = tuple(map(type, members))
    kinds = set(types)
    if kinds <= _SCALARS:
        return True
    if not kinds <= _PLAIN_TYPES:
        return False
    return not any(compress(members, map(_CONTAINERS.__contains__, types)))


def _key(k: object) -> str:
    """A dict key as JSON (the conversions ``json`` makes: str, int, float, bool, None)."""
    if isinstance(k, str):
        return _scalar(k)
    if k is None or isinstance(k, int | float):
        return _scalar(_scalar(k))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


_scalar = json.JSONEncoder(ensure_ascii=False).encode
_esc: Callable[[str], str] = json.encoder.encode_basestring
_FLAT: dict[int, Callable[[object], str]] = {}


def _flat_encoder(level: int) -> Callable[[object], str]:
    """The C encoder whose item separator breaks the line at ``level + 1``."""
    got = _FLAT.get(level)
    if got is None:
        sep = ",\n" + " " * (level + 1)
        got = _FLAT[level] = json.JSONEncoder(ensure_ascii=False, separators=(sep, ": ")).encode
    return got


def _encode(obj: object, level: int, out: list[str], stream: TextIO | None = None) -> None:
    """Append ``obj`` as JSON indented by one space per level, starting at ``level``
    (with a ``stream``, the text so far goes there every _SPILL pieces)."""
    if type(obj) is _Flows:
        _encode_flows(obj.records, level, out, stream)
        return
    if not isinstance(obj, dict | list | tuple) or not obj:
        out.append(_scalar(obj))
        return
    inner = "\n" + " " * (level + 1)
    close = "\n" + " " * level
    if _flat(obj):
        text = _flat_encoder(level)(obj)
        out.append(text[0] + inner + text[1:-1] + close + text[-1])
        return
    if isinstance(obj, dict):
        out.append("{")
        sep = inner
        run: dict[Any, Any] = {}  # scalar members in a row: encoded together, in C
        for k, v in obj.items():
            if _plain(v):
                run[k] = v
                continue
            if run:
                out.append(sep)
                out.append(_flat_encoder(level)(run)[1:-1])
                run = {}
                sep = "," + inner
            out.append(sep)
            out.append(_key(k))
            out.append(": ")
            _encode(v, level + 1, out, stream)
            sep = "," + inner
        if run:
            out.append(sep)
            out.append(_flat_encoder(level)(run)[1:-1])
        out.append(close + "}")
    else:
        out.append("[")
        sep = inner
        dicts: list[Any] = []  # flat dicts in a row: encoded together, in C
        for v in obj:
            if type(v) is dict and v and _flat(v):
                dicts.append(v)
                continue
            if dicts:
                out.append(sep)
                _encode_flat_dicts(dicts, level, out, stream)
                dicts = []
                sep = "," + inner
            out.append(sep)
            _encode(v, level + 1, out, stream)
            sep = "," + inner
            if stream is not None and len(out) >= _SPILL:
                stream.write("".join(out))
                out.clear()
        if dicts:
            out.append(sep)
            _encode_flat_dicts(dicts, level, out, stream)
        out.append(close + "]")


#: Dicts encoded by one C call (the text of one call is held at once).
_RUN = 2048


def _encode_flat_dicts(
    items: list[Any] | tuple[Any, ...], level: int, out: list[str], stream: TextIO | None
) -> None:
    """Append non-empty dicts of plain members, items of a list at ``level`` (without
    the brackets and the separators before the first and after the last): runs of them
    are encoded by one C call, whose item separator is then the members' and the dicts'
    own. The dicts' boundaries are ``},`` + that separator + ``{``, which appears nowhere
    else: a member starts with its key's quote, and strings never hold a raw newline."""
    member = ",\n" + " " * (level + 2)
    boundary = "}" + member + "{"
    open_item = "{\n" + " " * (level + 2)
    close_item = "\n" + " " * (level + 1) + "}"
    between = close_item + ",\n" + " " * (level + 1) + open_item
    encode = _flat_encoder(level + 1)
    for a in range(0, len(items), _RUN):
        text = encode(list(items[a : a + _RUN]))
        if a:
            out.append(",\n" + " " * (level + 1))
        # text is "[{...}" + boundary ... + "{...}]": drop the brackets, mark each dict.
        out.append(open_item + text[2:-2].replace(boundary, between) + close_item)
        if stream is not None and len(out) >= _SPILL:
            stream.write("".join(out))
            out.clear()


class _Flows:
    """The flows of a document, as FlowRecords: encoded by :func:`_encode_flows`."""

    __slots__ = ("records",)

    def __init__(self, records: list[FlowRecord]) -> None:
        self.records = records


def _encode_flows(
    flows: list[FlowRecord], level: int, out: list[str], stream: TextIO | None
) -> None:
    """Append the list of ``flows`` at ``level``: the text of their ``as_dict()`` list,
    written field by field (a capture's flows are most of its document; making a dict
    per flow and encoding it took twice as long)."""
    if not flows:
        out.append("[]")
        return
    item = " " * (level + 1)
    text = _flow_writer(level + 1)
    out.append("[\n" + item)
    between = ",\n" + item
    for k, f in enumerate(flows):
        if k:
            out.append(between)
        out.append(text(f))
        if stream is not None and len(out) >= _SPILL:
            stream.write("".join(out))
            out.clear()
    out.append("\n" + " " * level + "]")


def _flow_writer(level: int) -> Callable[[FlowRecord], str]:
    """The function writing one flow (a dict at ``level``) as ``_encode`` writes its
    ``as_dict()``. Field by field, in FLOW_FIELDS' order (the test of this writer
    compares it with the dicts' text): strings escaped by json's own C function, numbers
    as json writes them (timestamps are finite), None as null."""
    pad = ",\n" + " " * (level + 1)
    tag_pad = "\n" + " " * (level + 2)
    tags_end = "\n" + " " * (level + 1) + "]"
    end = "\n" + " " * level + "}"
    esc = _esc
    # json's own conversions (a float subclass is written as a float, as json does).
    real, whole = float.__repr__, int.__repr__

    def opt(v: str | None) -> str:
        return "null" if v is None else esc(v)

    def num(v: int | None) -> str:
        return "null" if v is None else whole(v)

    def write(f: FlowRecord) -> str:
        bpf, display = f._filters()
        vlan = (
            "[" + tag_pad + ("," + tag_pad).join(map(whole, f.vlan)) + tags_end if f.vlan else "[]"
        )
        return (
            f'{{\n{pad[2:]}"uid": {esc(f.uid)}{pad}"ts": {real(f.ts)}'
            f'{pad}"duration": {real(f.duration)}{pad}"proto": {esc(f.proto)}'
            f'{pad}"orig_ip": {opt(f.orig_ip)}{pad}"orig_port": {num(f.orig_port)}'
            f'{pad}"resp_ip": {opt(f.resp_ip)}{pad}"resp_port": {num(f.resp_port)}'
            f'{pad}"orig_pkts": {whole(f.orig_pkts)}{pad}"orig_bytes": {whole(f.orig_bytes)}'
            f'{pad}"resp_pkts": {whole(f.resp_pkts)}{pad}"resp_bytes": {whole(f.resp_bytes)}'
            f'{pad}"service": {opt(f.service)}{pad}"service_port": {num(f.service_port)}'
            f'{pad}"status": {opt(f.status)}{pad}"port_class": {opt(f.port_class)}'
            f'{pad}"basis": {opt(f.basis)}'
            f'{pad}"ambiguous": {"true" if f.ambiguous else "false"}'
            f'{pad}"conn_state": {opt(f.conn_state)}{pad}"tunnel": {opt(f.tunnel)}'
            f'{pad}"vlan": {vlan}{pad}"bpf": {esc(bpf)}'
            f'{pad}"display_filter": {esc(display)}{end}'
        )

    return write


def dumps(obj: object) -> str:
    """``json.dumps(obj, ensure_ascii=False, indent=1)``, the same text, faster."""
    out: list[str] = []
    _encode(obj, 0, out)
    return "".join(out)


#: Pieces of text held before they go to the stream (the document of a capture with
#: many flows is tens of MB: it is never all in memory at once).
_SPILL = 4096


def render(summary: Summary, stream: TextIO, options: ReportOptions) -> None:
    """Write the summary document (indented by one space) and a final newline."""
    out: list[str] = []
    doc = summary.to_dict(options.top, flow_dicts=False)
    doc["flows"] = _Flows(doc["flows"])
    _encode(doc, 0, out, stream)
    out.append("\n")
    stream.write("".join(out))
