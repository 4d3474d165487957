"""`search` and `results` over the JSON door (PROTOCOL.md section 9), end to end.

A real server in-process with a real SQLite file; the clients speak raw JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chat_client import ChatClient, login
from harness import RunningServer

from trio_chat import store as store_module

pytestmark = pytest.mark.trio

PW = "correct horse battery"


async def answer(client: ChatClient, rid: str) -> dict[str, Any]:
    """The frame that carries `re` = rid (others are skipped)."""
    while True:
        frame = await client.recv()
        if frame.get("re") == rid:
            return frame


async def search(client: ChatClient, rid: str = "q", **fields: Any) -> dict[str, Any]:
    await client.send(type="search", id=rid, **fields)
    return await answer(client, rid)


def texts(results: dict[str, Any]) -> list[str]:
    assert results["type"] == "results", results
    return [m["text"] for m in results["messages"]]


async def test_welcome_announces_search(server: RunningServer) -> None:
    c = await ChatClient.connect(server.port)
    assert "search" in (await c.hello("Souvik"))["features"]


async def test_results_have_the_documented_shape(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby", "kitchen")
    first = await a.say("lobby", "un Café noir")
    await a.say("lobby", "tea only")
    last = await a.say("kitchen", "CAFE au lait")
    r = await search(a, query="cafe")
    assert r == {
        "type": "results",
        "query": "cafe",
        "messages": [
            {k: v for k, v in last.items() if k != "re"},
            {k: v for k, v in first.items() if k != "re"},
        ],
        "more": False,
        "re": "q",
    }


async def test_scope_is_the_rooms_one_is_in_now(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "secret", "lobby")
    await a.say("secret", "hidden walnut")
    await a.say("lobby", "open walnut")
    b = await login(server.port, "Ritam", "lobby")
    assert texts(await search(b, query="walnut")) == ["open walnut"]
    assert texts(await search(a, query="walnut", room="secret")) == ["hidden walnut"]
    r = await search(b, query="walnut", room="secret")
    assert (r["type"], r["code"]) == ("error", "not_in_room")
    await a.send(type="part", room="secret")
    await a.expect("left")
    assert texts(await search(a, query="walnut")) == ["open walnut"]


async def test_direct_conversations_need_an_account(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", password=PW)
    b = await login(server.port, "Ritam")
    await a.send(type="say", to="Ritam", text="private pear", id="d1")
    await answer(a, "d1")
    assert texts(await search(a, query="pear")) == ["private pear"]
    assert texts(await search(a, query="pear", **{"with": "ritam"})) == ["private pear"]
    assert texts(await search(a, query="pear", **{"with": "Nobody"})) == []
    r = await search(b, query="pear", **{"with": "Souvik"})
    assert (r["type"], r["code"]) == ("error", "auth_required")
    assert texts(await search(b, query="pear")) == []  # a guest searches its rooms only


async def test_from_before_limit_more(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby")
    b = await login(server.port, "Ritam", "lobby")
    ids = []
    for n in range(4):
        ids.append((await a.say("lobby", f"plum {n}"))["id"])
        await b.say("lobby", f"plum from Ritam {n}")
    r = await search(a, query="plum", **{"from": "SOUVIK"}, limit=2)
    assert [m["id"] for m in r["messages"]] == [ids[3], ids[2]] and r["more"] is True
    r = await search(a, query="plum", **{"from": "Souvik"}, limit=2, before=ids[2])
    assert [m["id"] for m in r["messages"]] == [ids[1], ids[0]] and r["more"] is False
    r = await search(a, query="plum")
    assert len(r["messages"]) == 8 and r["more"] is False


async def test_edits_and_deletions(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby", password=PW)
    said = await a.say("lobby", "meet at the harbour")
    gone = await a.say("lobby", "meet at the mill")
    await a.send(type="edit", message=said["id"], text="meet at the station", id="e")
    await answer(a, "e")
    await a.send(type="delete", message=gone["id"], id="d")
    await answer(a, "d")
    r = await search(a, query="meet")
    assert [(m["id"], m["text"]) for m in r["messages"]] == [(said["id"], "meet at the station")]
    assert "edited" in r["messages"][0]
    assert texts(await search(a, query="harbour")) == []
    assert texts(await search(a, query="mill")) == []


async def test_prefix_phrase_and_syntax_taken_literally(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby")
    await a.say("lobby", "the quick brown fox")
    await a.say("lobby", "NEAR OR NOT")
    assert texts(await search(a, query="qui* fo*")) == ["the quick brown fox"]
    assert texts(await search(a, query='"brown quick"')) == []
    assert texts(await search(a, query='"quick brown"')) == ["the quick brown fox"]
    assert texts(await search(a, query="NOT OR")) == ["NEAR OR NOT"]
    for rid, query in enumerate(['"*()^:NEAR OR' * 15, "*" * 200, '"', "()", "- + ^ : { }"]):
        r = await search(a, str(rid), query=query[:200])
        assert r["type"] == "results" and r["query"] == query[:200], r


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({}, "invalid_field"),
        ({"query": ""}, "invalid_field"),
        ({"query": "x" * 201}, "invalid_field"),
        ({"query": 5}, "invalid_field"),
        ({"query": None}, "invalid_field"),
        ({"query": ["cafe"]}, "invalid_field"),
        ({"query": "cafe", "room": "lobby", "with": "Ritam"}, "invalid_field"),
        ({"query": "cafe", "room": "bad room"}, "room_invalid"),
        ({"query": "cafe", "room": 7}, "invalid_field"),
        ({"query": "cafe", "with": "x" * 33}, "name_invalid"),
        ({"query": "cafe", "from": ""}, "name_invalid"),
        ({"query": "cafe", "from": None}, "invalid_field"),
        ({"query": "cafe", "before": 0}, "invalid_field"),
        ({"query": "cafe", "before": -3}, "invalid_field"),
        ({"query": "cafe", "before": 1.5}, "invalid_field"),
        ({"query": "cafe", "before": "9"}, "invalid_field"),
        ({"query": "cafe", "before": 2**53 + 1}, "invalid_field"),
        ({"query": "cafe", "limit": 0}, "invalid_field"),
        ({"query": "cafe", "limit": 101}, "invalid_field"),
        ({"query": "cafe", "limit": True}, "invalid_field"),
        ({"query": "cafe", "limit": "20"}, "invalid_field"),
    ],
)
async def test_bad_fields_are_refused_and_change_nothing(
    server: RunningServer, fields: dict[str, Any], code: str
) -> None:
    a = await login(server.port, "Souvik", "lobby")
    said = await a.say("lobby", "un cafe")
    r = await search(a, **fields)
    assert (r["type"], r["code"]) == ("error", code), r
    assert r["message"]
    assert texts(await search(a, "ok", query="cafe")) == ["un cafe"]
    await a.send(type="history", room="lobby", id="h")
    assert [m["id"] for m in (await answer(a, "h"))["messages"]] == [said["id"]]


async def test_search_before_welcome(server: RunningServer) -> None:
    c = await ChatClient.connect(server.port)
    r = await search(c, query="cafe")
    assert (r["type"], r["code"]) == ("error", "handshake_required")


async def test_limit_bounds(server: RunningServer) -> None:
    a = await login(server.port, "Souvik", "lobby")
    for n in range(3):
        await a.say("lobby", f"kiwi {n}")
    r = await search(a, query="kiwi", limit=1)
    assert texts(r) == ["kiwi 2"] and r["more"] is True
    r = await search(a, query="kiwi", limit=100)
    assert texts(r) == ["kiwi 2", "kiwi 1", "kiwi 0"] and r["more"] is False


async def test_a_search_too_broad_to_answer_in_time_is_refused(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await login(server.port, "Souvik", "lobby")
    for n in range(60):
        await a.send(type="say", room="lobby", text=f"fig {n}")
    await a.say("lobby", "fig last")
    real: Callable[..., Any] = store_module._search

    def hurried(*args: Any) -> Any:
        return real(*args[:-1], -1.0)  # its time is up before it starts

    monkeypatch.setattr(store_module, "_search", hurried)
    r = await search(a, query="fig", limit=100)
    assert (r["type"], r["code"]) == ("error", "invalid_field") and "query" in r["message"]
    monkeypatch.undo()
    assert len((await search(a, "again", query="fig", limit=100))["messages"]) == 61
