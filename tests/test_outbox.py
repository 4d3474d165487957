"""The outbox's bounds: bytes at every instant, frames in time (guarantee 4, section 6)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from trio_chat.outbox import MAX_BYTES, PATIENCE, TAKE_BYTES, Outbox

pytestmark = pytest.mark.trio

LIMIT = 1000  # the default frame bound
FRAME = 300  # bytes of one message frame, at the big end of ordinary
BURST = 2700  # a commit stall of 4.5 s with 60 senders at 10 msg/s
BATCH = 250  # frames per fan-out item (the hub's max_batch for a bound of 1000)
READ_EVERY = 0.1  # an ordinary reader: 50 frames every 0.1 s, 500 frames/s
READ_BYTES = 50 * FRAME
TRAFFIC = 0.01  # after the burst, one frame every 10 ms goes on arriving


def frames_of(n: int, size: int = FRAME) -> bytes:
    return (b"m" * (size - 1) + b"\n") * n


class Socket:
    """A fake non-blocking socket for the outbox's fast path: takes at most `room` bytes."""

    def __init__(self, room: int = 1 << 30) -> None:
        self.room = room
        self.written = b""

    def write(self, data: bytes) -> int:
        taken = data[: self.room]
        self.room -= len(taken)
        self.written += taken
        return len(taken)


async def drain(outbox: Outbox) -> list[tuple[bytes, int]]:
    """Take and 'send' until closed and drained, as the session's writer does."""
    taken = []
    while (item := await outbox.take()) is not None:
        taken.append(item)
        outbox.sent(item[1])
    return taken


@dataclass
class Run:
    outbox: Outbox
    start: float
    progress: list[float] = field(default_factory=list)  # when the writer completed a send
    cut: float | None = None  # when a put was refused: slow consumer
    put: int = 0  # frames accepted
    most_frames: int = 0
    most_bytes: int = 0
    received: int = 0


async def catch_up(outbox: Outbox, *, read_for: float = math.inf, traffic: float = 8.0) -> Run:
    """A stall's backlog fanned out in 0.1 s, then steady traffic, to a reader at 500 frames/s.

    The writer is the session's loop over a socket with no buffer (a lockstep
    stream); the reader reads `READ_BYTES` every `READ_EVERY`, and stops after `read_for`.
    """
    run = Run(outbox, start := trio.current_time())
    send, receive = trio.testing.lockstep_stream_pair()

    async def writer() -> None:
        while (item := await outbox.take()) is not None:
            await send.send_all(item[0])
            outbox.sent(item[1])
            run.progress.append(trio.current_time())

    async def reader() -> None:
        while trio.current_time() - start < read_for:
            run.received += len(await receive.receive_some(READ_BYTES))
            await trio.sleep(READ_EVERY)

    def put(data: bytes, frames: int) -> bool:
        if not outbox.put(data, frames):
            run.cut = trio.current_time()
            return False
        run.put += frames
        run.most_frames = max(run.most_frames, outbox.frames)
        run.most_bytes = max(run.most_bytes, outbox.nbytes)
        return True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        nursery.start_soon(reader)
        batches = [BATCH] * (BURST // BATCH) + [BURST % BATCH]  # 11 items in 0.1 s
        for n in batches:
            if not put(frames_of(n), n):
                break
            await trio.sleep(0.1 / len(batches))
        for _ in range(round(traffic / TRAFFIC)):
            if run.cut is not None or not put(frames_of(1), 1):
                break
            await trio.sleep(TRAFFIC)
        for _ in range(round(30 / READ_EVERY)):  # the rest of the backlog: 30 s at most
            if run.cut is not None or not outbox.frames:
                break
            await trio.sleep(READ_EVERY)
        nursery.cancel_scope.cancel()
    return run


# ------------------------------------------------------------------ frames, in time


async def test_a_reader_that_keeps_up_survives_a_stall_catch_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        run = await catch_up(Outbox(LIMIT))
    assert run.cut is None
    assert run.most_frames > 2 * LIMIT  # well over the frame bound, for seconds
    assert run.put == BURST + 800 and run.received == run.put * FRAME  # all of it
    assert run.most_bytes < MAX_BYTES / 4
    assert (run.outbox.frames, run.outbox.nbytes) == (0, 0)
    # a backlog goes out in parts, so the writer shows progress all along
    gaps = [b - a for a, b in zip(run.progress, run.progress[1:], strict=False)]
    assert max(gaps) < PATIENCE / 3


async def test_the_old_instant_rule_would_cut_that_reader(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        run = await catch_up(Outbox(LIMIT, patience=0))
    assert run.cut is not None and run.cut - run.start < 0.1  # during the burst itself
    assert run.received < BURST * FRAME


@pytest.mark.parametrize("read_for", [0.05, 1.0])  # mid-burst; mid catch-up
async def test_a_reader_that_stops_is_cut_about_patience_after_its_last_progress(
    autojump_clock: trio.testing.MockClock, read_for: float
) -> None:
    with trio.fail_after(60):
        run = await catch_up(Outbox(LIMIT), read_for=read_for)
    assert run.cut is not None
    last = max([run.start, *run.progress])  # the outbox was empty at the start
    assert PATIENCE <= run.cut - last <= PATIENCE + 0.1
    assert run.outbox.nbytes < MAX_BYTES // 4  # cut for frames, not bytes


async def test_patience_counts_from_the_last_progress(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outbox = Outbox(3, patience=2.0)
    item = frames_of(1, TAKE_BYTES)  # one item per take
    assert outbox.put(item)
    assert await outbox.take() == (item, 1)  # in flight: still unsent
    assert outbox.put(item) and outbox.put(item)  # 3: at the bound
    assert outbox.put(item)  # over it: tolerated, and counted from now
    await trio.sleep(1.5)
    outbox.sent(1)  # progress, back at the bound: that count is over
    assert outbox.put(item)  # over again: a new count starts
    await trio.sleep(1.75)
    assert outbox.put(item)  # 3.25 s since the bound was first passed
    await trio.sleep(0.25)
    assert not outbox.put(item)  # 2 s over it without progress: slow consumer
    assert not outbox.put(item)  # and so it stays until progress
    assert await outbox.take() == (item, 1)
    outbox.sent(1)  # progress, still over the bound: patience counts from now
    assert outbox.frames == 4
    await trio.sleep(1.75)
    assert outbox.put(item)
    await trio.sleep(0.25)
    assert not outbox.put(item)


async def test_under_the_frame_bound_the_clock_is_never_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = 0
    real = trio.current_time

    def counting() -> float:
        nonlocal reads
        reads += 1
        return real()

    outbox = Outbox(LIMIT)
    monkeypatch.setattr(trio, "current_time", counting)
    for _ in range(3):
        for _ in range(LIMIT):
            assert outbox.put(frames_of(1))
        while outbox.frames:
            taken = await outbox.take()
            assert taken is not None
            outbox.sent(taken[1])
    assert reads == 0
    assert outbox.put(frames_of(1)) and outbox.put(frames_of(LIMIT), LIMIT)  # over the bound
    assert reads == 1


# ------------------------------------------------------------------ bytes, at every instant


async def test_a_reader_that_never_reads_is_cut_by_bytes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Pipelined requests for big pages: at most about max_bytes plus one item is held."""
    page = frames_of(1, 1_500_000)  # a join answer of 500 long messages: one frame
    outbox = Outbox(LIMIT)
    send, _receive = trio.testing.lockstep_stream_pair()  # nobody ever reads
    held = 0

    async def writer() -> None:
        while (item := await outbox.take()) is not None:
            await send.send_all(item[0])
            outbox.sent(item[1])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        now = trio.current_time()
        for _ in range(100):
            if not outbox.put(page):
                break
            held += len(page)
            await trio.testing.wait_all_tasks_blocked()
        else:
            pytest.fail("never cut")
        assert trio.current_time() == now  # at once: no patience for bytes
        assert outbox.frames < LIMIT  # the frame bound is far away
        assert held == outbox.nbytes <= MAX_BYTES + len(page)
        assert held > MAX_BYTES - len(page)
        nursery.cancel_scope.cancel()


async def test_the_byte_bound_holds_while_the_frame_bound_is_patient(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A burst to a reader that stopped: frames pass their bound, bytes never pass theirs."""
    outbox = Outbox(LIMIT)
    batch = frames_of(BATCH)
    assert outbox.put(batch, BATCH)
    assert await outbox.take() == (batch, BATCH)  # in flight, and never sent
    accepted = 1
    while outbox.put(batch, BATCH):
        accepted += 1
        assert accepted < 1000
    assert outbox.frames > 10 * LIMIT  # within patience: no time has passed
    queued = outbox.nbytes - len(batch)  # the first batch is in flight
    assert queued <= MAX_BYTES < queued + len(batch)


async def test_bytes_in_flight_do_not_count_against_the_byte_bound() -> None:
    """One big answer being sent does not cut the reader; what queues behind it is bounded."""
    outbox = Outbox(LIMIT, max_bytes=1000)
    assert outbox.put(frames_of(5))  # 1500 bytes, alone: taken
    taken = await outbox.take()
    assert taken is not None and outbox.nbytes == 1500
    assert outbox.put(frames_of(3))  # 1500 in flight, 900 queued
    assert not outbox.put(frames_of(1))  # 900 + 300 queued > 1000
    assert outbox.put(frames_of(1, 100))
    outbox.sent(taken[1])
    assert (outbox.frames, outbox.nbytes) == (2, 1000)
    assert not outbox.put(frames_of(1))


async def test_the_first_item_into_an_empty_outbox_is_always_taken() -> None:
    big = frames_of(5000, 2000)  # 10 MB and 5000 frames, past both bounds
    outbox = Outbox(5, max_bytes=1 << 20)
    assert outbox.put(big, 5000)
    assert not outbox.put(frames_of(1))  # behind it, the bounds hold
    while outbox.frames:
        taken = await outbox.take()
        assert taken is not None
        outbox.sent(taken[1])
    assert outbox.nbytes == 0
    assert outbox.put(big, 5000)  # kept up again: taken again


async def test_a_backlog_is_taken_in_parts_in_order_and_the_counts_add_up() -> None:
    outbox = Outbox(LIMIT, patience=math.inf)
    items = [frames_of(n % 7 + 1, 20 + n % 200) for n in range(2000)]  # ~1 MB
    for n, item in enumerate(items):
        assert outbox.put(item, n % 7 + 1)
    total = outbox.frames
    outbox.close(b"bye\n")
    taken = await drain(outbox)
    assert b"".join(blob for blob, _ in taken) == b"".join(items) + b"bye\n"
    assert sum(frames for _, frames in taken) == total
    biggest = max(map(len, items))
    assert len(taken) > 10
    assert all(TAKE_BYTES <= len(blob) < TAKE_BYTES + biggest for blob, _ in taken[:-1])
    assert (outbox.frames, outbox.nbytes) == (0, 0)


# ------------------------------------------------------------------ closing, direct writes


async def test_closing_sends_what_is_queued_then_the_bye_past_the_bounds() -> None:
    outbox = Outbox(3, max_bytes=1000)
    assert outbox.put(frames_of(2), 2)
    assert outbox.put(frames_of(1))
    assert not outbox.put(frames_of(1))  # full: the session closes it as slow_consumer
    outbox.close(b'{"type":"bye"}\n')
    outbox.close(b"ignored\n")  # the first close decides
    assert outbox.closed
    assert outbox.put(frames_of(10, 1000), 10)  # closed: taken and dropped
    assert await drain(outbox) == [(frames_of(3) + b'{"type":"bye"}\n', 3)]
    assert await outbox.take() is None


async def test_a_parked_writer_wakes_and_the_bye_alone_comes_last() -> None:
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
        outbox.put(b"a\n")
        outbox.put(b"b\n")
        await trio.testing.wait_all_tasks_blocked()
        outbox.close(b"bye\n")
    assert got == [(b"a\nb\n", 2), (b"bye\n", 0), None]


async def test_an_idle_writer_is_skipped_and_the_bytes_go_straight_out() -> None:
    socket = Socket()
    outbox = Outbox(10, socket.write)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.take)  # the writer, parked
        await trio.testing.wait_all_tasks_blocked()
        big = frames_of(100, 100_000)  # past both bounds, but nothing is unsent
        assert outbox.put(b"a\n") and outbox.put(big, 100) and outbox.put(b"b\n")
        assert socket.written == b"a\n" + big + b"b\n"
        assert (outbox.frames, outbox.nbytes) == (0, 0)
        nursery.cancel_scope.cancel()


async def test_a_partial_direct_write_leaves_the_rest_for_the_writer() -> None:
    socket = Socket(room=3)
    outbox = Outbox(10, socket.write, max_bytes=100)
    taken: list[tuple[bytes, int] | None] = []

    async def writer() -> None:
        taken.append(await outbox.take())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert outbox.put(b"one\ntwo\n", 2)
        assert socket.written == b"one"
        assert outbox.nbytes == 5  # what is left counts, not what went out
        assert outbox.put(b"three\n")  # the writer has work now: no direct write
        await trio.testing.wait_all_tasks_blocked()
    assert socket.written == b"one"
    assert taken == [(b"\ntwo\nthree\n", 3)]
    assert outbox.nbytes == 11
    outbox.sent(3)
    assert (outbox.frames, outbox.nbytes) == (0, 0)


async def test_no_direct_write_while_the_writer_sends() -> None:
    socket = Socket()
    outbox = Outbox(10, socket.write)
    outbox.put(b"queued\n")  # no writer waiting: queued
    item = await outbox.take()
    assert item == (b"queued\n", 1)  # the writer has it in flight now
    assert outbox.put(b"next\n")
    assert socket.written == b""  # it must follow what is in flight, not overtake it


async def test_an_idle_outbox_stays_small() -> None:
    """Ten thousand idle connections each hold one: slots, no dict, few of them."""
    outbox = Outbox(LIMIT)
    assert not hasattr(outbox, "__dict__")
    assert len(Outbox.__slots__) <= 7 + 6
