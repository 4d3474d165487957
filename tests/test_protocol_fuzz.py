"""Property tests and fuzzing of the sans-IO protocol module (hypothesis).

- valid client and server frames survive `encode` then parse, alone and streamed in
  arbitrary chunks through a `Connection`;
- names and texts are checked against an independent reading of PROTOCOL.md section 3;
- arbitrary bytes and arbitrary JSON-ish objects, cut into arbitrary chunks, make the
  `receive_data` / `next_event` loop raise nothing but `ProtocolError`, with a known
  code, an answer that can be encoded, and `re` exactly when the frame had a valid `id`;
- chunking never changes what a connection yields (a whole-stream model of the framing).
"""

from __future__ import annotations

import itertools
import json
import math
import unicodedata
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_chat.core.errors import ChatError
from trio_chat.protocol import (
    BYE_REASONS,
    ERROR_CODES,
    LEAVE_REASONS,
    MAX_FRAME,
    MAX_TEXT,
    NEED_DATA,
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
    Limits,
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
    encode,
    nfc_length,
    parse_client_frame,
    parse_name,
    parse_server_frame,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CLIENT_TYPES = ["hello", "join", "part", "say", "history", "who", "rooms", "ping", "pong", "quit"]
FIELDS = [
    "type",
    "id",
    "name",
    "password",
    "protocol",
    "client",
    "room",
    "to",
    "with",
    "text",
    "nonce",
    "since",
    "before",
    "limit",
    "reason",
]


# --------------------------------------------------------------------------- a reading of §3


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def ref_name(value: str) -> Name | None:
    """PROTOCOL.md §3: 1 to 32 letters, marks, Nd digits or _ - . after NFC; key NFC+casefold."""
    if _has_surrogate(value):
        return None
    spelling = _nfc(value)
    if not 1 <= len(spelling) <= 32:
        return None
    for ch in spelling:
        category = unicodedata.category(ch)
        if not (ch in "_-." or category[0] in ("L", "M") or category == "Nd"):
            return None
    return Name(spelling, spelling.casefold())


def ref_text_ok(value: str) -> bool:
    """PROTOCOL.md §3: 1 to 4000 characters after NFC, not only white space, no Cc but LF/TAB."""
    if _has_surrogate(value):
        return False
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        return False
    return 1 <= len(_nfc(value)) <= MAX_TEXT and not value.isspace()


def ref_id_ok(value: object) -> bool:
    """PROTOCOL.md §1, §3: a string of 1 to 64 characters, or an integer within ±2^53."""
    if type(value) is int:
        return -(2**53) <= value <= 2**53
    if isinstance(value, str):
        return not _has_surrogate(value) and 1 <= len(_nfc(value)) <= 64
    return False


# --------------------------------------------------------------------------- strategies

SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
SPECIAL = st.sampled_from(
    [
        *["\n", "\t", "\r", "\x00", "\x1b", "\x7f", "\x85", " ", "\u00a0", "\u3000", "\u2028"],
        *["\u0301", "\u0958", "e", "E", "\u00e9", "\u212a", "ß", "_", "-", ".", "😀", "Ⅻ", "٣"],
    ]
)
ANY_CHAR = st.one_of(st.characters(), SURROGATE, SPECIAL)
NO_SURROGATE = st.characters(exclude_categories=["Cs"])

NAME_CHAR = st.one_of(st.characters(categories=["L", "M", "Nd"]), st.sampled_from("_-.aZ09"))
names: st.SearchStrategy[Any] = (
    st.text(NAME_CHAR, min_size=1, max_size=32).map(ref_name).filter(lambda x: x is not None)
)

TEXT_CHAR = st.one_of(st.characters(exclude_categories=["Cc", "Cs"]), st.sampled_from("\n\t "))
texts = st.text(TEXT_CHAR, min_size=1, max_size=200).filter(ref_text_ok)


def bounded_text(lo: int, hi: int, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Surrogate-free text of lo to hi characters after NFC."""
    size = hi if max_size is None else max_size
    return st.text(NO_SURROGATE, min_size=lo, max_size=size).filter(
        lambda s: lo <= nfc_length(s) <= hi
    )


request_ids: st.SearchStrategy[str | int] = st.one_of(
    st.integers(-(2**53), 2**53), st.sampled_from([0, 2**53, -(2**53)]), bounded_text(1, 64)
)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


ids = opt(request_ids)
limits = st.integers(1, 500)

client_frames: st.SearchStrategy[Frame] = st.one_of(
    st.builds(
        Hello,
        name=names,
        password=opt(bounded_text(8, 256, 40)),
        client=opt(st.text(NO_SURROGATE, max_size=30)),
        id=ids,
    ),
    st.builds(Join, room=names, since=opt(st.integers(0, 2**53)), limit=limits, id=ids),
    st.builds(Part, room=names, id=ids),
    st.builds(Say, text=texts, room=names, nonce=opt(bounded_text(1, 64)), id=ids),
    st.builds(Say, text=texts, to=names, nonce=opt(bounded_text(1, 64)), id=ids),
    st.builds(HistoryRequest, room=names, before=opt(st.integers(1, 2**53)), limit=limits, id=ids),
    st.builds(HistoryRequest, with_=names, before=opt(st.integers(1, 2**53)), limit=limits, id=ids),
    st.builds(Who, room=names, id=ids),
    st.builds(RoomsRequest, id=ids),
    st.builds(Ping, id=ids),
    st.builds(Pong, id=ids),
    st.builds(Quit, reason=opt(bounded_text(0, 400, 40)), id=ids),
)

strings = st.text(NO_SURROGATE, max_size=30)
big_ints = st.integers(-(2**70), 2**70)
messages = st.one_of(
    st.builds(Message, id=big_ints, sender=strings, text=strings, ts=strings, room=strings, re=ids),
    st.builds(Message, id=big_ints, sender=strings, text=strings, ts=strings, to=strings, re=ids),
)
string_tuples = st.lists(strings, max_size=4).map(tuple)

server_frames: st.SearchStrategy[Frame] = st.one_of(
    st.builds(
        Welcome,
        name=strings,
        account=st.booleans(),
        server=strings,
        protocol=big_ints,
        limits=st.builds(Limits, big_ints, big_ints, big_ints),
        re=ids,
    ),
    st.builds(
        Joined,
        room=strings,
        members=string_tuples,
        history=st.lists(messages, max_size=3).map(tuple),
        more=st.booleans(),
        re=ids,
    ),
    st.builds(Left, room=strings, re=ids),
    messages,
    st.builds(
        HistoryPage,
        messages=st.lists(messages, max_size=3).map(tuple),
        more=st.booleans(),
        room=strings,
        re=ids,
    ),
    st.builds(
        HistoryPage,
        messages=st.lists(messages, max_size=3).map(tuple),
        more=st.booleans(),
        with_=strings,
        re=ids,
    ),
    st.builds(Members, room=strings, members=string_tuples, re=ids),
    st.builds(
        RoomList,
        rooms=st.lists(st.builds(RoomInfo, strings, big_ints), max_size=4).map(tuple),
        re=ids,
    ),
    st.builds(Presence, room=strings, name=strings, state=st.just("joined"), ts=strings),
    st.builds(
        Presence,
        room=strings,
        name=strings,
        state=st.just("left"),
        ts=strings,
        reason=opt(st.sampled_from(sorted(LEAVE_REASONS))),
    ),
    st.just(Ping()),
    st.builds(Pong, re=ids),
    st.builds(Bye, reason=st.sampled_from(sorted(BYE_REASONS)), message=strings),
    st.builds(Error, code=st.sampled_from(sorted(ERROR_CODES)), message=strings, re=ids),
)

# JSON-ish values: what json.dumps can write, surrogates, NaN and huge numbers included
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**30), 10**30),
    st.sampled_from([2**53, 2**53 + 1, -(2**53), -(2**53) - 1, 0, 1, -1, 500, 501]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(ANY_CHAR, max_size=20),
    st.sampled_from(["lobby", "Souvik", "a b", "", "x" * 65, "\ud800"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(ANY_CHAR, max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)
field_names = st.one_of(st.sampled_from(FIELDS), st.text(ANY_CHAR, max_size=8))


@st.composite
def json_objects(draw: st.DrawFn) -> Any:
    """A top-level value: mostly an object, often a valid client frame with a few mutations."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(json_values)
    if kind <= 3:
        obj = draw(st.dictionaries(field_names, json_values, max_size=6))
        if draw(st.booleans()):
            obj["type"] = draw(st.one_of(st.sampled_from(CLIENT_TYPES), json_scalars))
        return obj
    obj = draw(client_frames).to_wire()
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.one_of(st.sampled_from(sorted(obj) or ["type"]), field_names))
        if draw(st.integers(0, 3)) == 0:
            obj.pop(key, None)
        else:
            obj[key] = draw(json_values)
    return obj


def to_line(obj: Any, ascii_only: bool) -> bytes:
    """JSON text of obj; without ascii_only a lone surrogate makes the bytes invalid UTF-8."""
    text = json.dumps(obj, ensure_ascii=ascii_only, allow_nan=True, separators=(",", ":"))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """data cut at arbitrary points (empty chunks included)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# --------------------------------------------------------------------------- helpers

Outcome = tuple[Any, ...]


def outcome(exc_or_frame: Frame | ProtocolError) -> Outcome:
    if isinstance(exc_or_frame, ProtocolError):
        return ("error", exc_or_frame.code, exc_or_frame.re, exc_or_frame.message)
    return ("frame", exc_or_frame)


def check_error(exc: ProtocolError) -> None:
    """What the server does with a fault: answer it with an error frame that can be sent."""
    assert exc.code in ERROR_CODES
    assert exc.re is None or ref_id_ok(exc.re)
    answer = exc.frame()
    data = encode(answer)
    assert data.count(b"\n") == 1
    assert parse_server_frame(data[:-1]) == answer


def feed_all(conn: Connection[Any], chunks: list[bytes], max_frame: int) -> list[Outcome]:
    """Feed chunk by chunk, draining after each; only ProtocolError may come out."""
    out: list[Outcome] = []
    for chunk in chunks:
        before = conn.buffered
        conn.receive_data(chunk)
        assert conn.buffered <= before + len(chunk)
        for _ in range(len(chunk) + 2):
            try:
                event = conn.next_event()
            except ProtocolError as exc:
                check_error(exc)
                out.append(outcome(exc))
                continue
            if event is NEED_DATA:
                break
            out.append(outcome(event))
        else:
            raise AssertionError("next_event() yielded more events than bytes were fed")
        assert conn.buffered < max_frame
    return out


def model(stream: bytes, max_frame: int, parse: Callable[[bytes], Frame]) -> list[Outcome]:
    """What PROTOCOL.md §1 says the whole stream yields, read in one go line by line."""
    out: list[Outcome] = []
    *lines, tail = stream.split(b"\n")
    for line in lines:
        if len(line) + 1 > max_frame:
            out.append(("error", "frame_too_large"))
            continue
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line or line.isspace():  # empty lines (LineDecoder also skips blank ones)
            continue
        try:
            out.append(outcome(parse(line)))
        except ProtocolError as exc:
            out.append(outcome(exc))
    if len(tail) >= max_frame:  # already known to be too long, before its LF comes
        out.append(("error", "frame_too_large"))
    return out


def strip_too_large(outcomes: list[Outcome]) -> list[Outcome]:
    """frame_too_large errors compared by code only (their message holds the limit)."""
    return [o[:2] if o[:2] == ("error", "frame_too_large") else o for o in outcomes]


# --------------------------------------------------------------------------- round trips


@FAST
@given(frame=client_frames)
def test_client_frame_round_trip(frame: Frame) -> None:
    data = encode(frame)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert b"\r" not in data
    assert len(data) <= MAX_FRAME
    parsed = parse_client_frame(data[:-1])
    assert parsed == frame
    assert encode(parsed) == data


@FAST
@given(frame=server_frames)
def test_server_frame_round_trip(frame: Frame) -> None:
    data = encode(frame)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data) == frame.to_wire()
    assert parse_server_frame(data[:-1]) == frame


@FEW
@given(frames=st.lists(client_frames, max_size=8), data=st.data())
def test_client_frames_streamed_in_arbitrary_chunks(
    frames: list[Frame], data: st.DataObject
) -> None:
    stream = b""
    for frame in frames:
        line = encode(frame)
        if data.draw(st.booleans()):
            line = line[:-1] + b"\r\n"
        stream += line + data.draw(st.sampled_from([b"", b"\n", b"\r\n", b"\n\n"]))
    conn = Connection(Role.SERVER)
    out = feed_all(conn, data.draw(chunked(stream)), MAX_FRAME)
    assert out == [("frame", f) for f in frames]
    assert conn.buffered == 0


@FEW
@given(frames=st.lists(server_frames, max_size=8), data=st.data())
def test_server_frames_streamed_in_arbitrary_chunks(
    frames: list[Frame], data: st.DataObject
) -> None:
    stream = b"".join(encode(f) for f in frames)
    conn = Connection(Role.CLIENT)
    out = feed_all(conn, data.draw(chunked(stream)), 2**40)
    assert out == [("frame", f) for f in frames]
    assert conn.buffered == 0


# --------------------------------------------------------------------------- names and text


@FAST
@given(value=st.text(st.one_of(NAME_CHAR, ANY_CHAR), max_size=40))
def test_parse_name_matches_protocol_md(value: str) -> None:
    expected = ref_name(value)
    for what, code in (("name", "name_invalid"), ("room", "room_invalid")):
        try:
            got = parse_name(value, what, code)  # type: ignore[arg-type]
        except ChatError as exc:
            assert expected is None, f"{value!r} refused"
            assert exc.code == code
        else:
            assert got == expected, f"{value!r} accepted"


@FAST
@given(a=names, data=st.data())
def test_names_equal_under_case_and_normalisation(a: Name, data: st.DataObject) -> None:
    variant = data.draw(
        st.sampled_from(
            [
                a.spelling,
                a.spelling.upper(),
                a.spelling.lower(),
                a.spelling.swapcase(),
                unicodedata.normalize("NFD", a.spelling),
                unicodedata.normalize("NFD", a.spelling.upper()),
            ]
        )
    )
    other = ref_name(variant)
    if other is not None:  # upper() may lengthen (ß -> SS) past 32
        assert parse_name(variant, "name", "name_invalid").key == _nfc(variant).casefold()
        same = _nfc(variant).casefold() == a.key
        assert (parse_name(variant, "name", "name_invalid").key == a.key) == same
    # NFD of a valid name is always the same name
    nfd = unicodedata.normalize("NFD", a.spelling)
    assert parse_name(nfd, "name", "name_invalid") == a


@FAST
@given(value=st.text(ANY_CHAR, max_size=60))
def test_check_text_matches_protocol_md(value: str) -> None:
    try:
        got = check_text(value)
    except ChatError as exc:
        assert exc.code == "invalid_field"
        assert not ref_text_ok(value), f"{value!r} refused"
    else:
        assert ref_text_ok(value), f"{value!r} accepted"
        assert got == value


@FAST
@given(value=json_values)
def test_check_request_id_matches_protocol_md(value: Any) -> None:
    try:
        got = check_request_id(value)
    except ProtocolError as exc:
        assert exc.code == "invalid_field"
        assert not ref_id_ok(value)
    else:
        assert ref_id_ok(value)
        assert got == value


# --------------------------------------------------------------------------- fuzzing


@FAST
@given(obj=json_objects(), ascii_only=st.booleans())
def test_json_ish_frames_parse_or_raise_protocol_error(obj: Any, ascii_only: bool) -> None:
    line = to_line(obj, ascii_only)
    try:
        frame = parse_client_frame(line)
    except ProtocolError as exc:
        check_error(exc)
        valid_utf8 = ascii_only or not _has_surrogate(json.dumps(obj, ensure_ascii=False))
        if not isinstance(obj, dict) or not valid_utf8:
            assert exc.code == "bad_frame"
            return
        # a dict written by json.dumps: no duplicate keys, decodable
        if "id" not in obj:
            assert exc.re is None
        elif not ref_id_ok(obj["id"]):
            assert (exc.code, exc.re) == ("invalid_field", None)
            return
        else:
            assert exc.re == obj["id"]
        kind = obj.get("type")
        if not isinstance(kind, str):
            assert exc.code == "bad_frame"
        elif kind not in CLIENT_TYPES:
            assert exc.code == "unknown_type"
        else:
            assert exc.code in {"invalid_field", "name_invalid", "room_invalid"}
    else:
        assert isinstance(obj, dict) and frame.type == obj["type"]
        assert getattr(frame, "id", None) == obj.get("id")
        assert parse_client_frame(encode(frame)[:-1]) == frame


@FEW
@given(objs=st.lists(json_objects(), min_size=1, max_size=6), data=st.data())
def test_json_ish_stream_in_arbitrary_chunks(objs: list[Any], data: st.DataObject) -> None:
    lines = [to_line(obj, data.draw(st.booleans())) for obj in objs]
    stream = b"\n".join(lines) + data.draw(st.sampled_from([b"", b"\n", b"\r\n"]))
    max_frame = data.draw(st.sampled_from([32, 256, MAX_FRAME]))
    conn = Connection(Role.SERVER, max_frame=max_frame)
    out = feed_all(conn, data.draw(chunked(stream)), max_frame)
    assert strip_too_large(out) == model(stream, max_frame, parse_client_frame)


PIECES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"\n",
            b"\r\n",
            b"\r",
            b" \n",
            b"\x0c\n",
            b"\xff",
            b"\xc3",
            b"{",
            b"}",
            b'"',
            b"[" * 50,
            b"x" * 31,
            b"x" * 32,
            b"x" * 33,
            b"NaN",
            b"1e400",
            b'{"type":"ping"}\n',
            b'{"type":"ping","id":1}\r\n',
            b'{"type":"say","room":"r","text":"hi"}\n',
            b'{"type":"pong","re":1}\n',
            b'{"type":"bye","reason":"quit","message":""}\n',
        ]
    ),
    st.integers(0, 2 * MAX_FRAME).map(lambda k: b"y" * k),
)


@FAST
@given(pieces=st.lists(PIECES, max_size=12), data=st.data())
def test_arbitrary_bytes_server_role(pieces: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(pieces)
    max_frame = data.draw(st.sampled_from([16, 64, MAX_FRAME]))
    conn = Connection(Role.SERVER, max_frame=max_frame)
    out = feed_all(conn, data.draw(chunked(stream)), max_frame)
    assert strip_too_large(out) == model(stream, max_frame, parse_client_frame)


@FEW
@given(pieces=st.lists(PIECES, max_size=12), data=st.data())
def test_arbitrary_bytes_client_role(pieces: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(pieces)
    max_frame = data.draw(st.sampled_from([16, 64, 2**25]))
    conn = Connection(Role.CLIENT, max_frame=max_frame)
    out = feed_all(conn, data.draw(chunked(stream)), max_frame)
    assert strip_too_large(out) == model(stream, max_frame, parse_server_frame)


@FAST
@given(obj=st.one_of(json_values, st.dictionaries(field_names, json_values, max_size=6)))
def test_server_frame_parser_never_raises_anything_else(obj: Any) -> None:
    if isinstance(obj, dict) and "type" not in obj:
        obj["type"] = "message"
    for ascii_only in (True, False):
        try:
            parse_server_frame(to_line(obj, ascii_only))
        except ProtocolError as exc:
            assert exc.code in ERROR_CODES


@FEW
@given(depth=st.integers(900, 20_000), opener=st.sampled_from(["[", '{"a":']))
def test_deep_nesting_never_escapes_as_recursion_error(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    line = ('{"type":"ping","x":' + opener * depth + "1" + closer * depth + "}").encode()
    for parse in (parse_client_frame, parse_server_frame):
        try:
            parse(line)
        except ProtocolError as exc:
            assert exc.code == "bad_frame"


@FAST
@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not f.is_integer()),
        st.sampled_from([math.nan, math.inf, -math.inf, 1.0, 0.0, -0.0, 1e400]),
        st.booleans(),
        st.integers(2**53 + 1, 10**40),
        st.integers(-(10**40), -(2**53) - 1),
    ),
    key=st.sampled_from(["since", "limit"]),
)
def test_non_integers_are_invalid_field(value: Any, key: str) -> None:
    line = to_line({"type": "join", "room": "r", key: value, "id": "k"}, True)
    try:
        parse_client_frame(line)
    except ProtocolError as exc:
        assert (exc.code, exc.re) == ("invalid_field", "k")
    else:
        raise AssertionError(f"{key}={value!r} accepted")
