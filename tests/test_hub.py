"""The hub without SQLite or sockets: ordering, seamless join, per-batch fan-out, slow consumer."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from trio_chat.core.errors import ChatError
from trio_chat.hub import Hub, Member
from trio_chat.outbox import Outbox
from trio_chat.protocol import Bye, LeaveReason, Message, Name, name_key
from trio_chat.store import Draft, Stored

pytestmark = pytest.mark.trio


class FakeOwner:
    """Stands in for a session: records what the hub asks of it."""

    def __init__(self) -> None:
        self.overflows = 0
        self.refused: list[tuple[Any, str]] = []
        self.closed_with: list[tuple[Bye | None, LeaveReason | None]] = []

    def close(self, bye: Bye | None = None, leave: LeaveReason | None = None) -> None:
        self.closed_with.append((bye, leave))

    def overflow(self) -> None:
        self.overflows += 1

    def refuse(self, re: Any, error: ChatError) -> None:
        self.refused.append((re, error.code))


def name(text: str) -> Name:
    return Name(text, name_key(text))


def member(text: str, limit: int = 1000) -> Member:
    # patience 0: the frame bound holds at once (its patience is tested in test_outbox)
    return Member(name(text), Outbox(limit, patience=0), FakeOwner())


def frames(m: Member) -> list[dict[str, Any]]:
    """Everything queued for a member so far, decoded, and the outbox emptied."""
    out = m.outbox
    data = b"".join(out._chunks)
    out._chunks.clear()
    out._counts.clear()
    out.frames = out.nbytes = 0
    return [json.loads(line) for line in data.splitlines()]


def items(m: Member) -> int:
    return len(m.outbox._chunks)


class Batches:
    """Makes committed batches the way the store would: global ids, one ts per batch."""

    def __init__(self) -> None:
        self.next_id = 1

    def room(self, sender: Member, room: str, text: str, re: Any = None) -> Stored:
        message = Message(self.next_id, sender.name.spelling, text, "ts", room=room)
        self.next_id += 1
        return Stored(Draft(sender.name, text, room=name(room), re=re, origin=sender), message)

    def direct(self, sender: Member, to: Member, text: str, re: Any = None) -> Stored:
        message = Message(self.next_id, sender.name.spelling, text, "ts", to=to.name.spelling)
        self.next_id += 1
        return Stored(
            Draft(sender.name, text, to=to.name, re=re, origin=sender, recipient=to), message
        )


def joined(hub: Hub, m: Member, room: str) -> tuple[list[str], int]:
    hub_room, names, boundary = hub.join(m, name(room))
    hub.release(m, hub_room)
    return names, boundary


async def test_a_batch_reaches_each_member_as_one_item_in_id_order() -> None:
    hub, make = Hub(), Batches()
    a, b, c = member("a"), member("b"), member("c")
    for m in (a, b, c):
        hub.claim(m)
        joined(hub, m, "lobby")
    hub.flush()
    for m in (a, b, c):
        frames(m)
    hub.publish([make.room(a, "lobby", f"t{n}") for n in range(10)])
    for m in (b, c):
        assert items(m) == 1
        got = frames(m)
        assert [f["text"] for f in got] == [f"t{n}" for n in range(10)]
        assert [f["id"] for f in got] == list(range(1, 11))
    assert hub.last_id == 10


async def test_only_the_sender_gets_re_on_its_own_messages() -> None:
    hub, make = Hub(), Batches()
    a, b = member("a"), member("b")
    joined(hub, a, "lobby")
    joined(hub, b, "lobby")
    hub.flush()
    frames(a), frames(b)
    hub.publish([make.room(b, "lobby", "x"), make.room(a, "lobby", "mine", re="r1")])
    assert [f.get("re") for f in frames(a)] == [None, "r1"]
    assert [f.get("re") for f in frames(b)] == [None, None]


async def test_a_sender_who_left_still_gets_its_answer() -> None:
    hub, make = Hub(), Batches()
    a, b = member("a"), member("b")
    joined(hub, a, "lobby")
    joined(hub, b, "lobby")
    accepted = make.room(a, "lobby", "bye all", re=5)
    hub.part(a, "lobby")
    hub.flush()
    frames(a), frames(b)
    hub.publish([accepted])
    assert [(f["text"], f["re"]) for f in frames(a)] == [("bye all", 5)]
    assert [f["text"] for f in frames(b)] == ["bye all"]


async def test_presence_goes_to_the_others_with_its_reason() -> None:
    hub = Hub()
    a, b = member("a"), member("B")
    joined(hub, a, "Lobby")
    names, _ = joined(hub, b, "lobby")
    assert names == ["a", "B"]
    hub.flush()
    assert frames(b) == []
    (presence,) = frames(a)
    assert presence["type"] == "presence" and presence["room"] == "Lobby"
    assert presence["name"] == "B" and presence["state"] == "joined" and "reason" not in presence
    hub.disconnect(b, "timeout")
    hub.flush()
    (left,) = frames(a)
    assert (left["state"], left["reason"]) == ("left", "timeout")
    assert hub.online(name("b")) is None


async def test_presence_of_many_joins_is_batched() -> None:
    hub = Hub()
    first = member("first")
    joined(hub, first, "lobby")
    for n in range(50):
        joined(hub, member(f"m{n}"), "lobby")
    hub.flush()
    assert items(first) == 1
    assert [f["name"] for f in frames(first)] == [f"m{n}" for n in range(50)]


async def test_a_member_joining_mid_batch_sees_only_what_comes_after_it() -> None:
    hub = Hub()
    a, b, c = member("a"), member("b"), member("c")
    joined(hub, a, "lobby")
    joined(hub, b, "lobby")  # presence pending for a
    joined(hub, c, "lobby")  # presence pending for a and b
    hub.flush()
    assert [f["name"] for f in frames(a)] == ["b", "c"]
    assert [f["name"] for f in frames(b)] == ["c"]
    assert frames(c) == []


async def test_join_holds_live_messages_until_release() -> None:
    """Seamless join: history up to the boundary, live after it, the joined answer first."""
    hub, make = Hub(), Batches()
    a, b = member("a"), member("b")
    joined(hub, a, "lobby")
    hub.publish([make.room(a, "lobby", "before")])
    room, _, boundary = hub.join(b, name("lobby"))
    assert boundary == 1  # "before" is history
    hub.publish([make.room(a, "lobby", "during")])  # while b reads history
    assert frames(b) == []
    b.outbox.put(b'{"type":"joined"}\n')
    hub.release(b, room)
    assert [f.get("text", f["type"]) for f in frames(b)] == ["joined", "during"]


async def test_a_rejoin_is_a_resume_without_presence() -> None:
    hub = Hub()
    a, b = member("a"), member("b")
    joined(hub, a, "lobby")
    joined(hub, b, "lobby")
    hub.flush()
    frames(a)
    joined(hub, b, "lobby")
    hub.flush()
    assert frames(a) == []


async def test_direct_messages_reach_recipient_and_sender() -> None:
    hub, make = Hub(), Batches()
    a, b, c = member("a"), member("b"), member("c")
    for m in (a, b, c):
        hub.claim(m)
    hub.publish([make.direct(a, b, "psst", re="d1"), make.direct(a, a, "self", re="d2")])
    assert [(f["text"], f.get("re")) for f in frames(a)] == [("psst", "d1"), ("self", "d2")]
    assert [(f["text"], f["to"], f["from"]) for f in frames(b)] == [("psst", "b", "a")]
    assert frames(c) == []


async def test_a_repeated_nonce_goes_to_the_sender_alone() -> None:
    hub, make = Hub(), Batches()
    a, b = member("a"), member("b")
    joined(hub, a, "lobby")
    joined(hub, b, "lobby")
    first = make.room(a, "lobby", "once", re=1)
    hub.publish([first])
    hub.flush()
    frames(a), frames(b)
    again = Stored(Draft(a.name, "once", room=name("lobby"), re=2, origin=a), first.message, True)
    hub.publish([again])
    assert frames(b) == []
    assert [(f["id"], f["re"]) for f in frames(a)] == [(first.message.id, 2)]
    assert hub.last_id == first.message.id


async def test_a_full_outbox_calls_overflow_and_spares_the_others() -> None:
    hub, make = Hub(), Batches()
    slow, fast = member("slow", limit=5), member("fast", limit=5)
    joined(hub, slow, "lobby")
    joined(hub, fast, "lobby")
    hub.flush()
    frames(slow), frames(fast)
    for n in range(4):
        hub.publish([make.room(fast, "lobby", f"t{n}")])
        assert len(frames(fast)) == 1  # fast keeps up
    assert slow.outbox.frames == 4
    hub.publish([make.room(fast, "lobby", "t4"), make.room(fast, "lobby", "t5")])
    assert isinstance(slow.owner, FakeOwner) and slow.owner.overflows == 1
    assert len(frames(fast)) == 2


async def test_one_big_item_fits_an_outbox_that_has_kept_up() -> None:
    outbox = Outbox(3, patience=0)
    assert outbox.put(b"x\n" * 10, 10)  # empty: a whole batch is taken
    assert not outbox.put(b"y\n", 1)
    taken = await outbox.take()
    assert taken == (b"x\n" * 10, 10)
    outbox.sent(10)
    assert outbox.put(b"y\n", 1)


async def test_room_batches_stay_below_the_bound() -> None:
    """Guarantee 4: the hub flushes a room before its pending frames pass max_batch."""
    hub = Hub(max_batch=4)
    first = member("first")
    joined(hub, first, "lobby")
    for n in range(10):
        joined(hub, member(f"m{n}"), "lobby")
    hub.flush()
    sizes = [chunk.count(b"\n") for chunk in first.outbox._chunks]
    assert sum(sizes) == 10 and max(sizes) <= 4


async def test_outbox_take_waits_and_close_sends_bye_last() -> None:
    outbox = Outbox(10)
    got: list[tuple[bytes, int] | None] = []

    async def writer() -> None:
        while True:
            item = await outbox.take()
            got.append(item)
            if item is None:
                return
            outbox.sent(item[1])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        outbox.put(b"a\n")
        outbox.put(b"b\n")
        await trio.testing.wait_all_tasks_blocked()
        outbox.put(b"c\n")
        outbox.close(b"bye\n")
        assert outbox.put(b"dropped\n")  # closed: taken and dropped
    assert got == [(b"a\nb\n", 2), (b"c\nbye\n", 1), None]


async def test_rooms_list_counts_members_and_keeps_rooms_with_history() -> None:
    hub = Hub(known_rooms={"archive": "Archive"})
    a = member("a")
    joined(hub, a, "zeta")
    joined(hub, a, "Beta")
    assert hub.room_list() == ([("Archive", 0), ("Beta", 1), ("zeta", 1)], False)
    assert hub.members(name("BETA")) == ("Beta", ["a"])
    assert hub.members(name("ARCHIVE")) == ("Archive", [])
    hub.disconnect(a, "quit")
    assert hub.room_list() == ([("Archive", 0)], False)
    assert hub.room_name(name("archive")).spelling == "Archive"


async def test_claim_returns_the_previous_holder() -> None:
    hub = Hub()
    old, new = member("Souvik"), member("souvik")
    assert hub.claim(old) is None
    assert hub.claim(new) is old
    hub.disconnect(old, "replaced")  # the old one leaving does not free the new one's name
    assert hub.online(name("SOUVIK")) is new


async def test_run_gathers_a_burst_of_presence_into_one_item(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = Hub(presence_delay=0.02)
    a = member("a")
    joined(hub, a, "lobby")
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        for n in range(5):
            joined(hub, member(f"m{n}"), "lobby")
            await trio.sleep(0.001)  # joins spread over a few milliseconds
        assert frames(a) == []
        await trio.sleep(0.05)
        assert items(a) == 1
        assert [f["name"] for f in frames(a)] == [f"m{n}" for n in range(5)]
        nursery.cancel_scope.cancel()


async def test_a_message_sends_the_presence_before_it_at_once() -> None:
    hub, make = Hub(presence_delay=10.0), Batches()
    a, b = member("a"), member("b")
    joined(hub, a, "lobby")
    joined(hub, b, "lobby")  # presence pending for a, not yet flushed
    hub.publish([make.room(b, "lobby", "hi")])
    assert [f["type"] for f in frames(a)] == ["presence", "message"]


class Socket:
    """A fake non-blocking socket for the outbox's fast path: takes at most `room` bytes."""

    def __init__(self, room: int = 1 << 20) -> None:
        self.room = room
        self.written = b""

    def write(self, data: bytes) -> int:
        taken = data[: self.room]
        self.room -= len(taken)
        self.written += taken
        return len(taken)


async def test_an_idle_writer_is_skipped_and_the_bytes_go_straight_out() -> None:
    socket = Socket()
    outbox = Outbox(10, socket.write)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.take)  # the writer, parked
        await trio.testing.wait_all_tasks_blocked()
        assert outbox.put(b"a\n") and outbox.put(b"b\n")
        assert socket.written == b"a\nb\n" and outbox.frames == 0
        nursery.cancel_scope.cancel()


async def test_a_partial_write_leaves_the_rest_in_order_for_the_writer() -> None:
    socket = Socket(room=3)
    outbox = Outbox(10, socket.write)
    taken: list[tuple[bytes, int] | None] = []

    async def writer() -> None:
        taken.append(await outbox.take())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert outbox.put(b"one\ntwo\n", 2)
        assert socket.written == b"one"
        assert outbox.put(b"three\n")  # the writer has work now: no direct write
        await trio.testing.wait_all_tasks_blocked()
    assert socket.written == b"one"
    assert taken == [(b"\ntwo\nthree\n", 3)]


async def test_no_direct_write_while_the_writer_sends() -> None:
    socket = Socket()
    outbox = Outbox(10, socket.write)
    outbox.put(b"queued\n")  # no writer waiting: queued
    item = await outbox.take()
    assert item == (b"queued\n", 1)  # the writer has it in flight now
    assert outbox.put(b"next\n")
    assert socket.written == b""  # it must follow what is in flight, not overtake it
    outbox.sent(1)
