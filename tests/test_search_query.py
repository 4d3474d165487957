"""The search query language (trio_chat.core.search): words, prefixes, phrases, and safety.

Every expression is also run against a real in-memory FTS5 table made with the
store's tokenizer: whatever the query, FTS5 accepts the expression.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_chat.core.search import MAX_QUERY, match_expression, terms, words

TEXTS = [
    "un Café noir",
    "tea only",
    "CAFE au lait",
    "e-mail me at noon",
    "the quick brown fox",
    "brown quick the fox",
    "NEAR OR AND NOT",
    'she said "hi" (twice)',
    "naïve résumé",
    "x_y z",
]


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize='unicode61 remove_diacritics 2')")
    db.executemany("INSERT INTO t (rowid, text) VALUES (?, ?)", enumerate(TEXTS, 1))
    yield db
    db.close()


def found(db: sqlite3.Connection, query: str) -> list[str]:
    """The texts a query finds, in table order; none when it has no word."""
    match = match_expression(query)
    if match is None:
        return []
    rows = db.execute("SELECT text FROM t WHERE t MATCH ? ORDER BY rowid", (match,))
    return [row[0] for row in rows]


def test_words_split_like_unicode61() -> None:
    assert words("e-mail, NEAR(a b)") == [("e", False), ("mail", False), ("NEAR", False),
                                          ("a", False), ("b", False)]  # fmt: skip
    assert words("caf* x") == [("caf", True), ("x", False)]
    assert words("x\u0301y \u0301z") == [("x\u0301y", False), ("z", False)]  # marks go on a word
    assert words("٣٤ 北京") == [("٣٤", False), ("北京", False)]


def test_every_token_is_quoted() -> None:
    assert match_expression("cafe") == '"cafe"'
    assert match_expression("Café noir") == '"Café" AND "noir"'
    assert match_expression("caf*") == '"caf" *'
    assert match_expression('"hello wor"*') == '"hello wor" *'
    assert match_expression('"hello wor*"') == '"hello wor" *'
    assert match_expression("a AND (b OR c) NOT d") == (
        '"a" AND "AND" AND "b" AND "OR" AND "c" AND "NOT" AND "d"'
    )
    assert terms('one "two three" four*') == ['"one"', '"two three"', '"four" *']


@pytest.mark.parametrize("query", ["", " ", "***", '""', '"*()^:', "-+{}()", "\u0301", "\x00"])
def test_a_query_without_words_has_no_expression(query: str) -> None:
    assert match_expression(query) is None


def test_an_unclosed_quote_runs_to_the_end() -> None:
    assert match_expression('tea "only') == '"tea" AND "only"'
    assert match_expression('"quick brown') == '"quick brown"'


def test_case_and_accents_are_folded(fts: sqlite3.Connection) -> None:
    assert found(fts, "cafe") == ["un Café noir", "CAFE au lait"]
    assert found(fts, "CAFÉ") == ["un Café noir", "CAFE au lait"]
    assert found(fts, "NAIVE resume") == ["naïve résumé"]


def test_every_word_must_occur(fts: sqlite3.Connection) -> None:
    assert found(fts, "cafe noir") == ["un Café noir"]
    assert found(fts, "cafe tea") == []


def test_prefix(fts: sqlite3.Connection) -> None:
    assert found(fts, "caf*") == ["un Café noir", "CAFE au lait"]
    assert found(fts, "qui* fo*") == ["the quick brown fox", "brown quick the fox"]
    assert found(fts, "caf") == []


def test_phrase(fts: sqlite3.Connection) -> None:
    assert found(fts, '"quick brown"') == ["the quick brown fox"]
    assert found(fts, '"brown quick"') == ["brown quick the fox"]
    assert found(fts, '"quick bro"*') == ["the quick brown fox"]
    assert found(fts, "e-mail") == ["e-mail me at noon"]


def test_syntax_is_literal_text(fts: sqlite3.Connection) -> None:
    assert found(fts, "NEAR OR") == ["NEAR OR AND NOT"]
    assert found(fts, "NOT tea") == []  # NOT is a word here, not an operator
    assert found(fts, "hi (twice)") == ['she said "hi" (twice)']
    assert found(fts, "text:tea") == []  # no column filter: "text" is a word
    assert found(fts, "^tea") == ["tea only"]


SYNTAX = st.text(alphabet="\"*()^:-+{}NEARORADT ,.\\'", max_size=MAX_QUERY)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=MAX_QUERY), SYNTAX))
def test_any_query_gives_an_expression_fts5_accepts(query: str) -> None:
    db = sqlite3.connect(":memory:")
    try:
        db.execute(
            "CREATE VIRTUAL TABLE t USING fts5(text, tokenize='unicode61 remove_diacritics 2')"
        )
        db.executemany("INSERT INTO t (text) VALUES (?)", [(text,) for text in TEXTS])
        match = match_expression(query)
        if match is not None:
            db.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,)).fetchall()
    finally:
        db.close()


LATIN = st.text(alphabet="abcdeéèçñøABCÉ0123456789 -_.,;!?'()", min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(LATIN)
def test_a_text_is_found_by_its_own_words(text: str) -> None:
    db = sqlite3.connect(":memory:")
    try:
        db.execute(
            "CREATE VIRTUAL TABLE t USING fts5(text, tokenize='unicode61 remove_diacritics 2')"
        )
        db.execute("INSERT INTO t (text) VALUES (?)", (text,))
        match = match_expression(text)
        if match is not None:
            assert db.execute("SELECT count(*) FROM t WHERE t MATCH ?", (match,)).fetchone()[0]
            phrase = match_expression(f'"{text}"')
            assert phrase is not None
            assert db.execute("SELECT count(*) FROM t WHERE t MATCH ?", (phrase,)).fetchone()[0]
    finally:
        db.close()
