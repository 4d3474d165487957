"""Unit and property tests of the sans-IO IRC codec: framing, parsing, formatting, numerics.

No event loop: bytes go through `LineReader`, `parse_line` and `format_message`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_chat.irc import numerics
from trio_chat.irc.codec import (
    MAX_BODY,
    MAX_CLIENT_TAG_DATA,
    MAX_LINE,
    MAX_MESSAGE,
    MAX_TAGS,
    MAX_TAGS_TO_CLIENT,
    IrcMessage,
    IrcParseError,
    LineReader,
    LineTooLong,
    ParseFailure,
    escape_tag_value,
    format_message,
    parse_line,
    unescape_tag_value,
)

REPO = Path(__file__).resolve().parents[2]
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = 1 << 20  # limits large enough to read any generated line


def msg(
    command: str,
    *params: str,
    source: str | None = None,
    tags: dict[str, str] | None = None,
) -> IrcMessage:
    return IrcMessage(tags or {}, source, command, params)


def failure(line: bytes, **limits: int) -> IrcParseError:
    with pytest.raises(IrcParseError) as info:
        parse_line(line, **limits)
    return info.value


# --------------------------------------------------------------------------- constants


def test_limits() -> None:
    assert MAX_CLIENT_TAG_DATA == 4094
    assert MAX_TAGS == 4096
    assert MAX_TAGS_TO_CLIENT == 8191
    assert MAX_MESSAGE == 512
    assert MAX_BODY == 510
    assert MAX_LINE == 4096 + 512


def test_imports_no_event_loop_or_socket() -> None:
    code = (
        "import sys\n"
        "import trio_chat.irc, trio_chat.irc.codec, trio_chat.irc.text, trio_chat.irc.numerics\n"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('trio', 'asyncio', 'socket', 'selectors', 'ssl')))\n"
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


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"PING", msg("PING")),
        (b"ping x", msg("PING", "x")),
        (b"Join #a,#b key", msg("JOIN", "#a,#b", "key")),
        (
            b":irc.example 001 nick :Welcome home",
            msg("001", "nick", "Welcome home", source="irc.example"),
        ),
        (
            b":s 005 n A=1 B :are supported",
            msg("005", "n", "A=1", "B", "are supported", source="s"),
        ),
        (b"CAP * LIST :", msg("CAP", "*", "LIST", "")),
        (b"CAP REQ :sasl message-tags", msg("CAP", "REQ", "sasl message-tags")),
        (b"PRIVMSG #c ::-)", msg("PRIVMSG", "#c", ":-)")),
        (b"PRIVMSG #c :lol :) ", msg("PRIVMSG", "#c", "lol :) ")),
        (b"PRIVMSG #c :  two  spaces  ", msg("PRIVMSG", "#c", "  two  spaces  ")),
        (b"PRIVMSG a:b :c", msg("PRIVMSG", "a:b", "c")),
        (b":n!u@h AWAY", msg("AWAY", source="n!u@h")),
        (b":n!u@h AWAY ", msg("AWAY", source="n!u@h")),
        (b":s   MODE   #c  +o   nick  ", msg("MODE", "#c", "+o", "nick", source="s")),
        (b":s 432  #bad :Erroneous nickname", msg("432", "#bad", "Erroneous nickname", source="s")),
        (b"   PING x", msg("PING", "x")),
        (b":cool\tguy PING x", msg("PING", "x", source="cool\tguy")),
        (b": PING x", msg("PING", "x")),  # an empty source is no source
        (b"PRIVMSG #c :\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", msg("PRIVMSG", "#c", "été 😀")),
        (b"PRIVMSG #c \x02bold\x02", msg("PRIVMSG", "#c", "\x02bold\x02")),
    ],
)
def test_parse_examples(line: bytes, expected: IrcMessage) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "tags"),
    [
        (b"@a=b;c=32;k;rt=ql7 FOO", {"a": "b", "c": "32", "k": "", "rt": "ql7"}),
        (b"@url=;netsplit=tur,ty FOO", {"url": "", "netsplit": "tur,ty"}),
        (
            b"@a=b\\\\and\\nk;c=72\\s45;d=gh\\:764 FOO",
            {"a": "b\\and\nk", "c": "72 45", "d": "gh;764"},
        ),
        (b"@x=\\r\\n FOO", {"x": "\r\n"}),
        (b"@x=value\\\\ntest FOO", {"x": "value\\ntest"}),  # one escape at a time
        (b"@x=value\\1 FOO", {"x": "value1"}),  # an unknown escape loses its backslash
        (b"@x=value1\\ FOO", {"x": "value1"}),  # a trailing lone backslash is dropped
        (b"@x=\\ FOO", {"x": ""}),
        (b"@t=1;u=3;t=5 FOO", {"t": "5", "u": "3"}),  # the last duplicate wins
        (b"@t=1;vendor.example/t=8;+c=2 FOO", {"t": "1", "vendor.example/t": "8", "+c": "2"}),
        (b"@;;a=1;;=x; FOO", {"a": "1"}),  # empty items and keys are skipped
        (b"@a=b=c FOO", {"a": "b=c"}),
        (b"@ FOO", {}),
        (b"@a  FOO", {"a": ""}),
        (b"@a=\xc3\xa9 FOO", {"a": "é"}),
    ],
)
def test_parse_tags(line: bytes, tags: dict[str, str]) -> None:
    parsed = parse_line(line)
    assert parsed.tags == tags
    assert parsed.command == "FOO"
    assert parsed.params == ()


def test_parse_tags_and_source_together() -> None:
    assert parse_line(b"@c;h=;a=b :quux ab cd") == msg(
        "AB", "cd", source="quux", tags={"c": "", "h": "", "a": "b"}
    )


def test_numerics_stay_three_digits() -> None:
    assert parse_line(b":s 001 n :hi").command == "001"
    assert parse_line(b":s 005 n X").command == "005"


@pytest.mark.parametrize(
    ("line", "reason", "command"),
    [
        (b"", ParseFailure.NO_COMMAND, None),
        (b"   ", ParseFailure.NO_COMMAND, None),
        (b"@a=b", ParseFailure.NO_COMMAND, None),
        (b"@a=b   ", ParseFailure.NO_COMMAND, None),
        (b":src", ParseFailure.NO_COMMAND, None),
        (b":src   ", ParseFailure.NO_COMMAND, None),
        (b"@a :src ", ParseFailure.NO_COMMAND, None),
        (b"PRIV-MSG #c :x", ParseFailure.BAD_COMMAND, "PRIV-MSG"),
        (b"12 x", ParseFailure.BAD_COMMAND, "12"),
        (b"1234 x", ParseFailure.BAD_COMMAND, "1234"),
        (b"A1 x", ParseFailure.BAD_COMMAND, "A1"),
        (b"\xc3\x89T\xc3\x89", ParseFailure.BAD_COMMAND, "ÉTÉ"),
        (b":s :x y", ParseFailure.BAD_COMMAND, None),  # a token starting with ':' is not echoed
        (b"PRIVMSG #c :\xff", ParseFailure.INVALID_UTF8, "PRIVMSG"),
        (b"privmsg #c :\xc3", ParseFailure.INVALID_UTF8, "PRIVMSG"),
        (b"@a=\xe9 PING", ParseFailure.INVALID_UTF8, "PING"),
        (b":n\xed\xa0\x80 PING", ParseFailure.INVALID_UTF8, "PING"),  # a surrogate
        (b"\xffPING", ParseFailure.INVALID_UTF8, None),
        (b"PRIVMSG #c :a\x00b", ParseFailure.BAD_CHARACTER, "PRIVMSG"),
        (b"PRIVMSG #c :a\rQUIT", ParseFailure.BAD_CHARACTER, "PRIVMSG"),
        (b"PRIVMSG #c :a\nQUIT", ParseFailure.BAD_CHARACTER, "PRIVMSG"),
        (b"@a=\x00 PING", ParseFailure.BAD_CHARACTER, "PING"),
    ],
)
def test_parse_errors(line: bytes, reason: ParseFailure, command: str | None) -> None:
    error = failure(line)
    assert isinstance(error, ValueError)
    assert error.reason is reason
    assert error.command == command


def test_invalid_utf8_says_so() -> None:
    assert "UTF-8" in str(failure(b"PRIVMSG #c :\x80"))


def test_tags_limit_is_4096_bytes_with_at_and_space() -> None:
    def tagged(size: int) -> bytes:  # a tags part of `size` bytes, '@' and ' ' included
        return b"@a=" + b"x" * (size - 4) + b" PING"

    assert len(tagged(MAX_TAGS).split(b" ")[0]) + 1 == MAX_TAGS
    assert parse_line(tagged(MAX_TAGS)).tags["a"] == "x" * (MAX_TAGS - 4)
    error = failure(tagged(MAX_TAGS + 1))
    assert (error.reason, error.command) == (ParseFailure.TAGS_TOO_LONG, "PING")
    # Without a space nothing follows the tags: too long if they would be.
    assert failure(tagged(MAX_TAGS + 1)[:-5]).reason is ParseFailure.TAGS_TOO_LONG
    assert failure(tagged(MAX_TAGS)[:-5]).reason is ParseFailure.NO_COMMAND
    # A server may send more, and a client reads it with a larger limit.
    line = tagged(MAX_TAGS_TO_CLIENT)
    assert parse_line(line, max_tags=MAX_TAGS_TO_CLIENT).command == "PING"


def test_body_limit_is_510_bytes_without_tags() -> None:
    def body(size: int) -> bytes:
        return b"PRIVMSG #c :" + b"y" * (size - 12)

    assert parse_line(body(MAX_BODY)).params[1] == "y" * (MAX_BODY - 12)
    error = failure(body(MAX_BODY + 1))
    assert (error.reason, error.command) == (ParseFailure.INPUT_TOO_LONG, "PRIVMSG")
    # The tags do not count against the body, and neither do the spaces after them.
    tags = b"@" + b"t" * (MAX_TAGS - 2) + b" "
    assert parse_line(tags + b"   " + body(MAX_BODY)).params[1] == "y" * (MAX_BODY - 12)
    assert failure(tags + body(MAX_BODY + 1)).reason is ParseFailure.INPUT_TOO_LONG
    assert parse_line(body(MAX_BODY + 1), max_body=MAX_BODY + 1).command == "PRIVMSG"


@pytest.mark.parametrize(
    "line",
    [
        b"[" * 10_000,
        b":" * 10_000,
        b"@" * 10_000,
        b"@" + b";" * 10_000 + b" PING",
        b"@a=" + b"\\" * 100_000 + b" PING",
        b"@" + b"a=b;" * 25_000 + b" PING",
        b" " * 100_000,
        b"PING" + b" " * 100_000,
        b"PING" + b" " * 100_000 + b":x",
        b":" + b" " * 100_000 + b"PING",
        b"PRIVMSG " + b"a " * 50_000,
        b"PRIVMSG " + b" :" * 50_000,
        b"@" + b"\xff" * 100_000,
        b"PRIVMSG #c :" + b"\xc3" * 100_000,
        b"(" * 10_000 + b")" * 10_000,
    ],
)
def test_deep_garbage_fails_or_parses_fast(line: bytes) -> None:
    started = time.perf_counter()
    for limits in ({}, {"max_tags": BIG, "max_body": BIG}):
        try:
            parsed = parse_line(line, **limits)
        except IrcParseError:
            pass
        else:
            assert parsed.command
    assert time.perf_counter() - started < 1.0


def test_many_params_parse_in_linear_time() -> None:
    line = b"X " + b"p " * 200_000 + b":end"
    started = time.perf_counter()
    parsed = parse_line(line, max_body=BIG)
    assert len(parsed.params) == 200_001
    assert parsed.params[-1] == "end"
    assert time.perf_counter() - started < 2.0


# --------------------------------------------------------------------------- tag escaping


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("", ""),
        ("plain", "plain"),
        ("a b", "a\\sb"),
        ("a;b", "a\\:b"),
        ("back\\slash", "back\\\\slash"),
        ("cr\rlf\n", "cr\\rlf\\n"),
        ("\\n", "\\\\n"),
        ("; \\\r\n", "\\:\\s\\\\\\r\\n"),
        ("é=😀", "é=😀"),
    ],
)
def test_escape_examples(raw: str, escaped: str) -> None:
    assert escape_tag_value(raw) == escaped
    assert unescape_tag_value(escaped) == raw


@FAST
@given(st.text())
def test_escape_round_trip(value: str) -> None:
    escaped = escape_tag_value(value)
    assert not set(escaped) & {";", " ", "\r", "\n"}
    assert unescape_tag_value(escaped) == value


@FAST
@given(st.lists(st.sampled_from(["\\", ":", "s", "r", "n", "x", "\\\\", ";", " "])).map("".join))
def test_unescape_matches_a_character_at_a_time_reading(value: str) -> None:
    expected: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            expected.append(ch)
            continue
        nxt = next(chars, "")
        expected.append({":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}.get(nxt, nxt))
    assert unescape_tag_value(value) == "".join(expected)


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("args", "kwargs", "line"),
    [
        (("PING",), {}, b"PING\r\n"),
        (("PONG", "srv", "tok"), {"source": "srv"}, b":srv PONG srv tok\r\n"),
        (("PRIVMSG", "#c", "hi"), {"source": "n!u@h"}, b":n!u@h PRIVMSG #c hi\r\n"),
        (("PRIVMSG", "#c", "hi there"), {}, b"PRIVMSG #c :hi there\r\n"),
        (("PRIVMSG", "#c", ":-)"), {}, b"PRIVMSG #c ::-)\r\n"),
        (("CAP", "*", "LIST", ""), {}, b"CAP * LIST :\r\n"),
        (("PRIVMSG", "#c", "a:b"), {}, b"PRIVMSG #c a:b\r\n"),
        (("PRIVMSG", "#c", "été"), {}, "PRIVMSG #c été\r\n".encode()),
        (("PRIVMSG", "#c", "\ttab"), {}, b"PRIVMSG #c \ttab\r\n"),
        (
            ("PRIVMSG", "#c", "x"),
            {"tags": {"msgid": "42", "time": "2024-01-01T00:00:00.000Z"}},
            b"@msgid=42;time=2024-01-01T00:00:00.000Z PRIVMSG #c x\r\n",
        ),
        (
            ("TAGMSG", "#c"),
            {"tags": {"+typing": "active", "flag": ""}},
            b"@+typing=active;flag TAGMSG #c\r\n",
        ),
        (
            ("NOTICE", "n", "x y"),
            {"tags": {"k": "a b;c\\d\r\n"}},
            b"@k=a\\sb\\:c\\\\d\\r\\n NOTICE n :x y\r\n",
        ),
        (("PING", "x"), {"tags": {}}, b"PING x\r\n"),
        (("001", "nick", "Welcome"), {"source": "srv"}, b":srv 001 nick Welcome\r\n"),
    ],
)
def test_format_examples(args: tuple[str, ...], kwargs: dict[str, object], line: bytes) -> None:
    assert format_message(*args, **kwargs) == line  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params",
    [("", "x"), ("a b", "x"), (":a", "x"), ("ok", "", "x"), ("a\rb",), ("a\nb",), ("a\x00b",)],
)
def test_format_rejects_params_that_would_not_parse_back(params: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        format_message("PRIVMSG", *params)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"source": "a b"},
        {"source": ""},
        {"source": "a\r\nQUIT"},
        {"tags": {"": "x"}},
        {"tags": {"a b": "x"}},
        {"tags": {"a=b": "x"}},
        {"tags": {"a;b": "x"}},
        {"tags": {"a": "\x00"}},
    ],
)
def test_format_rejects_bad_source_and_tags(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        format_message("PING", "x", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["", "PRIV MSG", "12", "1234", "A1", "PING\r\n"])
def test_format_rejects_bad_commands(command: str) -> None:
    with pytest.raises(ValueError):
        format_message(command, "x")


# Strategies for messages that format_message accepts.
_NOT_LINE_BREAKING = st.characters(blacklist_characters="\x00\r\n", blacklist_categories=["Cs"])
_WORD_CHARS = st.characters(blacklist_characters="\x00\r\n :", blacklist_categories=["Cs"])
tag_keys = st.from_regex(r"\A\+?([a-z0-9.-]{1,12}/)?[A-Za-z0-9-]{1,12}\Z")
tag_values = st.text(
    _NOT_LINE_BREAKING | st.sampled_from(["\r", "\n", ";", " ", "\\"]), max_size=30
)
sources = st.text(_WORD_CHARS | st.just(":"), min_size=1, max_size=30)
commands = st.from_regex(r"\A([A-Za-z]{1,12}|[0-9]{3})\Z")
middles = st.builds(
    lambda head, rest: head + rest,
    st.text(_WORD_CHARS, min_size=1, max_size=1),
    st.text(_WORD_CHARS | st.just(":"), max_size=15),
)
lasts = st.text(_NOT_LINE_BREAKING, max_size=60) | middles | st.sampled_from(["", " ", ":", "::"])


@st.composite
def messages(draw: st.DrawFn) -> IrcMessage:
    params = (*draw(st.lists(middles, max_size=6)), *draw(st.lists(lasts, max_size=1)))
    tags = draw(st.dictionaries(tag_keys, tag_values, max_size=5))
    source = draw(st.none() | sources)
    return IrcMessage(tags, source, draw(commands).upper(), params)


@FAST
@given(messages())
def test_format_then_parse_round_trip(message: IrcMessage) -> None:
    line = message.to_bytes()
    assert line.endswith(b"\r\n")
    assert line.count(b"\n") == 1 and line.count(b"\r") == 1 and b"\x00" not in line
    parsed = parse_line(line[:-2], max_tags=BIG, max_body=BIG)
    assert parsed == message
    assert parsed.to_bytes() == line


@FAST
@given(
    st.binary(max_size=80)
    | st.lists(
        st.sampled_from(
            [b"@", b":", b" ", b"=", b";", b"\\", b"a", b"PING", b"\xc3\xa9", b"\xff", b"1"]
        )
    ).map(b"".join)
)
def test_any_line_parses_to_what_formats_back_or_fails_cleanly(line: bytes) -> None:
    try:
        parsed = parse_line(line)
    except IrcParseError as error:
        assert isinstance(error.reason, ParseFailure)
        assert error.command is None or (error.command and " " not in error.command)
        return
    assert parse_line(parsed.to_bytes()[:-2], max_tags=BIG, max_body=BIG) == parsed


def test_format_fast_path_is_cheap() -> None:
    tags = {"msgid": "123456", "time": "2024-05-01T12:00:00.000Z"}
    text = "a message of ordinary length " * 4
    started = time.perf_counter()
    for _ in range(20_000):
        format_message("PRIVMSG", "#lobby", text, source="nick!user@chat.example", tags=tags)
    # About 1-2 µs each on a laptop; this bound only catches an accidental blow-up.
    assert time.perf_counter() - started < 2.0


# --------------------------------------------------------------------------- LineReader


def drain(reader: LineReader) -> list[bytes | None]:
    """The lines the reader has ready; None stands for a reported too-long line."""
    out: list[bytes | None] = []
    while True:
        try:
            line = reader.next_line()
        except LineTooLong:
            out.append(None)
            continue
        if line is None:
            return out
        out.append(line)


def reference_lines(data: bytes, max_line: int) -> tuple[list[bytes | None], int]:
    """What a reader fed all of `data` yields, and what it then holds: read off whole input."""
    *complete, tail = data.split(b"\n")
    out: list[bytes | None] = []
    for raw in complete:
        if len(raw) + 1 > max_line:
            out.append(None)
            continue
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line:
            out.append(line)
    if len(tail) >= max_line:  # known too long before its LF comes
        out.append(None)
        return out, 0
    return out, len(tail)


def test_reader_splits_lines() -> None:
    reader = LineReader()
    reader.feed(b"NICK a\r\nUSER a 0 * :A\n\r\n\nPI")
    assert drain(reader) == [b"NICK a", b"USER a 0 * :A"]
    assert reader.buffered == 2
    reader.feed(b"NG x\r")
    assert reader.next_line() is None
    reader.feed(b"\n")
    assert reader.next_line() == b"PING x"
    assert reader.next_line() is None
    assert reader.buffered == 0


def test_reader_keeps_spaces_only_lines_and_lone_crs() -> None:
    reader = LineReader()
    reader.feed(b"  \n\r\r\na\rb\n")
    assert drain(reader) == [b"  ", b"\r", b"a\rb"]


def test_reader_reports_a_long_line_once_and_skips_it() -> None:
    reader = LineReader(max_line=10)
    reader.feed(b"ok\n123456789")  # 9 bytes: with its LF it would fit
    assert drain(reader) == [b"ok"]
    reader.feed(b"0")  # 10 bytes and no LF yet: too long
    with pytest.raises(LineTooLong) as info:
        reader.next_line()
    assert info.value.reason is ParseFailure.LINE_TOO_LONG
    assert info.value.limit == 10
    assert "10" in str(info.value)
    assert reader.buffered == 0
    reader.feed(b"more of it")
    assert reader.next_line() is None
    assert reader.buffered == 0
    reader.feed(b" still\r\nnext\n")
    assert drain(reader) == [b"next"]


def test_reader_limit_counts_the_lf() -> None:
    reader = LineReader(max_line=6)
    reader.feed(b"abcd\r\nabcde\nabcdef\nx\n")
    assert drain(reader) == [b"abcd", b"abcde", None, b"x"]


def test_reader_keeps_no_more_than_the_limit_of_a_huge_chunk() -> None:
    reader = LineReader()
    reader.feed(b"x" * 1_000_000)
    assert reader.buffered <= MAX_LINE
    with pytest.raises(LineTooLong):
        reader.next_line()
    for _ in range(100):
        reader.feed(b"y" * 100_000)
        assert reader.buffered == 0
    reader.feed(b"end\nPING 1\n")
    assert drain(reader) == [b"PING 1"]


def test_reader_default_limit_fits_the_longest_valid_line() -> None:
    longest = b"@" + b"t" * (MAX_TAGS - 2) + b" " + b"PRIVMSG #c :" + b"z" * (MAX_BODY - 12)
    reader = LineReader()
    reader.feed(longest + b"\r\n")
    assert drain(reader) == [longest]
    assert parse_line(longest).params[1] == "z" * (MAX_BODY - 12)
    reader.feed(b"@" + longest + b"x\r\n")
    assert drain(reader) == [None]


@st.composite
def chunked_streams(draw: st.DrawFn) -> tuple[bytes, list[bytes], int]:
    pieces = [b"\n", b"\r\n", b"\r", b"a", b"bc", b"PING x", b" ", b"\xc3\xa9", b"z" * 7]
    data = b"".join(draw(st.lists(st.sampled_from(pieces), max_size=60)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    chunks = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return data, chunks, draw(st.integers(1, 24))


@FAST
@given(chunked_streams())
def test_reader_chunking_changes_nothing(stream: tuple[bytes, list[bytes], int]) -> None:
    data, chunks, max_line = stream
    reader = LineReader(max_line)
    out: list[bytes | None] = []
    for chunk in chunks:
        reader.feed(chunk)
        out.extend(drain(reader))
        assert reader.buffered < max_line
    expected, held = reference_lines(data, max_line)
    assert out == expected
    assert reader.buffered == held


def test_reader_rejects_a_nonpositive_limit() -> None:
    with pytest.raises(ValueError):
        LineReader(0)


# --------------------------------------------------------------------------- numerics


def test_numerics_are_three_digit_strings_and_distinct() -> None:
    values = {
        name: value for name, value in vars(numerics).items() if name.startswith(("RPL_", "ERR_"))
    }
    assert len(values) >= 70
    assert all(isinstance(v, str) and re.fullmatch(r"[0-9]{3}", v) for v in values.values())
    assert len(set(values.values())) == len(values)


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("RPL_WELCOME", "001"),
        ("RPL_ISUPPORT", "005"),
        ("RPL_UMODEIS", "221"),
        ("RPL_LUSEROP", "252"),
        ("RPL_TOPICWHOTIME", "333"),
        ("RPL_NAMREPLY", "353"),
        ("ERR_TOOMANYTARGETS", "407"),
        ("ERR_INVALIDCAPCMD", "410"),
        ("ERR_INPUTTOOLONG", "417"),
        ("ERR_NICKNAMEINUSE", "433"),
        ("ERR_ALREADYREGISTERED", "462"),
        ("ERR_CHANOPRIVSNEEDED", "482"),
        ("RPL_SASLSUCCESS", "903"),
        ("RPL_SASLMECHS", "908"),
    ],
)
def test_numeric_spot_checks(name: str, number: str) -> None:
    assert getattr(numerics, name) == number
