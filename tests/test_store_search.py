"""`Store.search` on a real SQLite file: folding, prefixes, phrases, edits, deletions, scope,
paging (`before`, `limit`, `more`), and a query plan driven by the full-text index."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest
import trio

from trio_chat.core.search import match_expression
from trio_chat.protocol import Entry, Message, Name
from trio_chat.store import (
    Draft,
    SearchTooBroad,
    Store,
    StoreUnavailable,
    _search_query,
    direct_conv,
    room_conv,
)

pytestmark = pytest.mark.trio

LIMIT = 5  # seconds: every test is far faster than this
END = 2**53  # a `before` past every id


def nm(spelling: str) -> Name:
    return Name(spelling, spelling.lower())


ALICE, BOB, CAROL = nm("Alice"), nm("Bob"), nm("Carol")
GENERAL, RANDOM = nm("General"), nm("random")
ROOMS = [room_conv("general"), room_conv("random")]


def no_failure(batch: list[Draft], error: StoreUnavailable) -> None:
    raise AssertionError(f"{len(batch)} drafts failed: {error}")


@asynccontextmanager
async def running(path: Path) -> AsyncIterator[Store]:
    """An open store with its writer running; on exit: stop, the writer returns, close."""
    store = Store.open(path)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run, lambda batch: None, no_failure)
            yield store
            store.stop()
    finally:
        store.close()


async def put(store: Store, *drafts: Draft) -> list[int]:
    """Commit drafts; their ids."""
    first = store.last_id + 1
    for draft in drafts:
        await store.submit(draft)
    await store.drain()
    return list(range(first, first + len(drafts)))


def say(sender: Name, text: str, room: Name = GENERAL) -> Draft:
    return Draft(sender, text, room=room, account=True)


async def find(
    store: Store,
    query: str,
    convs: list[str] = ROOMS,
    party: str | None = None,
    *,
    before: int = END,
    limit: int = 20,
    first_id: int = 1,
    sender: str | None = None,
) -> tuple[list[Message], bool]:
    match = match_expression(query)
    assert match is not None
    entries, more = await store.search(
        convs, party, match, before=before, limit=limit, first_id=first_id, sender=sender
    )
    return only_messages(entries), more


def only_messages(entries: list[Entry]) -> list[Message]:
    assert all(isinstance(e, Message) for e in entries)
    return [e for e in entries if isinstance(e, Message)]


def texts(found: tuple[list[Message], bool]) -> list[str]:
    return [m.text for m in found[0]]


async def test_case_and_accents_are_folded_newest_first(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as store:
            await put(
                store, say(ALICE, "un Café noir"), say(BOB, "tea"), say(ALICE, "CAFE au lait")
            )
            assert texts(await find(store, "cafe")) == ["CAFE au lait", "un Café noir"]
            assert texts(await find(store, "CAFÉ")) == ["CAFE au lait", "un Café noir"]
            assert texts(await find(store, "café noir")) == ["un Café noir"]
            assert texts(await find(store, "cafe tea")) == []


async def test_prefix_and_phrase(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as store:
            await put(store, say(ALICE, "the quick brown fox"), say(BOB, "brown quick dogs"))
            assert texts(await find(store, "qui*")) == ["brown quick dogs", "the quick brown fox"]
            assert texts(await find(store, "qui")) == []
            assert texts(await find(store, '"quick brown"')) == ["the quick brown fox"]
            assert texts(await find(store, '"brown qu"*')) == ["brown quick dogs"]
            assert texts(await find(store, '(quick) OR: "fox')) == []  # OR is a word here
            assert texts(await find(store, '^(quick) +"fox')) == ["the quick brown fox"]


async def test_an_edit_is_found_by_its_new_text_only(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as store:
            (said,) = await put(store, say(ALICE, "meet at the harbour"))
            conv = room_conv("general")
            edit = Draft(ALICE, "meet at the station", room=GENERAL, kind="edit", target=said,
                         conv=conv, account=True)  # fmt: skip
            await put(store, edit)
            assert texts(await find(store, "harbour")) == []
            found, _ = await find(store, "station")
            assert [(m.id, m.text) for m in found] == [(said, "meet at the station")]
            assert found[0].edited is not None
            # the edit entry itself is no search hit: only messages are
            assert [m.id for m in (await find(store, "meet"))[0]] == [said]


async def test_a_deleted_message_is_never_found(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as store:
            kept, gone = await put(store, say(ALICE, "secret plan A"), say(ALICE, "secret plan B"))
            conv = room_conv("general")
            await put(
                store,
                Draft(ALICE, "secret plan C", room=GENERAL, kind="edit", target=gone, conv=conv),
                Draft(ALICE, "", room=GENERAL, kind="delete", target=gone, conv=conv),
            )
            assert [m.id for m in (await find(store, "secret"))[0]] == [kept]
            assert texts(await find(store, "C")) == []
            assert texts(await find(store, "B")) == []


async def test_scope_rooms_direct_first_id_and_sender(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as store:
            old_dm, in_general, in_random, new_dm, other_dm, in_other = await put(
                store,
                Draft(BOB, "apple for the guest", to=ALICE),
                say(ALICE, "apple in general"),
                say(BOB, "apple in random", RANDOM),
                Draft(BOB, "apple for the account", to=ALICE),
                Draft(BOB, "apple for carol", to=CAROL),
                say(CAROL, "apple elsewhere", nm("elsewhere")),
            )

            async def ids(*args: object, **kw: object) -> list[int]:
                return [m.id for m in (await find(store, "apple", *args, **kw))[0]]  # type: ignore[arg-type]

            assert await ids() == [in_random, in_general]
            assert await ids([room_conv("random")]) == [in_random]
            assert await ids([]) == []
            assert await ids(ROOMS, "alice") == [new_dm, in_random, in_general, old_dm]
            assert await ids(ROOMS, "alice", first_id=new_dm) == [new_dm, in_random, in_general]
            assert await ids([], "carol") == [other_dm]
            assert await ids([direct_conv("alice", "bob")], first_id=in_general) == [new_dm]
            assert await ids(ROOMS, "alice", sender="bob") == [new_dm, in_random, old_dm]
            assert in_other not in await ids(ROOMS, "carol")


async def test_before_limit_and_more(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as store:
            ids = await put(store, *(say(ALICE, f"page {n}") for n in range(5)))
            await put(store, say(ALICE, "something else"))
            found, more = await find(store, "page", limit=2)
            assert [m.id for m in found] == ids[4:2:-1] and more
            found, more = await find(store, "page", limit=2, before=ids[3])
            assert [m.id for m in found] == ids[2:0:-1] and more
            found, more = await find(store, "page", limit=2, before=ids[1])
            assert [m.id for m in found] == [ids[0]] and not more
            found, more = await find(store, "page", limit=5)
            assert len(found) == 5 and not more
            assert (await find(store, "page", before=1)) == ([], False)


@pytest.mark.parametrize("party", [None, "alice"])
@pytest.mark.parametrize("sender", [None, "bob"])
async def test_the_index_drives_the_query(
    tmp_path: Path, party: str | None, sender: str | None
) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as store:
            await put(store, say(ALICE, "hello"))
    sql, params = _search_query(ROOMS, party, '"hello" AND "w" *', END, 21, 1, sender)
    with closing(sqlite3.connect(tmp_path / "chat.db")) as db:
        assert db.execute(sql, params).fetchall() == []
        plan = " | ".join(str(row[-1]) for row in db.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert plan.startswith("SCAN messages_fts VIRTUAL TABLE"), plan
    assert "SEARCH m USING INTEGER PRIMARY KEY" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # newest first straight from the index, no sort


async def test_a_search_past_its_time_is_stopped(tmp_path: Path) -> None:
    with trio.fail_after(LIMIT):
        async with running(tmp_path / "chat.db") as store:
            await put(store, *(say(ALICE, f"fig {n}") for n in range(300)))
            match = match_expression("fig")
            assert match is not None
            with pytest.raises(SearchTooBroad):
                await store.search(ROOMS, None, match, before=END, limit=100, seconds=-1.0)
            # the reader is left as it was: the next search runs to its end
            found, more = await store.search(ROOMS, None, match, before=END, limit=100)
            assert len(found) == 100 and more
