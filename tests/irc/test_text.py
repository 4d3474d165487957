"""Unit and property tests of the IRC text helpers: formatting, CTCP, splitting into lines."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_chat.irc.codec import MAX_MESSAGE, format_message
from trio_chat.irc.text import (
    ACTION_OVERHEAD,
    clean_from_irc,
    ctcp_action,
    parse_ctcp,
    privmsg_budget,
    split_for_irc,
    strip_formatting,
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FORMATTING_CHARS = set("\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f")
ZWJ = "\u200d"


def utf8_len(text: str) -> int:
    return len(text.encode())


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("plain text", "plain text"),
        ("\x02bold\x02 \x1ditalic\x1d \x1funder\x1f", "bold italic under"),
        ("\x1estrike\x1e \x11mono\x11 \x16rev\x16 \x0freset", "strike mono rev reset"),
        ("\x034red", "red"),
        ("\x0304red", "red"),
        ("\x03123", "3"),  # two digits at most: 12, then the text "3"
        ("\x034,12on blue", "on blue"),
        ("\x0304,1234", "34"),
        ("\x03,12x", ",12x"),  # a background needs a foreground
        ("\x0312,x", ",x"),  # a comma with no digit after it is text
        ("\x03reset", "reset"),
        ("a\x03", "a"),
        ("\x04FF0000red", "red"),
        ("\x04ff0000,00FF00x", "x"),
        ("\x04FF00", "FF00"),  # not six hex digits: only the code goes
        ("\x04FF0000,00FFx", ",00FFx"),
        ("\x04", ""),
        ("\x03\x0312x", "x"),
        ("été\x02😀\x02", "été😀"),
        ("tab\tkept", "tab\tkept"),
    ],
)
def test_strip_formatting(raw: str, plain: str) -> None:
    assert strip_formatting(raw) == plain


formatted_texts = st.text(
    st.sampled_from([*sorted(FORMATTING_CHARS), "1", "2", ",", "a", "F", " ", "é"])
    | st.characters(),
    max_size=60,
)


@FAST
@given(formatted_texts)
def test_strip_formatting_leaves_no_code(text: str) -> None:
    plain = strip_formatting(text)
    assert not set(plain) & FORMATTING_CHARS
    assert strip_formatting(plain) == plain


@FAST
@given(st.text())
def test_strip_formatting_keeps_text_without_codes(text: str) -> None:
    if not set(text) & FORMATTING_CHARS:
        assert strip_formatting(text) == text


def test_strip_formatting_is_linear() -> None:
    text = "\x03" * 200_000 + "\x031," * 100_000 + "\x04" * 100_000
    started = time.perf_counter()
    assert strip_formatting(text) == "," * 100_000
    assert time.perf_counter() - started < 1.0


@FAST
@given(formatted_texts)
def test_clean_from_irc_leaves_only_tab_among_controls(text: str) -> None:
    cleaned = clean_from_irc(text)
    assert all(ch == "\t" or unicodedata.category(ch) != "Cc" for ch in cleaned)


def test_clean_from_irc_examples() -> None:
    assert clean_from_irc("\x02hi\x02\x07 there\x1b[31m\t!\x7f\x85") == "hi there[31m\t!"


# --------------------------------------------------------------------------- CTCP


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("\x01ACTION waves\x01", ("ACTION", "waves")),
        ("\x01ACTION waves", ("ACTION", "waves")),  # the closing \x01 is optional
        ("\x01action waves at  you \x01", ("ACTION", "waves at  you ")),
        ("\x01VERSION\x01", ("VERSION", "")),
        ("\x01PING 1473523796 918320\x01", ("PING", "1473523796 918320")),
        ("\x01ACTION a\x01 trailing junk", ("ACTION", "a")),
        ("\x01ACTION\x01", ("ACTION", "")),
        ("\x01ACTION \x01", ("ACTION", "")),
        ("\x01\x01", None),
        ("\x01", None),
        ("\x01 x\x01", None),
        ("hello", None),
        ("", None),
        (" \x01ACTION x\x01", None),
    ],
)
def test_parse_ctcp(text: str, parsed: tuple[str, str] | None) -> None:
    assert parse_ctcp(text) == parsed


def test_ctcp_action() -> None:
    assert ctcp_action("waves") == "\x01ACTION waves\x01"
    assert ctcp_action("sneaky\x01VERSION") == "\x01ACTION sneakyVERSION\x01"
    assert utf8_len(ctcp_action("x")) == ACTION_OVERHEAD + 1


@FAST
@given(st.text())
def test_ctcp_action_round_trip(text: str) -> None:
    assert parse_ctcp(ctcp_action(text)) == ("ACTION", text.replace("\x01", ""))


# --------------------------------------------------------------------------- budget


def test_privmsg_budget() -> None:
    assert privmsg_budget("n!u@h", "PRIVMSG", "#c") == 512 - len(":n!u@h PRIVMSG #c :\r\n")
    assert privmsg_budget("né!u@h", "NOTICE", "#c") == 512 - len(":né!u@h NOTICE #c :\r\n") - 1


@FAST
@given(
    source=st.from_regex(r"\A[a-zé]{1,20}![a-z]{1,10}@[a-z.]{1,30}\Z"),
    target=st.from_regex(r"\A#?[a-zé😀]{1,30}\Z"),
    command=st.sampled_from(["PRIVMSG", "NOTICE"]),
    text=st.lists(
        st.sampled_from(["a", " ", "é", "😀", "e\u0301", "\t"]), min_size=1, max_size=600
    ).map("".join),
)
def test_split_pieces_fit_a_512_byte_line(
    source: str, target: str, command: str, text: str
) -> None:
    budget = privmsg_budget(source, command, target)
    for piece in split_for_irc(text, budget):
        line = format_message(command, target, piece, source=source)
        assert len(line) <= MAX_MESSAGE
        # A piece that fills the budget makes a line of exactly 512 bytes when sent as trailing.
        trailing = f":{source} {command} {target} :{piece}\r\n".encode()
        assert len(trailing) <= MAX_MESSAGE


# --------------------------------------------------------------------------- splitting


def test_split_short_text_is_one_piece() -> None:
    assert split_for_irc("hello", 400) == ["hello"]
    assert split_for_irc("x" * 400, 400) == ["x" * 400]


def test_split_lines_and_drop_empty_ones() -> None:
    assert split_for_irc("one\ntwo\n\n\nthree\n", 400) == ["one", "two", "three"]
    assert split_for_irc("\n\n", 400) == []
    assert split_for_irc("", 400) == []
    assert split_for_irc("   \n\tx", 400) == ["   ", "\tx"]


def test_split_drops_line_breakers_and_ctcp_marks_but_keeps_tabs() -> None:
    assert split_for_irc("a\r\nb\x00c\rd\x01e\tf", 400) == ["a", "bcde\tf"]
    assert split_for_irc("\r\n\x00\n\x01", 400) == []


def test_split_needs_room_for_a_character() -> None:
    for budget in (-1, 0, 3):
        with pytest.raises(ValueError):
            split_for_irc("abc", budget)
    assert split_for_irc("😀😀", 4) == ["😀", "😀"]
    assert split_for_irc("abcde", 4) == ["abcd", "e"]


def test_split_without_spaces_fills_the_budget() -> None:
    assert split_for_irc("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_prefers_a_space_in_the_last_third() -> None:
    text = "a" * 8 + " " + "b" * 10
    assert split_for_irc(text, 12) == ["a" * 8 + " ", "b" * 10]
    # A piece up to the space would hold 8 bytes of 12: two thirds, so the space wins.
    assert split_for_irc("a" * 7 + " " + "b" * 10, 12) == ["a" * 7 + " ", "b" * 10]
    # Too early in the piece: cut at the budget instead.
    assert split_for_irc("a" * 3 + " " + "b" * 20, 12) == ["aaa bbbbbbbb", "b" * 12]


def test_split_words() -> None:
    words = " ".join(f"word{i}" for i in range(200))
    pieces = split_for_irc(words, 100)
    assert "".join(pieces) == words
    assert all(utf8_len(p) <= 100 for p in pieces)
    assert all(p.endswith(" ") for p in pieces[:-1])  # every cut after a space


def test_split_never_cuts_a_code_point() -> None:
    assert split_for_irc("é" * 10, 5) == ["éé", "éé", "éé", "éé", "éé"]
    assert split_for_irc("😀" * 3, 7) == ["😀", "😀", "😀"]
    assert split_for_irc("a😀" * 3, 6) == ["a😀a", "😀a", "😀"]


def test_split_keeps_combining_marks_with_their_base() -> None:
    text = "e\u0301" * 10  # 3 bytes each
    assert split_for_irc(text, 7) == ["e\u0301" * 2] * 5
    hangul = "\u1100\u1161\u11a8" * 4  # conjoining jamo: 9 bytes a syllable
    assert split_for_irc(hangul, 10) == ["\u1100\u1161\u11a8"] * 4


def test_split_keeps_emoji_sequences_whole() -> None:
    family = "👨\u200d👩\u200d👧"  # 18 bytes
    assert split_for_irc(family * 3, 30) == [family] * 3
    thumbs = "👍🏽"  # with a skin tone modifier: 8 bytes
    assert split_for_irc(thumbs * 3, 12) == [thumbs] * 3
    heart = "❤\ufe0f"  # with a variation selector: 6 bytes
    assert split_for_irc(heart * 3, 10) == [heart] * 3
    flags = "🇫🇷🇩🇪🇯🇵"  # three flags of two regional indicators, 8 bytes each
    assert split_for_irc(flags, 12) == ["🇫🇷", "🇩🇪", "🇯🇵"]
    assert split_for_irc(flags, 20) == ["🇫🇷🇩🇪", "🇯🇵"]
    assert split_for_irc("x" + flags, 12) == ["x🇫🇷", "🇩🇪", "🇯🇵"]


def test_split_cuts_a_cluster_longer_than_the_budget_between_characters() -> None:
    zalgo = "a" + "\u0301" * 100  # 201 bytes in one cluster
    pieces = split_for_irc(zalgo, 50)
    assert "".join(pieces) == zalgo
    assert all(utf8_len(p) <= 50 for p in pieces)
    assert pieces[0] == "a" + "\u0301" * 24


def test_split_is_fast_on_long_hostile_text() -> None:
    texts = [
        "\u0301" * 50_000,
        "🇫" * 50_000,
        ZWJ * 50_000,
        ("👨" + ZWJ) * 20_000,
        "a " * 50_000,
        "é" * 100_000,
    ]
    started = time.perf_counter()
    for text in texts:
        pieces = split_for_irc(text, 400)
        assert "".join(pieces) == text
    assert time.perf_counter() - started < 5.0


def _extends(ch: str) -> bool:
    """What the splitter must not cut before: marks, ZWJ, variation selectors, modifiers."""
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me") or ch == ZWJ or 0x1F3FB <= ord(ch) <= 0x1F3FF
    )


ATOMS = [
    "a",
    "b",
    " ",
    "\t",
    "é",
    "e\u0301",
    "😀",
    "👍🏽",
    "❤\ufe0f",
    "🇫🇷",
    "👨\u200d👩",
    "中",
    "\u0915\u094d\u0937",
]
# a message's text never holds a lone surrogate (the chat's text rule refuses it)
texts_with_specials = st.lists(
    st.sampled_from([*ATOMS, "\n", "\r", "\x00", "\x01"])
    | st.characters(blacklist_categories=["Cs"]),
    max_size=120,
).map("".join)


@FAST
@given(text=texts_with_specials, budget=st.integers(4, 120))
def test_split_pieces_fit_and_give_the_text_back(text: str, budget: int) -> None:
    pieces = split_for_irc(text, budget)
    for piece in pieces:
        assert piece
        assert 0 < utf8_len(piece) <= budget
        assert not set(piece) & {"\n", "\r", "\x00", "\x01"}
        piece.encode("utf-8", "strict")
    kept = text.replace("\r", "").replace("\x00", "").replace("\x01", "")
    assert "".join(pieces) == kept.replace("\n", "")
    assert len(pieces) >= sum(1 for line in kept.split("\n") if line)


@FAST
@given(
    atoms=st.lists(st.sampled_from(ATOMS), min_size=1, max_size=120),
    budget=st.integers(18, 200),
)
def test_split_keeps_clusters_whole_when_they_fit(atoms: list[str], budget: int) -> None:
    text = "".join(atoms)
    pieces = split_for_irc(text, budget)
    assert "".join(pieces) == text
    for piece in pieces:
        assert utf8_len(piece) <= budget
        assert not _extends(piece[0])
        assert not piece.endswith(ZWJ)
    # Every cut falls between two atoms (each atom is at most one cluster).
    bounds = set()
    position = 0
    for atom in atoms:
        position += len(atom)
        bounds.add(position)
    position = 0
    for piece in pieces:
        position += len(piece)
        assert position in bounds


@FAST
@given(
    words=st.lists(st.text(st.sampled_from("abcdé"), min_size=1, max_size=8), min_size=1),
    budget=st.integers(60, 200),
)
def test_split_words_cut_after_spaces(words: list[str], budget: int) -> None:
    # Words take at most 17 bytes with their space, so one always ends in a piece's last third.
    text = " ".join(words)
    pieces = split_for_irc(text, budget)
    assert "".join(pieces) == text
    assert all(p.endswith(" ") for p in pieces[:-1])
