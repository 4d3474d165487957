"""The `search` client frame and the `results` server frame, sans-IO (PROTOCOL.md section 9)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trio_chat.protocol import (
    Message,
    Name,
    ProtocolError,
    Results,
    Search,
    encode,
    parse_client_frame,
    parse_server_frame,
)


def client(**frame: Any) -> Any:
    return parse_client_frame(json.dumps({"type": "search", **frame}).encode())


def test_search_defaults_and_fields() -> None:
    assert client(query="cafe") == Search("cafe")
    frame = client(query="x", room="Lobby", **{"from": "Ritam"}, before=9, limit=100, id="q")
    assert frame == Search(
        "x", room=Name("Lobby", "lobby"), from_=Name("Ritam", "ritam"), before=9, limit=100, id="q"
    )
    assert client(query="x", **{"with": "Ritam"}).with_ == Name("Ritam", "ritam")


def test_search_round_trips() -> None:
    frame = Search("a b*", with_=Name("Ritam", "ritam"), from_=Name("S", "s"), before=3, id=7)
    assert parse_client_frame(encode(frame)[:-1]) == frame


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"query": ""},
        {"query": "é" * 201},
        {"query": "\ud800"},
        {"query": "x", "room": "a", "with": "b"},
        {"query": "x", "limit": 101},
        {"query": "x", "before": 0},
    ],
)
def test_bad_search_frames_carry_re(fields: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as caught:
        client(id="r", **fields)
    assert caught.value.code == "invalid_field" and caught.value.re == "r"


def test_a_query_of_200_composed_characters_is_allowed() -> None:
    assert client(query="e\u0301" * 200).query == "e\u0301" * 200  # NFC: 200 characters


def test_results_round_trip() -> None:
    hit = Message(5, "Souvik", "un café", "2026-11-24T22:00:00.123Z", room="lobby")
    dm = Message(7, "Ritam", "hi", "2026-11-24T22:00:01.000Z", to="Souvik", edited="x")
    results = Results("café", (dm, hit), more=True, re="q")
    wire = encode(results)
    assert json.loads(wire)["messages"][0]["to"] == "Souvik"
    assert parse_server_frame(wire[:-1]) == results


def test_results_hold_messages_only() -> None:
    line = json.dumps(
        {
            "type": "results",
            "query": "x",
            "messages": [{"type": "delete", "id": 2, "room": "r", "message": 1, "by": "a",
                          "ts": "t"}],
            "more": False,
        }
    )  # fmt: skip
    with pytest.raises(ProtocolError) as caught:
        parse_server_frame(line.encode())
    assert caught.value.code == "bad_frame"
