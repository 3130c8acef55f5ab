"""The shared view of the human summary formats: formatting and table contents."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from portsniff.report import summary_view as sv
from portsniff.report.summaries import DEFAULT_TOP, ReportOptions
from tests.report.summary_samples import T0, empty_summary, sample_summary


def test_human_bytes() -> None:
    assert sv.human_bytes(0) == "0 B"
    assert sv.human_bytes(1023) == "1023 B"
    assert sv.human_bytes(1536) == "1.5 KiB"
    assert sv.human_bytes(5 * 1024**3) == "5.0 GiB"
    assert sv.human_bytes(2 * 1024**6).endswith("PiB")


def test_percent_duration_utc() -> None:
    assert sv.percent(1, 4) == "25.0%"
    assert sv.percent(1, 100_000) == "<0.1%"
    assert sv.percent(0, 0) == "-"
    assert sv.duration(0.25) == "0.250 s"
    assert sv.duration(125) == "2 min 5 s"
    assert sv.duration(7300) == "2 h 1 min"
    assert sv.duration(None) == "-"
    assert sv.utc(T0 + 0.9996) == "2024-05-01 12:00:01.000"
    assert sv.utc(T0, date=False) == "12:00:00.000"
    assert sv.utc(None) == "-"
    assert sv.utc(1e300) == f"{1e300:.3f}"  # beyond gmtime: the raw number
    assert sv.utc(float("inf")) == "-"


def test_clock_drops_the_date_within_one_day() -> None:
    assert sv.Clock(T0, T0 + 60)(T0 + 1) == "12:00:01.000"
    assert sv.Clock(T0, T0 + 86400)(T0 + 1) == "05-01 12:00:01.000"
    assert sv.Clock(T0, T0 + 86400).note == "Times are UTC, month-day, 2024-05-01 to 2024-05-02."
    assert sv.Clock(T0, T0 + 400 * 86400)(T0 + 1) == "2024-05-01 12:00:01.000"
    assert sv.Clock(None, None)(T0) == "2024-05-01 12:00:00.000"


def test_endpoint_and_linktype() -> None:
    assert sv.endpoint("10.0.0.1", 443) == "10.0.0.1:443"
    assert sv.endpoint("2001:db8::1", 53) == "[2001:db8::1]:53"
    assert sv.endpoint("10.0.0.1", None) == "10.0.0.1"
    assert sv.endpoint(None, None) == "-"
    assert sv.linktype_name(1) == "ETHERNET (1)"
    assert sv.linktype_name("276") == "LINUX_SLL2 (276)"
    assert sv.linktype_name(9999) == "link type 9999"


def test_clean_makes_control_characters_visible() -> None:
    assert sv.clean("a\tb\r\nc") == "a b c"
    assert sv.clean("\x1b[31mred\x07") == "\\x1b[31mred\\x07"
    assert sv.clean("\x9b") == "\\x9b"
    assert sv.clean(None) == ""


@settings(max_examples=60, deadline=None)
@given(st.text())
def test_clean_is_one_printable_line(s: str) -> None:
    out = sv.clean(s)
    assert "\n" not in out and "\r" not in out
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)


def test_view_of_sample() -> None:
    s = sample_summary()
    v = sv.build(s, ReportOptions())
    assert v.top == DEFAULT_TOP
    assert [r[0].text for r in v.services.rows] == ["S1", "S2", "S3", "S4", "S5"]
    assert v.services.rows[0][1].text == "https"
    assert v.services.rows[0][8].text == sv.percent(s.service_rows()[0].bytes, s.bytes)
    assert [r[1].text for r in v.unknown.rows] == ["udp/50000", "tcp/1023"]
    assert len(v.flows.rows) == len(s.flows)
    # every service, unknown-port and conversation row has its filters in the drill-down
    refs = [d.ref for d in v.drill]
    assert refs == [
        *(f"S{i}" for i in range(1, 6)),
        "U1",
        "U2",
        *(f"C{i}" for i in range(1, len(s.flows) + 1)),
    ]
    assert v.drill[0].bpf == "tcp port 443" and v.drill[0].display_filter == "tcp.port == 443"
    flow0 = s.top_flows(1)[0]
    assert v.drill[7].bpf == flow0.bpf and v.drill[7].display_filter == flow0.display_filter
    statuses = [r[-1].text for r in v.files.rows]
    assert statuses[:3] == ["ok", "damaged", "unreadable"]
    from portsniff.report.summary_view import file_problems

    problems = dict(file_problems(s))
    assert problems["captures/cut.pcap"].startswith("truncated record at byte")
    assert next(v for k, v in problems.items() if k != "captures/cut.pcap").startswith(
        "unreadable: "
    )
    assert [r[0].text for r in v.transports.rows] == ["tcp", "udp", "icmp", "other IP", "non-IP"]
    dnssd = {r[0].text: r for r in v.dnssd.rows}
    assert dnssd["_xyzzy._udp"][1].text == "(not registered)"
    assert dnssd["_airplay._tcp"][4].text == "Bedroom\nLiving Room"


def test_top_limits_rows_and_says_so() -> None:
    s = sample_summary()
    v = sv.build(s, ReportOptions(top=2))
    assert len(v.services.rows) == 2 and len(v.flows.rows) == 2
    assert v.services.note == "top 2 of 5 services by bytes (--top N shows more)"
    assert v.unknown.note is None
    assert len(v.drill) == 2 + 2 + 2


def test_filters_columns_when_asked() -> None:
    v = sv.build(sample_summary(), ReportOptions(), filters=True)
    assert [c.name for c in v.services.columns][-2:] == ["BPF", "Display filter"]
    assert v.services.rows[0][-2].code and v.services.rows[0][-2].text == "tcp port 443"


def test_port_class_bytes_counts_every_row() -> None:
    s = sample_summary()
    classes = sv.port_class_bytes(s)
    assert sum(classes.values()) == sum(r.bytes for r in s.services.values())
    assert classes["dynamic"] == 1200


def test_empty_view() -> None:
    v = sv.build(empty_summary(), ReportOptions())
    assert not v.services.rows and not v.flows.rows and not v.transports.rows
    assert not v.drill
    assert dict(v.overview)["Duration"] == "-"
