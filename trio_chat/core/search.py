"""The search query language (PROTOCOL.md section 9), turned into a safe FTS5 MATCH expression.

What users type: words, every one of which must occur; a word ending in `*` is a
prefix; words in double quotes are a phrase (a `*` right after its last word or
after its closing quote makes that last word a prefix). Words are split as
SQLite's unicode61 tokenizer splits them: a word starts with a letter, a digit
or a private-use character and goes on with those and combining marks; all
else separates words. So whatever means something to FTS5 (AND OR NOT NEAR ^
: ( ) - + { } ...) is taken as plain text, which in practice means it separates
words. Every word is sent to FTS5 quoted (`"word"`, a prefix `"word" *`), and
FTS5 folds case and accents of the query as it did of the messages.

A query without any word (only punctuation, say) has no expression: the
caller answers it with an empty result, not an error. An unclosed `"` opens a
phrase that runs to the end of the query. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Final

MAX_QUERY: Final = 200  # characters of a search query
SEARCH_LIMIT: Final = 100  # results in one answer, at most
SEARCH_DEFAULT_LIMIT: Final = 20


@lru_cache(maxsize=4096)
def _kind(char: str) -> int:
    """2: starts or continues a word (L*, N*, Co); 1: only continues one (M*); 0: separates."""
    category = unicodedata.category(char)
    if category[0] in "LN" or category == "Co":
        return 2
    return 1 if category[0] == "M" else 0


def words(text: str) -> list[tuple[str, bool]]:
    """The words of a stretch of query, each with whether a `*` follows it right away."""
    found: list[tuple[str, bool]] = []
    start = -1
    for index, char in enumerate(text):
        kind = _kind(char)
        if start < 0:
            if kind == 2:
                start = index
        elif not kind:
            found.append((text[start:index], char == "*"))
            start = -1
    if start >= 0:
        found.append((text[start:], False))
    return found


def quote(text: str) -> str:
    """An FTS5 string: the text between double quotes, an inner `"` doubled."""
    return '"' + text.replace('"', '""') + '"'


def terms(query: str) -> list[str]:
    """The FTS5 terms of a query, one per word or phrase, in the order typed."""
    found: list[str] = []
    position, end = 0, len(query)
    while position < end:
        if query[position] == '"':
            close = query.find('"', position + 1)
            close = end if close < 0 else close
            phrase = words(query[position + 1 : close])
            position = close + 1
            starred = position < end and query[position] == "*"
            if starred:
                position += 1
            if phrase:
                prefix = starred or phrase[-1][1]
                found.append(quote(" ".join(word for word, _ in phrase)) + (" *" if prefix else ""))
        else:
            close = query.find('"', position)
            close = end if close < 0 else close
            for word, prefix in words(query[position:close]):
                found.append(quote(word) + (" *" if prefix else ""))
            position = close
    return found


def match_expression(query: str) -> str | None:
    """The FTS5 MATCH expression every message must satisfy; None: the query has no word."""
    found = terms(query)
    return " AND ".join(found) if found else None
