"""The IRC door end to end: raw IRC sockets and JSON clients on one in-process server.

Loopback sockets against the `start_server` fixture with `irc_port=0`: rooms shared
both ways, presence both ways, replay, CHATHISTORY paging, SASL with an account made
from the JSON side, echo-message with labels, and bad input that costs only its sender.
"""

from __future__ import annotations

import contextlib
import re
from base64 import b64encode
from typing import Any

import pytest
import trio
from chat_client import ChatClient, login
from harness import RunningServer, StartServer
from irc_clients import Irssi, Weechat, missing_clients
from test_irc_door import IrcClient

pytestmark = pytest.mark.trio

FROM_RITAM: dict[str, Any] = {"from": "Ritam"}
FROM_IRSI: dict[str, Any] = {"from": "Irsi"}
FROM_WEECH: dict[str, Any] = {"from": "Weech"}


@pytest.fixture
async def both(start_server: StartServer) -> RunningServer:
    server = await start_server(irc_port=0)
    assert server.irc_port is not None
    return server


async def irc_user(server: RunningServer, nick: str, *caps: str) -> IrcClient:
    assert server.irc_port is not None
    irc = await IrcClient.connect(server.irc_port)
    await irc.register(nick, *caps)
    return irc


async def test_json_and_irc_share_a_room_both_ways(both: RunningServer) -> None:
    souvik = await login(both.port, "Souvik", "lobby")
    ritam = await irc_user(both, "Ritam")
    lines = await ritam.join("#lobby")
    assert ":trio-chat 353 Ritam = #lobby :@Souvik Ritam" in lines  # first in: an op
    await souvik.expect("presence", room="lobby", name="Ritam", state="joined")

    await ritam.send("PRIVMSG #lobby :hello from \x02irc\x02")
    m = await souvik.expect("message", room="lobby", **FROM_RITAM)
    assert m["text"] == "hello from irc"
    await ritam.send("PRIVMSG #lobby :\x01ACTION waves\x01")
    m = await souvik.expect("message", room="lobby", **FROM_RITAM)
    assert m["text"] == "waves" and m["action"] is True

    await souvik.say("lobby", "hello from json")
    await ritam.expect(r"^:Souvik!Souvik@trio-chat PRIVMSG #lobby :hello from json$")
    await souvik.say("lobby", "line one\nline two")
    assert await ritam.recv() == ":Souvik!Souvik@trio-chat PRIVMSG #lobby :line one"
    assert await ritam.recv() == ":Souvik!Souvik@trio-chat PRIVMSG #lobby :line two"

    # direct messages both ways
    await souvik.send(type="say", to="Ritam", text="psst", id="d1")
    await ritam.expect(r"^:Souvik!\S+ PRIVMSG Ritam :psst$")
    await ritam.send("PRIVMSG Souvik :back at you")
    m = await souvik.expect("message", to="Souvik")
    assert m["from"] == "Ritam" and m["text"] == "back at you"

    # presence both ways
    await ritam.send("PART #lobby :later")
    await souvik.expect("presence", room="lobby", name="Ritam", state="left", reason="part")
    await ritam.join("#lobby")
    await souvik.expect("presence", name="Ritam", state="joined")
    rumi = await login(both.port, "Rumi")
    await rumi.join("lobby")
    await ritam.expect(r"^:Rumi!Rumi@trio-chat JOIN #lobby$")
    await rumi.send(type="part", room="lobby")
    await ritam.expect(r"^:Rumi!Rumi@trio-chat PART #lobby$")
    await souvik.send(type="quit")
    await ritam.expect(r"^:Souvik!Souvik@trio-chat QUIT :Quit$")
    await ritam.send("QUIT :bye")
    assert await ritam.expect("^ERROR ") == "ERROR :Quit: bye"
    assert await ritam.closed()
    await rumi.join("lobby")
    await rumi.send(type="who", room="lobby")
    assert (await rumi.expect("members"))["members"] == ["Rumi"]


async def test_replay_after_join_and_chathistory_paging(both: RunningServer) -> None:
    souvik = await login(both.port, "Souvik", "lobby")
    ids = [(await souvik.say("lobby", f"earlier {i}"))["id"] for i in range(30)]
    plain = await irc_user(both, "Plain")
    await plain.join("#lobby")
    replay = [await plain.recv() for _ in range(25)]  # irc_replay defaults to 25
    assert replay[0].endswith(":earlier 5") and replay[-1].endswith(":earlier 29")

    hist = await irc_user(both, "Hist", "draft/chathistory", "batch", "message-tags")
    await hist.join("#lobby")
    await hist.send("CHATHISTORY LATEST #lobby * 10")
    page = await hist.until("BATCH -")
    got = [int(re.search(r"msgid=(\d+)", line)[1]) for line in page if "PRIVMSG" in line]  # type: ignore[index]
    assert got == ids[-10:]
    await hist.send(f"CHATHISTORY BEFORE #lobby msgid={got[0]} 500")
    page = await hist.until("BATCH -")
    got = [int(re.search(r"msgid=(\d+)", line)[1]) for line in page if "PRIVMSG" in line]  # type: ignore[index]
    assert got == ids[:-10]


def msgids(page: list[str]) -> list[int]:
    found = [re.search(r"msgid=(\d+)", line) for line in page if "PRIVMSG" in line]
    return [int(m[1]) for m in found if m is not None]


async def test_chathistory_every_subcommand_and_reference(both: RunningServer) -> None:
    """LATEST after a msgid, AFTER, AROUND, BETWEEN both ways, timestamps, and TARGETS."""
    souvik = await login(both.port, "Souvik", "lobby")
    sent = [await souvik.say("lobby", f"m{i}") for i in range(12)]
    ids = [m["id"] for m in sent]
    hist = await irc_user(both, "Hist", "draft/chathistory", "batch", "message-tags")
    await hist.join("#lobby")

    async def page(command: str) -> list[int]:
        await hist.send(command)
        return msgids(await hist.until("BATCH -"))

    assert await page(f"CHATHISTORY LATEST #lobby msgid={ids[8]} 10") == ids[9:]
    assert await page(f"CHATHISTORY LATEST #lobby msgid={ids[2]} 3") == ids[-3:]
    assert await page(f"CHATHISTORY AFTER #lobby msgid={ids[3]} 4") == ids[4:8]
    assert await page(f"CHATHISTORY AROUND #lobby msgid={ids[6]} 5") == ids[4:9]
    assert await page(f"CHATHISTORY BETWEEN #lobby msgid={ids[1]} msgid={ids[7]} 3") == ids[2:5]
    assert await page(f"CHATHISTORY BETWEEN #lobby msgid={ids[7]} msgid={ids[1]} 3") == ids[4:7]
    # timestamps: from the seventh message's time on (messages of one commit share a time)
    ts = sent[6]["ts"]
    after = await page(f"CHATHISTORY AFTER #lobby timestamp={ts} 20")
    before = await page(f"CHATHISTORY BEFORE #lobby timestamp={ts} 20")
    assert after[0] <= ids[6] and before + after == ids
    early, late = "timestamp=2000-01-01T00:00:00.000Z", "timestamp=2999-01-01T00:00:00.000Z"
    await hist.send(f"CHATHISTORY TARGETS {early} {late} 10")
    targets = await hist.until("BATCH -")
    assert any(" CHATHISTORY TARGETS #lobby timestamp=" in line for line in targets)
    await hist.send("CHATHISTORY AFTER #lobby msgid=banana 5")
    assert "INVALID_PARAMS" in await hist.expect("FAIL CHATHISTORY")
    await hist.send("CHATHISTORY LATEST #nowhere * 5")
    assert "INVALID_TARGET" in await hist.expect("FAIL CHATHISTORY")


async def test_json_history_after_shows_a_hit_in_context(both: RunningServer) -> None:
    """history with after: the oldest entries after an id, `more` when newer ones remain."""
    souvik = await login(both.port, "Souvik", "lobby")
    ids = [(await souvik.say("lobby", f"m{i}"))["id"] for i in range(10)]
    await souvik.send(type="history", room="lobby", after=ids[2], limit=3, id="h")
    page = await souvik.expect("history", re="h")
    assert [m["id"] for m in page["messages"]] == ids[3:6] and page["more"] is True
    await souvik.send(type="history", room="lobby", after=ids[2], before=ids[5], id="h2")
    page = await souvik.expect("history", re="h2")
    assert [m["id"] for m in page["messages"]] == ids[3:5] and page["more"] is False


async def test_sasl_plain_with_an_account_made_on_the_json_side(both: RunningServer) -> None:
    made = await login(both.port, "Souvik", password="a-good-password")
    await made.send(type="quit")
    assert await made.closed()
    assert both.irc_port is not None

    guest = await IrcClient.connect(both.irc_port)
    await guest.send("NICK Souvik")
    await guest.send("USER s 0 * :s")
    await guest.expect(r" 433 \* Souvik ")

    irc = await IrcClient.connect(both.irc_port)
    await irc.send("CAP LS 302")
    await irc.send("NICK Souvik")
    await irc.send("USER s 0 * :s")
    await irc.send("CAP REQ :sasl")
    await irc.expect(" ACK :sasl")
    await irc.send("AUTHENTICATE PLAIN")
    await irc.expect(r"^AUTHENTICATE \+$")
    await irc.send("AUTHENTICATE " + b64encode(b"\0Souvik\0a-good-password").decode())
    await irc.expect(r" 903 ")
    await irc.send("CAP END")
    await irc.expect(" 001 Souvik ")
    # the JSON side sees an account holder online
    other = await login(both.port, "Ritam")
    await other.send(type="say", to="Souvik", text="hi account", id="x")
    await irc.expect(r"PRIVMSG Souvik :hi account$")


async def test_echo_message_with_labels(both: RunningServer) -> None:
    souvik = await login(both.port, "Souvik", "lobby")
    irc = await irc_user(both, "Ritam", "echo-message", "labeled-response", "batch", "message-tags")
    await irc.join("#lobby")
    await irc.send("@label=abc PRIVMSG #lobby :labeled")
    m = await souvik.expect("message", text="labeled")
    line = await irc.expect("PRIVMSG #lobby :labeled$")
    assert line.startswith(f"@label=abc;msgid={m['id']} :Ritam!Ritam@trio-chat ")
    await irc.send("PRIVMSG #lobby :unlabeled")
    line = await irc.expect("PRIVMSG #lobby :unlabeled$")
    assert "label=" not in line


async def test_bad_input_costs_only_its_sender(both: RunningServer) -> None:
    souvik = await login(both.port, "Souvik", "lobby")
    irc = await irc_user(both, "Ritam")
    await irc.join("#lobby")
    await irc.send("PRIVMSG #lobby :" + "x" * 600)
    await irc.expect(" 417 Ritam ")
    await irc.send_raw(b"PRIVMSG #lobby :\xc3\x28\r\n")
    await irc.expect(" FAIL PRIVMSG INVALID_UTF8 ")
    await irc.send("PRIVMSG")
    await irc.expect(" 461 Ritam PRIVMSG ")
    await irc.send("@" * 10000)
    await irc.expect(" 417 Ritam ")
    await irc.send("PRIVMSG #lobby :still here")
    m = await souvik.expect("message", **FROM_RITAM)
    assert m["text"] == "still here"

    assert both.irc_port is not None
    half = await IrcClient.connect(both.irc_port)
    await half.register("Half")
    await half.join("#lobby")
    await half.send_raw(b"PRIVMSG #lobby :never fin")
    await half.stream.aclose()
    await souvik.expect("presence", name="Half", state="left", reason="gone")
    await souvik.say("lobby", "all fine")
    await irc.expect("PRIVMSG #lobby :all fine$")
    assert not any("never fin" in str(frame) for frame in souvik.seen)


async def test_flood_of_errors_closes_alone(both: RunningServer) -> None:
    souvik: ChatClient = await login(both.port, "Souvik", "lobby")
    irc = await irc_user(both, "Ritam")
    await irc.send_raw(b"FROB\r\n" * 25)
    assert await irc.expect("^ERROR ") == "ERROR :too many errors"
    assert await irc.closed()
    with trio.fail_after(5):
        await souvik.say("lobby", "unaffected")


@pytest.mark.skipif(bool(missing_clients()), reason="irssi, weechat-headless or tmux missing")
async def test_irssi_and_weechat_with_sasl_talk_to_a_json_user(both: RunningServer) -> None:
    """Real clients: SASL PLAIN (CAP END right after 903), JOIN, messages both ways."""
    assert both.irc_port is not None
    port = both.irc_port
    for name in ("Irsi", "Weech"):
        made = await login(both.port, name, password=f"{name}-password")
        await made.send(type="quit")
        assert await made.closed()
    souvik = await login(both.port, "Souvik", "lobby")
    await souvik.say("lobby", "before anyone came")
    with contextlib.ExitStack() as stack:
        irssi = stack.enter_context(
            await trio.to_thread.run_sync(
                lambda: Irssi("127.0.0.1", port, "Irsi", sasl=("Irsi", "Irsi-password"))
            )
        )
        weechat = stack.enter_context(
            await trio.to_thread.run_sync(
                lambda: Weechat("127.0.0.1", port, "Weech", sasl=("Weech", "Weech-password"))
            )
        )
        await irssi.join_async("#lobby", 20)
        await weechat.join_async("#lobby", 20)
        await irssi.wait_for_async(
            irssi.message_pattern("Souvik", "before anyone came"), 10, log="#lobby"
        )
        await souvik.expect("presence", name="Irsi", state="joined")
        await souvik.expect("presence", name="Weech", state="joined")
        await souvik.say("lobby", "hello real clients")
        await irssi.wait_for_async(
            irssi.message_pattern("Souvik", "hello real clients"), 10, log="#lobby"
        )
        await weechat.wait_for_async(
            weechat.message_pattern("Souvik", "hello real clients"), 10, log="#lobby"
        )
        irssi.say("hi from irssi")
        m = await souvik.expect("message", timeout=10, **FROM_IRSI)
        assert m["text"] == "hi from irssi"
        weechat.say("hi from weechat", "#lobby")
        m = await souvik.expect("message", timeout=10, **FROM_WEECH)
        assert m["text"] == "hi from weechat"
        await weechat.wait_for_async(
            weechat.message_pattern("Irsi", "hi from irssi"), 10, log="#lobby"
        )


async def test_a_quit_reason_reaches_the_others_on_both_doors(both: RunningServer) -> None:
    """`quit` with a reason (JSON) and QUIT :reason (IRC): the others see those words."""
    souvik = await login(both.port, "Souvik", "lobby")
    ritam = await irc_user(both, "Ritam")
    await ritam.join("#lobby")
    rumi = await login(both.port, "Rumi", "lobby")
    await ritam.expect(r"JOIN #lobby$")
    await rumi.send(type="quit", reason="off to lunch")
    left = await souvik.expect("presence", name="Rumi", state="left")
    assert left["reason"] == "quit" and left["message"] == "off to lunch"
    assert await ritam.expect(r"QUIT ") == ":Rumi!Rumi@trio-chat QUIT :Quit: off to lunch"
    await ritam.send("QUIT :see you tomorrow")
    left = await souvik.expect("presence", name="Ritam", state="left")
    assert left["message"] == "see you tomorrow"
