"""Unit tests of the sans-IO protocol module against PROTOCOL.md.

Every test pushes bytes or dicts through `trio_chat.protocol` with no event loop.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from trio_chat.core.errors import ChatError
from trio_chat.protocol import (
    DEFAULT_LIMIT,
    ERROR_CODES,
    HISTORY_LIMIT,
    MAX_FRAME,
    MAX_TEXT,
    NEED_DATA,
    NON_FINITE,
    SMALL_FRAME,
    Bye,
    Connection,
    Error,
    Frame,
    Hello,
    HistoryPage,
    HistoryRequest,
    Join,
    Joined,
    Left,
    LineDecoder,
    Members,
    Message,
    Name,
    Part,
    Ping,
    Pong,
    Presence,
    ProtocolError,
    Quit,
    Role,
    RoomInfo,
    RoomList,
    RoomsRequest,
    Say,
    Welcome,
    Who,
    check_request_id,
    check_text,
    dumps,
    encode,
    loads_object,
    name_key,
    nfc_length,
    parse_client_frame,
    parse_name,
    parse_server_frame,
)

REPO = Path(__file__).resolve().parent.parent
TS = "2026-11-24T22:00:00.123Z"
E_ACUTE = "\u00e9"  # é, composed
E_DECOMPOSED = "e\u0301"  # e + COMBINING ACUTE ACCENT
QA = "\u0958"  # DEVANAGARI LETTER QA: NFC turns it into two code points


# --------------------------------------------------------------------------- helpers


def wire(obj: Any, *, ascii_only: bool = False) -> bytes:
    """A frame's bytes without its LF (ascii_only lets lone surrogates through as escapes)."""
    return json.dumps(obj, ensure_ascii=ascii_only, separators=(",", ":")).encode("utf-8")


def parse(obj: dict[str, Any]) -> Frame:
    return parse_client_frame(wire(obj, ascii_only=True))


def fault(data: dict[str, Any] | bytes) -> ProtocolError:
    """The ProtocolError a client frame raises."""
    line = data if isinstance(data, bytes) else wire(data, ascii_only=True)
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(line)
    assert info.value.code in ERROR_CODES
    return info.value


def drain(conn: Connection[Any]) -> list[Frame | ProtocolError]:
    """Everything a connection yields until it needs data, errors included."""
    out: list[Frame | ProtocolError] = []
    for _ in range(100_000):
        try:
            event = conn.next_event()
        except ProtocolError as exc:
            out.append(exc)
            continue
        if event is NEED_DATA:
            return out
        out.append(event)
    raise AssertionError("next_event() never asked for more data")


def codes(events: list[Frame | ProtocolError]) -> list[str]:
    return [e.code if isinstance(e, ProtocolError) else e.type for e in events]


def n(spelling: str) -> Name:
    return parse_name(spelling, "name", "name_invalid")


# --------------------------------------------------------------------------- client frames


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"type": "hello", "name": "Souvik"}, Hello(name=n("Souvik"))),
        (
            {
                "type": "hello",
                "name": "Souvik",
                "password": "correct horse",
                "protocol": 1,
                "client": "trio-chat-client/0.1",
                "id": 1,
            },
            Hello(n("Souvik"), password="correct horse", client="trio-chat-client/0.1", id=1),
        ),
        ({"type": "join", "room": "lobby"}, Join(room=n("lobby"), since=None, limit=50)),
        (
            {"type": "join", "room": "lobby", "since": 0, "limit": 500, "id": "j"},
            Join(room=n("lobby"), since=0, limit=500, id="j"),
        ),
        ({"type": "join", "room": "lobby", "since": 41, "limit": 1}, Join(n("lobby"), 41, 1)),
        ({"type": "part", "room": "lobby"}, Part(room=n("lobby"))),
        ({"type": "part", "room": "lobby", "id": 7}, Part(room=n("lobby"), id=7)),
        ({"type": "say", "room": "lobby", "text": "hi"}, Say(text="hi", room=n("lobby"))),
        (
            {"type": "say", "to": "Ritam", "text": "psst", "nonce": "n-1", "id": "m1"},
            Say(text="psst", to=n("Ritam"), nonce="n-1", id="m1"),
        ),
        ({"type": "history", "room": "lobby"}, HistoryRequest(room=n("lobby"), limit=50)),
        (
            {"type": "history", "with": "Ritam", "before": 1, "limit": 500, "id": 3},
            HistoryRequest(with_=n("Ritam"), before=1, limit=500, id=3),
        ),
        (
            {"type": "history", "room": "lobby", "before": 42},
            HistoryRequest(room=n("lobby"), before=42),
        ),
        (
            {"type": "history", "room": "lobby", "after": 0, "before": 42},
            HistoryRequest(room=n("lobby"), before=42, after=0),
        ),
        ({"type": "who", "room": "lobby"}, Who(room=n("lobby"))),
        ({"type": "who", "room": "lobby", "id": "w"}, Who(room=n("lobby"), id="w")),
        ({"type": "rooms"}, RoomsRequest()),
        ({"type": "rooms", "id": 0}, RoomsRequest(id=0)),
        ({"type": "rooms", "after": "Lobby", "limit": 2}, RoomsRequest(n("Lobby"), 2)),
        ({"type": "ping"}, Ping()),
        ({"type": "ping", "id": -5}, Ping(id=-5)),
        ({"type": "pong"}, Pong()),
        ({"type": "pong", "id": "p"}, Pong(id="p")),
        ({"type": "quit"}, Quit()),
        ({"type": "quit", "reason": "bye now", "id": 9}, Quit(reason="bye now", id=9)),
        ({"type": "quit", "reason": ""}, Quit(reason="")),
    ],
)
def test_client_frame_parses(obj: dict[str, Any], expected: Frame) -> None:
    assert parse(obj) == expected


def test_client_frame_defaults() -> None:
    join = parse({"type": "join", "room": "lobby"})
    assert isinstance(join, Join)
    assert (join.since, join.limit, join.id) == (None, DEFAULT_LIMIT, None)
    hist = parse({"type": "history", "room": "lobby"})
    assert isinstance(hist, HistoryRequest)
    assert (hist.before, hist.limit, hist.with_, hist.id) == (None, DEFAULT_LIMIT, None, None)
    hello = parse({"type": "hello", "name": "x"})
    assert isinstance(hello, Hello)
    assert (hello.password, hello.client, hello.id) == (None, None, None)
    say = parse({"type": "say", "room": "r", "text": "t"})
    assert isinstance(say, Say)
    assert (say.to, say.nonce, say.id) == (None, None, None)
    assert DEFAULT_LIMIT == 50 and HISTORY_LIMIT == 500


def test_frame_types_match_wire_names() -> None:
    pairs: dict[Any, str] = {
        Hello: "hello",
        Join: "join",
        Part: "part",
        Say: "say",
        HistoryRequest: "history",
        Who: "who",
        RoomsRequest: "rooms",
        Ping: "ping",
        Pong: "pong",
        Quit: "quit",
    }
    for cls, kind in pairs.items():
        assert cls.type == kind


def test_unknown_extra_fields_are_ignored() -> None:
    frame = parse({"type": "say", "room": "r", "text": "t", "color": "red", "x": [1, {"y": None}]})
    assert frame == Say(text="t", room=n("r"))
    assert parse({"type": "ping", "future_field": {"a": None, "b": [True, 1.5]}}) == Ping()


def test_nan_in_an_unknown_field_is_ignored() -> None:
    assert parse_client_frame(b'{"type":"ping","extra":NaN}') == Ping()


def test_password_bounds() -> None:
    for good in ("x" * 8, "x" * 1024):
        assert parse({"type": "hello", "name": "a", "password": good}) == Hello(n("a"), good)
    for bad in ["x" * 7, "x" * 1025, "", 12345678, None, ["x" * 8]]:
        assert fault({"type": "hello", "name": "a", "password": bad}).code == "invalid_field"
    # counted after NFC: 8 decomposed é are 16 code points but 8 characters
    assert parse({"type": "hello", "name": "a", "password": E_DECOMPOSED * 8}) is not None
    assert fault({"type": "hello", "name": "a", "password": E_DECOMPOSED * 7}).code == (
        "invalid_field"
    )


@pytest.mark.parametrize("protocol", [0, 2, "1", 1.0, True, None, [1]])
def test_hello_protocol_other_than_1_is_invalid(protocol: Any) -> None:
    exc = fault({"type": "hello", "name": "a", "protocol": protocol, "id": "h"})
    assert (exc.code, exc.re) == ("invalid_field", "h")


@pytest.mark.parametrize("client", [1, True, ["x"], {"a": 1}, "\ud800"])
def test_hello_client_must_be_text(client: Any) -> None:
    assert fault({"type": "hello", "name": "a", "client": client}).code == "invalid_field"


def test_nonce_bounds() -> None:
    base = {"type": "say", "room": "r", "text": "t"}
    assert parse({**base, "nonce": "n" * 64}) == Say(text="t", room=n("r"), nonce="n" * 64)
    for bad in ["", "n" * 65, 5, None, "\udc00"]:
        assert fault({**base, "nonce": bad}).code == "invalid_field"


def test_quit_reason_must_be_text() -> None:
    assert parse({"type": "quit", "reason": "r" * 400}) == Quit(reason="r" * 400)
    for bad in [1, None, "r" * 401, "\ud800"]:
        assert fault({"type": "quit", "reason": bad}).code == "invalid_field"


# --------------------------------------------------------------------------- bad_frame


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b'{"type":"ping","x":"\xc3"}', id="truncated-utf8"),
        pytest.param(b'{"type":"ping","x":"\xed\xa0\x80"}', id="utf8-encoded-surrogate"),
        pytest.param(b'{"type":"ping","x":"\xc0\xaf"}', id="overlong-utf8"),
        pytest.param(b"{type: ping}", id="not-json"),
        pytest.param(b'{"type":"ping"', id="truncated-json"),
        pytest.param(b'{"type":"ping"} {"type":"ping"}', id="two-objects"),
        pytest.param(b"{'type':'ping'}", id="single-quotes"),
        pytest.param(b'{"type":"say","room":"r","text":"a\tb"}', id="raw-control-in-string"),
        pytest.param(b"\xef\xbb\xbf{}", id="bom"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'["type","ping"]', id="array-of-strings"),
        pytest.param(b'"ping"', id="string"),
        pytest.param(b"1", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b"true", id="true"),
        pytest.param(b"NaN", id="nan"),
        pytest.param(b"{}", id="no-type"),
        pytest.param(b'{"type":1}', id="type-int"),
        pytest.param(b'{"type":null}', id="type-null"),
        pytest.param(b'{"type":true}', id="type-bool"),
        pytest.param(b'{"type":["ping"]}', id="type-list"),
        pytest.param(b'{"type":{"ping":1}}', id="type-object"),
        pytest.param(b'{"type":NaN}', id="type-nan"),
        pytest.param(b'{"type":"ping","type":"ping"}', id="duplicate-type"),
        pytest.param(b'{"type":"ping","a":1,"a":1}', id="duplicate-key"),
        pytest.param(b'{"type":"ping","x":{"a":1,"a":2}}', id="nested-duplicate-key"),
    ],
)
def test_bad_frame(line: bytes) -> None:
    exc = fault(line)
    assert exc.code == "bad_frame"
    assert exc.re is None


def test_bad_frame_keeps_a_valid_id_when_type_is_missing() -> None:
    exc = fault({"id": "x"})
    assert (exc.code, exc.re) == ("bad_frame", "x")
    exc = fault({"type": 3, "id": 4})
    assert (exc.code, exc.re) == ("bad_frame", 4)


@pytest.mark.parametrize("depth", [2_000, 8_000, 100_000])
def test_deep_nesting_is_bad_frame_not_recursion_error(depth: int) -> None:
    for inner in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        line = ('{"type":"ping","x":' + inner + "}").encode()
        exc = fault(line)
        assert exc.code == "bad_frame"
    assert fault(b"[" * depth).code == "bad_frame"


def test_deep_nesting_through_a_connection() -> None:
    depth = 8_000
    line = ('{"type":"ping","x":' + "[" * depth + "]" * depth + "}\n").encode()
    assert len(line) <= MAX_FRAME
    conn = Connection(Role.SERVER)
    conn.receive_data(line + b'{"type":"ping"}\n')
    assert codes(drain(conn)) == ["bad_frame", "ping"]


def test_loads_object_maps_nan_and_infinity_to_the_sentinel() -> None:
    obj = loads_object(b'{"a":NaN,"b":Infinity,"c":-Infinity,"d":[NaN]}')
    assert obj == {"a": NON_FINITE, "b": NON_FINITE, "c": NON_FINITE, "d": [NON_FINITE]}
    big = loads_object(b'{"a":1e400,"b":-1e400}')
    assert big["a"] == math.inf and big["b"] == -math.inf


# --------------------------------------------------------------------------- unknown_type


@pytest.mark.parametrize("kind", ["", "PING", "Ping", "welcome", "message", "joined", "x" * 500])
def test_unknown_type(kind: str) -> None:
    exc = fault({"type": kind, "id": 12})
    assert (exc.code, exc.re) == ("unknown_type", 12)
    assert len(exc.message) < 200  # a long type is not echoed whole
    encode(exc.frame())


def test_unknown_type_with_a_lone_surrogate_can_still_be_answered() -> None:
    exc = fault(b'{"type":"\\ud800"}')
    assert exc.code == "unknown_type"
    assert parse_server_frame(encode(exc.frame())[:-1]) == exc.frame()


# --------------------------------------------------------------------------- invalid_field

ROOM_SAY = {"type": "say", "room": "lobby", "text": "hello"}

INVALID_FIELD_CASES: list[tuple[str, dict[str, Any]]] = [
    ("hello-no-name", {"type": "hello"}),
    ("hello-name-int", {"type": "hello", "name": 5}),
    ("hello-name-null", {"type": "hello", "name": None}),
    ("hello-name-list", {"type": "hello", "name": ["a"]}),
    ("join-no-room", {"type": "join"}),
    ("join-room-int", {"type": "join", "room": 1}),
    ("part-no-room", {"type": "part"}),
    ("who-no-room", {"type": "who"}),
    ("who-room-bool", {"type": "who", "room": True}),
    ("say-no-target", {"type": "say", "text": "hi"}),
    ("say-room-and-to", {"type": "say", "room": "r", "to": "u", "text": "hi"}),
    ("say-to-null-and-room", {"type": "say", "room": "r", "to": None, "text": "hi"}),
    ("say-no-text", {"type": "say", "room": "r"}),
    ("say-text-int", {"type": "say", "room": "r", "text": 1}),
    ("say-text-null", {"type": "say", "room": "r", "text": None}),
    ("say-text-list", {"type": "say", "room": "r", "text": ["hi"]}),
    ("say-to-int", {"type": "say", "to": 3, "text": "hi"}),
    ("history-no-target", {"type": "history"}),
    ("history-room-and-with", {"type": "history", "room": "r", "with": "u"}),
    ("history-with-int", {"type": "history", "with": 1}),
    ("join-limit-0", {"type": "join", "room": "r", "limit": 0}),
    ("join-limit-501", {"type": "join", "room": "r", "limit": 501}),
    ("join-limit-neg", {"type": "join", "room": "r", "limit": -1}),
    ("join-limit-str", {"type": "join", "room": "r", "limit": "50"}),
    ("join-limit-null", {"type": "join", "room": "r", "limit": None}),
    ("join-since-neg", {"type": "join", "room": "r", "since": -1}),
    ("join-since-str", {"type": "join", "room": "r", "since": "1"}),
    ("history-before-0", {"type": "history", "room": "r", "before": 0}),
    ("history-before-neg", {"type": "history", "room": "r", "before": -3}),
    ("history-limit-0", {"type": "history", "room": "r", "limit": 0}),
    ("history-limit-501", {"type": "history", "room": "r", "limit": 501}),
]


@pytest.mark.parametrize(
    "obj", [c[1] for c in INVALID_FIELD_CASES], ids=[c[0] for c in INVALID_FIELD_CASES]
)
def test_invalid_field(obj: dict[str, Any]) -> None:
    exc = fault(obj)
    assert exc.code == "invalid_field"
    assert exc.re is None
    assert exc.message
    exc = fault({**obj, "id": "req-1"})
    assert (exc.code, exc.re) == ("invalid_field", "req-1")


def test_invalid_field_message_names_the_field() -> None:
    assert "limit" in fault({"type": "join", "room": "r", "limit": 0}).message
    assert "since" in fault({"type": "join", "room": "r", "since": -1}).message
    assert "before" in fault({"type": "history", "room": "r", "before": 0}).message
    assert "text" in fault({"type": "say", "room": "r", "text": 1}).message
    assert "password" in fault({"type": "hello", "name": "a", "password": "x"}).message
    assert "nonce" in fault({**ROOM_SAY, "nonce": ""}).message


# integer fields, each with a valid base frame
INT_FIELDS: list[tuple[dict[str, Any], str, int]] = [
    ({"type": "join", "room": "r"}, "since", 0),
    ({"type": "join", "room": "r"}, "limit", 1),
    ({"type": "history", "room": "r"}, "before", 1),
    ({"type": "history", "room": "r"}, "after", 0),
    ({"type": "history", "with": "u"}, "limit", 1),
]
NOT_INTEGERS: list[tuple[str, bytes]] = [
    ("true", b"true"),
    ("false", b"false"),
    ("float", b"5.0"),
    ("float-frac", b"5.5"),
    ("exp", b"5e0"),
    ("nan", b"NaN"),
    ("inf", b"Infinity"),
    ("neg-inf", b"-Infinity"),
    ("1e400", b"1e400"),
    ("-1e400", b"-1e400"),
    ("2^53+1", str(2**53 + 1).encode()),
    ("2^64", str(2**64).encode()),
    ("10^300", b"1" + b"0" * 300),
    ("-2^53-1", str(-(2**53) - 1).encode()),
    ("null", b"null"),
    ("string", b'"5"'),
    ("list", b"[5]"),
    ("object", b'{"v":5}'),
]


def _with_raw_field(base: dict[str, Any], key: str, raw: bytes, rid: Any = "r1") -> bytes:
    """A frame whose `key` holds raw JSON text (NaN, 1e400 and friends)."""
    head = wire({**base, "id": rid})[:-1]
    return head + b',"' + key.encode() + b'":' + raw + b"}"


@pytest.mark.parametrize(
    ("base", "key", "low"), INT_FIELDS, ids=[f"{b['type']}-{k}" for b, k, _ in INT_FIELDS]
)
@pytest.mark.parametrize("raw", [r for _, r in NOT_INTEGERS], ids=[i for i, _ in NOT_INTEGERS])
def test_integer_fields_refuse_non_integers(
    base: dict[str, Any], key: str, low: int, raw: bytes
) -> None:
    exc = fault(_with_raw_field(base, key, raw))
    assert (exc.code, exc.re) == ("invalid_field", "r1")


@pytest.mark.parametrize(
    ("base", "key", "low"), INT_FIELDS, ids=[f"{b['type']}-{k}" for b, k, _ in INT_FIELDS]
)
def test_integer_field_bounds(base: dict[str, Any], key: str, low: int) -> None:
    high = HISTORY_LIMIT if key == "limit" else 2**53
    assert getattr(parse({**base, key: low}), key) == low
    assert getattr(parse({**base, key: high}), key) == high
    assert fault({**base, key: low - 1}).code == "invalid_field"
    assert fault({**base, key: high + 1}).code == "invalid_field"


def test_integer_of_very_many_digits_is_invalid_field() -> None:
    # PROTOCOL.md §3: integers beyond ±2^53 are invalid_field, and the error carries `re`.
    # Python's int() refuses more than 4300 digits with a ValueError; that must not turn
    # the frame into bad_frame (it fits in a frame: 5000 digits < 65536 bytes).
    line = _with_raw_field({"type": "join", "room": "r"}, "since", b"9" * 5000)
    assert len(line) < MAX_FRAME
    exc = fault(line)
    assert (exc.code, exc.re) == ("invalid_field", "r1")


# --------------------------------------------------------------------------- id and re


@pytest.mark.parametrize(
    "rid", [0, 1, -1, 2**53, -(2**53), "a", "x" * 64, E_DECOMPOSED * 64, "m1", " ", "😀"]
)
def test_valid_id_is_copied_as_re(rid: Any) -> None:
    assert parse({"type": "ping", "id": rid}) == Ping(id=rid)
    assert check_request_id(rid) == rid
    for bad in [
        {"type": "nope", "id": rid},
        {"type": "join", "room": "a b", "id": rid},
        {"type": "hello", "name": "a b", "id": rid},
        {"type": "join", "room": "r", "limit": 0, "id": rid},
        {"type": "say", "room": "r", "text": " ", "id": rid},
    ]:
        assert fault(bad).re == rid


@pytest.mark.parametrize(
    "raw",
    [
        b"true",
        b"false",
        b"null",
        b"1.0",
        b"1.5",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"1e400",
        str(2**53 + 1).encode(),
        str(-(2**53) - 1).encode(),
        b'""',
        b'"' + b"x" * 65 + b'"',
        b'"\\ud800"',
        b'"a\\udfffb"',
        b"[1]",
        b'{"a":1}',
    ],
)
def test_invalid_id_gets_invalid_field_without_re(raw: bytes) -> None:
    for base in ({"type": "ping"}, {"type": "join", "room": "r"}, {"type": "nope"}):
        line = wire(base)[:-1] + b',"id":' + raw + b"}"
        exc = fault(line)
        assert (exc.code, exc.re) == ("invalid_field", None)
        assert "id" in exc.message
        assert exc.frame().to_wire() == {
            "type": "error",
            "code": "invalid_field",
            "message": exc.message,
        }


def test_id_length_is_counted_after_nfc() -> None:
    assert check_request_id(E_DECOMPOSED * 64) == E_DECOMPOSED * 64
    with pytest.raises(ProtocolError):
        check_request_id(E_ACUTE * 65)


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    "text",
    [
        "hi",
        "a",
        "line one\nline two",
        "tab\there",
        "\tindented",
        " leading space",
        "x" * MAX_TEXT,
        E_DECOMPOSED * MAX_TEXT,  # 8000 code points, 4000 after NFC
        QA * (MAX_TEXT // 2),  # 2000 code points, 4000 after NFC
        "😀" * MAX_TEXT,
        "\u200b",  # zero width space is a format character, not white space
        "नमस्ते",
    ],
)
def test_valid_text(text: str) -> None:
    assert check_text(text) == text
    say = parse({**ROOM_SAY, "text": text})
    assert isinstance(say, Say) and say.text == text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(" ", id="space"),
        pytest.param("\n", id="lf-only"),
        pytest.param("\t\n \t", id="whitespace-only"),
        pytest.param("\u3000\u00a0", id="unicode-whitespace-only"),
        pytest.param("a\rb", id="cr"),
        pytest.param("a\r\nb", id="crlf"),
        pytest.param("a\x00b", id="nul"),
        pytest.param("a\x07", id="bel"),
        pytest.param("\x0b", id="vt"),
        pytest.param("\x0cx", id="ff"),
        pytest.param("\x1b[31mred", id="esc"),
        pytest.param("\x1f", id="us"),
        pytest.param("a\x7f", id="del"),
        pytest.param("a\x85", id="nel-c1"),
        pytest.param("a\x9f", id="c1"),
        pytest.param("a\ud800", id="lone-high-surrogate"),
        pytest.param("\udc00b", id="lone-low-surrogate"),
        pytest.param("\udc00\ud800", id="reversed-surrogates"),
        pytest.param("x" * (MAX_TEXT + 1), id="4001"),
        pytest.param(E_ACUTE * (MAX_TEXT + 1), id="4001-composed"),
        pytest.param(E_DECOMPOSED * (MAX_TEXT + 1), id="4001-after-nfc"),
        pytest.param(QA * MAX_TEXT, id="8000-after-nfc"),
    ],
)
def test_invalid_text(text: str) -> None:
    with pytest.raises(ChatError) as info:
        check_text(text)
    assert info.value.code == "invalid_field"
    frame = {**ROOM_SAY, "text": text, "id": 5}
    # past 16 KiB, a say whose text is too long is too large a frame (as before max_frame grew)
    big = len(json.dumps(frame)) > SMALL_FRAME
    exc = fault(frame)
    assert (exc.code, exc.re) == ("frame_too_large" if big else "invalid_field", 5)
    assert ("bytes" if big else "text") in exc.message
    exc = fault({"type": "say", "to": "bob", "text": text})
    assert exc.code == ("frame_too_large" if big else "invalid_field")


def test_text_non_string_is_invalid_field() -> None:
    for value in (None, 1, True, ["a"], {"a": "b"}):
        with pytest.raises(ChatError) as info:
            check_text(value)
        assert info.value.code == "invalid_field"


def test_nfc_length() -> None:
    assert nfc_length("abc") == 3
    assert nfc_length(E_DECOMPOSED) == 1
    assert nfc_length(QA) == 2
    assert nfc_length("😀") == 1


# --------------------------------------------------------------------------- names


def test_name_keys_fold_case() -> None:
    assert n("Souvik").key == n("SOUVIK").key == n("souvik").key == "souvik"
    assert n("Souvik").spelling == "Souvik"
    assert n("SOUVIK").spelling == "SOUVIK"
    assert str(n("Souvik")) == "Souvik"


def test_name_keys_normalise_to_nfc() -> None:
    composed, decomposed = n("Jos" + E_ACUTE), n("Jos" + E_DECOMPOSED)
    assert composed == decomposed
    assert composed.spelling == "Jos\u00e9"
    assert composed.key == n("JOS\u00c9").key == n("JOSE\u0301").key == "jos\u00e9"
    assert name_key("Jos" + E_DECOMPOSED) == name_key("JOS\u00c9") == composed.key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Straße", "STRASSE"),
        ("\u212a", "k"),  # KELVIN SIGN is K after NFC
        ("ǅ", "ǆ"),
        ("Σίσυφος", "ΣΊΣΥΦΟΣ"),
    ],
)
def test_equal_names(a: str, b: str) -> None:
    assert n(a).key == n(b).key == name_key(a) == name_key(b)


def test_name_key_matches_parse_name() -> None:
    for spelling in ["Souvik", "a.b-c_d", "Jos" + E_DECOMPOSED, "Ωmega", "١٢٣", "ÀÉÎ"]:
        assert n(spelling).key == name_key(spelling)
        assert n(spelling).spelling == unicodedata.normalize("NFC", spelling)


@pytest.mark.parametrize(
    "spelling",
    [
        "a",
        "Souvik",
        "x" * 32,
        "under_score",
        "dash-ed",
        "dot.ted",
        "._-",
        "123",
        "Ritam99",
        "José",
        E_ACUTE * 32,
        E_DECOMPOSED * 32,  # 64 code points, 32 after NFC
        "Ѕouvik",  # Cyrillic S: a valid name (only name_taken may refuse it)
        "नमस्ते",  # letters and marks
        "٣٤",  # ARABIC-INDIC digits are Nd
        "１２",  # FULLWIDTH digits are Nd
        "日本語",
        "ǅ",  # Lt
        "ʰ",  # Lm
        "\u0301",  # a mark alone
    ],
)
def test_valid_names(spelling: str) -> None:
    name = n(spelling)
    assert name.spelling == unicodedata.normalize("NFC", spelling)
    assert parse({"type": "hello", "name": spelling}) == Hello(name=name)
    assert parse({"type": "join", "room": spelling}) == Join(room=name)
    assert parse({"type": "say", "to": spelling, "text": "x"}) == Say(text="x", to=name)
    assert parse({"type": "history", "with": spelling}) == HistoryRequest(with_=name)


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 33, id="33"),
        pytest.param(E_ACUTE * 33, id="33-composed"),
        pytest.param(E_DECOMPOSED * 33, id="33-after-nfc"),
        pytest.param(QA * 17, id="34-after-nfc"),
        pytest.param("a b", id="space"),
        pytest.param(" a", id="leading-space"),
        pytest.param("a ", id="trailing-space"),
        pytest.param("a\u00a0b", id="nbsp"),
        pytest.param("a\tb", id="tab"),
        pytest.param("a\nb", id="lf"),
        pytest.param("a!", id="bang"),
        pytest.param("a@b", id="at"),
        pytest.param("a/b", id="slash"),
        pytest.param("a:b", id="colon"),
        pytest.param("#room", id="hash"),
        pytest.param("a+b", id="plus"),
        pytest.param("a,b", id="comma"),
        pytest.param("«a»", id="guillemets"),
        pytest.param("a\u2014b", id="em-dash"),
        pytest.param("😀", id="emoji"),
        pytest.param("a😀", id="letter-emoji"),
        pytest.param("²", id="superscript-No"),
        pytest.param("Ⅻ", id="roman-numeral-Nl"),
        pytest.param("a\u200db", id="zwj-Cf"),
        pytest.param("a\x00", id="nul"),
        pytest.param("a\ud800", id="lone-surrogate"),
        pytest.param("\udc00", id="lone-low-surrogate"),
        pytest.param("$", id="dollar"),
        pytest.param("€", id="euro"),
    ],
)
def test_invalid_names(spelling: str) -> None:
    with pytest.raises(ChatError) as info:
        parse_name(spelling, "name", "name_invalid")
    assert info.value.code == "name_invalid"
    cases = [
        ({"type": "hello", "name": spelling}, "name_invalid"),
        ({"type": "say", "to": spelling, "text": "x"}, "name_invalid"),
        ({"type": "history", "with": spelling}, "name_invalid"),
        ({"type": "join", "room": spelling}, "room_invalid"),
        ({"type": "part", "room": spelling}, "room_invalid"),
        ({"type": "who", "room": spelling}, "room_invalid"),
        ({"type": "say", "room": spelling, "text": "x"}, "room_invalid"),
        ({"type": "history", "room": spelling}, "room_invalid"),
    ]
    for obj, code in cases:
        exc = fault({**obj, "id": "q"})
        assert (exc.code, exc.re) == (code, "q"), obj
        assert exc.message


# --------------------------------------------------------------------------- framing


def test_line_decoder_byte_at_a_time() -> None:
    data = b'{"type":"ping"}\n{"type":"rooms","id":1}\r\n'
    conn = Connection(Role.SERVER)
    events: list[Frame | ProtocolError] = []
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        events += drain(conn)
        assert conn.buffered <= i + 1
    assert events == [Ping(), RoomsRequest(id=1)]
    assert conn.buffered == 0


def test_many_frames_in_one_chunk() -> None:
    frames = [Ping(id=i) for i in range(200)]
    conn = Connection(Role.SERVER)
    conn.receive_data(b"".join(encode(f) for f in frames))
    assert drain(conn) == frames
    assert conn.buffered == 0


def test_frame_split_across_chunks_with_the_rest_of_the_next() -> None:
    data = b'{"type":"ping","id":1}\n{"type":"ping","id":2}\n{"type":"pi'
    conn = Connection(Role.SERVER)
    conn.receive_data(data[:10])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(data[10:])
    assert drain(conn) == [Ping(id=1), Ping(id=2)]
    assert conn.buffered == len(b'{"type":"pi')
    conn.receive_data(b'ng","id":3}\n')
    assert drain(conn) == [Ping(id=3)]


def test_cr_before_lf_is_ignored_and_empty_lines_too() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b'\n\r\n\n{"type":"ping"}\r\n\r\n\n{"type":"pong"}\n\n')
    assert drain(conn) == [Ping(), Pong()]


def test_cr_split_from_its_lf() -> None:
    decoder = LineDecoder()
    decoder.feed(b'{"type":"ping"}\r')
    assert decoder.next_line() is None
    decoder.feed(b"\n")
    assert decoder.next_line() == b'{"type":"ping"}'
    assert decoder.next_line() is None


def test_line_decoder_strips_only_one_cr() -> None:
    decoder = LineDecoder()
    decoder.feed(b"abc\r\r\n")
    assert decoder.next_line() == b"abc\r"


def test_cr_elsewhere_is_not_a_line_end() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b'{"type":"ping"}\r{"type":"ping"}\n')
    assert codes(drain(conn)) == ["bad_frame"]


def _padded_ping(size: int, line_end: bytes = b"\n") -> bytes:
    """A valid ping frame of exactly `size` bytes, its line end included."""
    head, tail = b'{"type":"ping","pad":"', b'"}' + line_end
    frame = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(frame) == size
    return frame


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
def test_frame_of_exactly_max_frame_bytes_is_accepted(line_end: bytes) -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(_padded_ping(MAX_FRAME, line_end))
    assert drain(conn) == [Ping()]
    # the same, streamed in byte by byte near the limit
    conn = Connection(Role.SERVER)
    frame = _padded_ping(MAX_FRAME, line_end)
    conn.receive_data(frame[:-3])
    for i in range(len(frame) - 3, len(frame)):
        assert drain(conn) == []
        conn.receive_data(frame[i : i + 1])
    assert drain(conn) == [Ping()]


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
def test_frame_of_max_frame_plus_one_is_refused(line_end: bytes) -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(_padded_ping(MAX_FRAME + 1, line_end) + b'{"type":"ping","id":2}\n')
    assert codes(drain(conn)) == ["frame_too_large", "ping"]


def test_frame_of_max_frame_plus_one_streamed() -> None:
    frame = _padded_ping(MAX_FRAME + 1)
    conn = Connection(Role.SERVER)
    conn.receive_data(frame[:-2])
    assert drain(conn) == []
    conn.receive_data(frame[-2:-1])  # MAX_FRAME bytes and still no LF: too large already
    assert codes(drain(conn)) == ["frame_too_large"]
    conn.receive_data(frame[-1:] + b'{"type":"ping"}\n')
    assert drain(conn) == [Ping()]


@pytest.mark.parametrize("chunk", [1, 100, 4096, 65536])
def test_overlong_line_raises_once_and_the_next_frame_parses(chunk: int) -> None:
    data = b'{"type":"ping","id":1}\n' + b"z" * 100_000 + b'\n{"type":"ping","id":2}\n'
    conn = Connection(Role.SERVER)
    events: list[Frame | ProtocolError] = []
    for i in range(0, len(data), chunk):
        conn.receive_data(data[i : i + chunk])
        assert conn.buffered <= MAX_FRAME - 1 + chunk
        events += drain(conn)
        assert conn.buffered < MAX_FRAME
    assert codes(events) == ["ping", "frame_too_large", "ping"]
    assert events[0] == Ping(id=1) and events[2] == Ping(id=2)
    err = events[1]
    assert isinstance(err, ProtocolError) and err.re is None
    assert str(MAX_FRAME) in err.message


def test_buffer_never_grows_past_the_limit_while_a_long_line_streams_in() -> None:
    conn = Connection(Role.SERVER)
    errors = 0
    high_water = 0
    for _ in range(1000):  # 1 MB of one line, in 1 KB pieces
        conn.receive_data(b"a" * 1024)
        high_water = max(high_water, conn.buffered)
        for event in drain(conn):
            assert isinstance(event, ProtocolError) and event.code == "frame_too_large"
            errors += 1
        high_water = max(high_water, conn.buffered)
    assert errors == 1
    assert high_water < MAX_FRAME + 1024
    assert conn.buffered == 0  # skipping: nothing of the long line is kept
    conn.receive_data(b'tail\n{"type":"pong"}\n')
    assert drain(conn) == [Pong()]


def test_two_overlong_lines_raise_twice() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(b"a" * 70_000 + b"\n" + b"b" * 70_000 + b"\n" + b'{"type":"ping"}\n')
    assert codes(drain(conn)) == ["frame_too_large", "frame_too_large", "ping"]


def test_errors_do_not_stop_the_connection() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(
        b"not json\n"
        b'{"type":"nope","id":1}\n'
        b'{"type":"join","room":"a b","id":2}\n'
        b'{"type":"join","room":"ok","limit":0,"id":3}\n'
        b'{"type":"join","room":"ok","id":4}\n'
    )
    events = drain(conn)
    assert codes(events) == ["bad_frame", "unknown_type", "room_invalid", "invalid_field", "join"]
    assert [getattr(e, "re", None) for e in events[:4]] == [None, 1, 2, 3]
    assert events[4] == Join(room=n("ok"), id=4)


def test_line_decoder_custom_limit() -> None:
    decoder = LineDecoder(max_frame=8)
    decoder.feed(b"1234567\n12345678\nabc\n")
    assert decoder.next_line() == b"1234567"
    with pytest.raises(ProtocolError) as info:
        decoder.next_line()
    assert info.value.code == "frame_too_large"
    assert decoder.next_line() == b"abc"
    assert decoder.next_line() is None
    assert decoder.buffered == 0


def test_connection_custom_max_frame_and_role_defaults() -> None:
    conn = Connection(Role.SERVER, max_frame=32)
    conn.receive_data(_padded_ping(33))
    assert codes(drain(conn)) == ["frame_too_large"]
    # a client accepts server frames far larger than a client frame may be
    client = Connection(Role.CLIENT)
    big = Joined(
        room="lobby",
        members=("a",),
        history=tuple(Message(i, "a", "x" * 4000, TS, room="lobby") for i in range(1, 31)),
        more=False,
    )
    data = encode(big)
    assert len(data) > MAX_FRAME
    client.receive_data(data)
    assert drain(client) == [big]


def test_receive_data_takes_bytearray_and_memoryview() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_data(bytearray(b'{"type":"ping"}\n{"type":'))
    conn.receive_data(bytes(memoryview(b'"pong"}\n')))
    assert drain(conn) == [Ping(), Pong()]


def test_connection_send_is_encode() -> None:
    assert Connection.send(Ping(id=1)) == encode(Ping(id=1)) == b'{"type":"ping","id":1}\n'


# --------------------------------------------------------------------------- server frames

MSG = Message(id=42, sender="Souvik", text="hello Ritam", ts=TS, room="lobby", re="m1")
DM = Message(id=43, sender="Souvik", text="psst\nhi", ts=TS, to="Ritam")

SERVER_FRAMES: list[Frame] = [
    Welcome(name="Souvik", account=False, server="trio-chat/0.1"),
    Welcome(name="Souvik", account=True, server="trio-chat/0.1", re=1),
    Joined(room="lobby", members=("Ritam", "Souvik"), history=(MSG, DM), more=True, re=1),
    Joined(room="lobby", members=(), history=(), more=False),
    Left(room="lobby"),
    Left(room="lobby", re="x"),
    MSG,
    DM,
    HistoryPage(messages=(MSG,), more=False, room="lobby"),
    HistoryPage(messages=(DM,), more=True, with_="Ritam", re=7),
    Members(room="lobby", members=("Ritam", "Souvik")),
    Members(room="lobby", members=(), re=2),
    RoomList(rooms=(RoomInfo("a", 0), RoomInfo("lobby", 2))),
    RoomList(rooms=(), re="r"),
    Presence(room="lobby", name="Ritam", state="joined", ts=TS),
    Presence(room="lobby", name="Ritam", state="left", ts=TS, reason="quit"),
    Ping(),
    Pong(),
    Pong(re=5),
    Bye(reason="quit", message="bye"),
    Bye(reason="too_many_errors", message=""),
    Error(code="invalid_field", message="limit must be ...", re="q"),
    Error(code="bad_frame", message="not JSON"),
]


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=lambda f: type(f).__name__)
def test_server_frame_round_trip(frame: Frame) -> None:
    data = encode(frame)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert parse_server_frame(data[:-1]) == frame
    conn = Connection(Role.CLIENT)
    for i in range(0, len(data), 7):
        conn.receive_data(data[i : i + 7])
    assert drain(conn) == [frame]


def test_server_frames_match_protocol_md_examples() -> None:
    welcome = Welcome(name="Souvik", account=False, server="trio-chat/0.1")
    assert encode(welcome) == (
        b'{"type":"welcome","name":"Souvik","account":false,"server":"trio-chat/0.1",'
        b'"protocol":1,"limits":{"max_frame":65536,"max_text":4000,"history_limit":500}}\n'
    )
    assert encode(MSG) == (
        b'{"type":"message","id":42,"room":"lobby","from":"Souvik","text":"hello Ritam",'
        b'"ts":"2026-11-24T22:00:00.123Z","re":"m1"}\n'
    )
    presence = Presence(
        room="lobby", name="Ritam", state="left", ts="2026-11-24T22:00:05.500Z", reason="quit"
    )
    assert json.loads(encode(presence)) == {
        "type": "presence",
        "room": "lobby",
        "name": "Ritam",
        "state": "left",
        "reason": "quit",
        "ts": "2026-11-24T22:00:05.500Z",
    }
    assert json.loads(encode(Error("bad_state", "again"))) == {
        "type": "error",
        "code": "bad_state",
        "message": "again",
    }
    assert json.loads(encode(DM))["to"] == "Ritam" and "room" not in json.loads(encode(DM))
    assert json.loads(encode(RoomList((RoomInfo("a", 3),)))) == {
        "type": "rooms",
        "rooms": [{"room": "a", "members": 3}],
        "more": False,
    }


def test_parse_protocol_md_example_session() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(
        b'{"type":"hello","name":"Souvik"}\n'
        b'{"type":"join","room":"lobby","id":1}\n'
        b'{"type":"say","room":"lobby","text":"hello Ritam","id":"m1"}\n'
    )
    assert drain(server) == [
        Hello(name=n("Souvik")),
        Join(room=n("lobby"), id=1),
        Say(text="hello Ritam", room=n("lobby"), id="m1"),
    ]
    client = Connection(Role.CLIENT)
    client.receive_data(
        b'{"type":"welcome","name":"Souvik","account":false,"server":"trio-chat/0.1","protocol":1,'
        b'"limits":{"max_frame":65536,"max_text":4000,"history_limit":500}}\n'
        b'{"type":"joined","room":"lobby","members":["Ritam","Souvik"],"history":[{"type":"message",'
        b'"id":41,"room":"lobby","from":"Ritam","text":"hi","ts":"2026-11-24T21:59:58.002Z"}],'
        b'"more":false,"re":1}\n'
    )
    welcome, joined = drain(client)
    assert welcome == Welcome(name="Souvik", account=False, server="trio-chat/0.1")
    assert isinstance(joined, Joined) and joined.re == 1 and joined.members == ("Ritam", "Souvik")
    assert joined.history == (Message(41, "Ritam", "hi", "2026-11-24T21:59:58.002Z", room="lobby"),)


@pytest.mark.parametrize(
    "line",
    [
        b"[]",
        b"{}",
        b'{"type":"welcome"}',
        b'{"type":"welcome","name":"a","account":1,"server":"s","protocol":1,"limits":{}}',
        b'{"type":"message","id":"1","room":"r","from":"a","text":"t","ts":"x"}',
        b'{"type":"message","id":true,"room":"r","from":"a","text":"t","ts":"x"}',
        b'{"type":"message","id":1.0,"room":"r","from":"a","text":"t","ts":"x"}',
        b'{"type":"message","id":NaN,"room":"r","from":"a","text":"t","ts":"x"}',
        b'{"type":"message","id":1,"from":"a","text":"t","ts":"x"}',
        b'{"type":"message","id":1,"room":"r","to":"b","from":"a","text":"t","ts":"x"}',
        b'{"type":"joined","room":"r","members":[1],"history":[],"more":false}',
        b'{"type":"joined","room":"r","members":[],"history":[1],"more":false}',
        b'{"type":"joined","room":"r","members":[],"history":[],"more":0}',
        b'{"type":"history","messages":[],"more":false}',
        b'{"type":"history","room":"r","with":"u","messages":[],"more":false}',
        b'{"type":"rooms","rooms":[1]}',
        b'{"type":"rooms","rooms":[{"room":"a","members":"1"}]}',
        b'{"type":"presence","room":"r","name":"n","state":"gone","ts":"x"}',
        b'{"type":"presence","room":"r","name":"n","state":"left","reason":"x","ts":"x"}',
        b'{"type":"bye","reason":"because"}',
        b'{"type":"error","code":"oops","message":"m"}',
        b'{"type":"error","code":"bad_frame","message":"m","re":1.5}',
        b'{"type":"left","room":"r","re":[1]}',
    ],
)
def test_malformed_server_frames_are_bad_frame(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_frame(line)
    assert info.value.code == "bad_frame"


def test_boolean_re_in_a_server_frame_is_bad_frame() -> None:
    # `re` copies an `id`: a string or an integer. A boolean is neither (PROTOCOL.md §1, §3);
    # _Fields rejects booleans for int fields but not for re, whose kinds are (str, int).
    for line in (b'{"type":"pong","re":true}', b'{"type":"left","room":"r","re":false}'):
        with pytest.raises(ProtocolError) as info:
            parse_server_frame(line)
        assert info.value.code == "bad_frame"


def test_unknown_server_frame_type() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_frame(b'{"type":"hello","name":"x"}')
    assert info.value.code == "unknown_type"


def test_server_frames_ignore_unknown_fields() -> None:
    assert parse_server_frame(b'{"type":"left","room":"r","new":[1,2]}') == Left(room="r")
    assert parse_server_frame(b'{"type":"bye","reason":"shutdown"}') == Bye("shutdown", "")


# --------------------------------------------------------------------------- encode


def test_encode_is_compact_utf8_with_one_lf() -> None:
    frame = Say(text="héllo 😀\nnext\tline\r", room=n("Ré"), id="x")
    data = encode(frame)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert b"\r" not in data
    assert b", " not in data and b": " not in data
    assert "héllo 😀".encode() in data  # raw UTF-8, not \u escapes
    assert data == (
        '{"type":"say","room":"Ré","text":"héllo 😀\\nnext\\tline\\r","id":"x"}\n'.encode()
    )
    assert json.loads(data) == frame.to_wire()


def test_encode_escapes_every_control_character() -> None:
    text = "".join(map(chr, range(0x20))) + "\u2028\u2029"
    data = encode(Message(1, "a", text, TS, room="r"))
    assert all(byte >= 0x20 for byte in data[:-1])
    assert parse_server_frame(data[:-1]) == Message(1, "a", text, TS, room="r")


def test_encode_refuses_nan() -> None:
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            dumps({"type": "x", "v": value})
        with pytest.raises(ValueError):
            encode(Message(id=value, sender="a", text="t", ts=TS, room="r"))  # type: ignore[arg-type]


def test_client_frames_encode_and_parse_back() -> None:
    frames: list[Frame] = [
        Hello(name=n("Souvik"), password="p" * 8, client="c", id=1),
        Join(room=n("lobby"), since=3, limit=10, id="j"),
        Part(room=n("lobby")),
        Say(text="hi", room=n("lobby"), nonce="abc", id=2),
        Say(text="hi", to=n("Ritam")),
        HistoryRequest(with_=n("Ritam"), before=5),
        Who(room=n("lobby")),
        RoomsRequest(),
        Ping(id=3),
        Pong(id=4),
        Quit(reason="done"),
    ]
    for frame in frames:
        assert parse_client_frame(encode(frame)[:-1]) == frame
    assert json.loads(encode(frames[0])) == {
        "type": "hello",
        "name": "Souvik",
        "protocol": 1,
        "password": "pppppppp",
        "client": "c",
        "id": 1,
    }


def test_protocol_error_frame() -> None:
    exc = ProtocolError("name_invalid", "nope", re=3)
    assert exc.frame() == Error(code="name_invalid", message="nope", re=3)
    assert str(exc) == "name_invalid: nope"
    assert (
        encode(exc.frame()) == b'{"type":"error","code":"name_invalid","message":"nope","re":3}\n'
    )
    assert ProtocolError("bad_frame", "x").frame().to_wire() == {
        "type": "error",
        "code": "bad_frame",
        "message": "x",
    }
    expected_codes = {
        "bad_frame",
        "frame_too_large",
        "unknown_type",
        "invalid_field",
        "handshake_required",
        "bad_state",
        "name_invalid",
        "name_taken",
        "auth_failed",
        "auth_required",
        "room_invalid",
        "not_in_room",
        "no_such_user",
        "unavailable",
        "forbidden",
        "banned",
        "no_such_message",
    }
    assert expected_codes == ERROR_CODES


def test_welcome_limits_match_the_constants() -> None:
    limits = json.loads(encode(Welcome("a", False, "s")))["limits"]
    assert limits == {"max_frame": MAX_FRAME, "max_text": MAX_TEXT, "history_limit": HISTORY_LIMIT}
    assert (MAX_FRAME, MAX_TEXT) == (65536, 4000)


# --------------------------------------------------------------------------- no event loop


def test_protocol_imports_neither_trio_nor_asyncio() -> None:
    code = (
        "import sys\n"
        "import trio_chat.protocol\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('trio', 'asyncio'))\n"
        "print(repr(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.strip() == "[]", result.stdout
