"""The IRC door's section 11: TOPIC, KICK, INVITE, MODE (+i, +b, +o, the ban list), and how
kicks, invitations and mode changes made elsewhere show on IRC."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from ..core.chat import JoinResult
from ..core.errors import ChatError
from ..core.rules import Name, parse_name
from ..irc import numerics as n
from ..irc.codec import IrcMessage
from ..irc.text import clean_from_irc
from ..protocol.moderation import MAX_TOPIC, Invited, Kicked, RoomEvent, RoomState
from .irc import channel, fit_line, irc_line, mask

if TYPE_CHECKING:
    from .irc import IrcSession

_MODE_LETTERS: Final = frozenset("ibo")


def event(session: IrcSession, item: RoomEvent) -> None:
    """A kick, invitation or mode change made by someone else, in IRC's words."""
    server = session.server_name
    if isinstance(item, Kicked):
        reason = item.reason or "kicked"
        _send(session, "KICK", channel(item.room), item.name, reason, source=mask(item.by, server))
    elif isinstance(item, Invited):
        if item.name == session.nick:
            _send(session, "INVITE", item.name, channel(item.room), source=mask(item.by, server))
        else:
            text = f"{item.by} invited {item.name} into the channel"
            _send(session, "NOTICE", channel(item.room), text, source=server)
    elif isinstance(item, RoomState) and item.change:
        source = mask(item.by, server) if item.by else server
        params = (channel(item.room), *item.change.split())
        session.send_bytes(irc_line("MODE", *params, source=source, trailing=False))


def _send(session: IrcSession, command: str, *params: str, source: str) -> None:
    session.send_bytes(irc_line(command, *params, source=source))


def show_topic(session: IrcSession, result: JoinResult, *, always: bool = False) -> None:
    """332 and 333 after a JOIN (or for TOPIC: 331 when there is none)."""
    view = result.view
    chan = channel(result.room)
    if view is None or not view.topic:
        if always:
            session.numeric(n.RPL_NOTOPIC, chan, "No topic is set")
        return
    session.numeric(n.RPL_TOPIC, chan, fit_line(view.topic))
    if view.topic_by:
        stamp = _seconds(view.topic_ts)
        session.numeric(n.RPL_TOPICWHOTIME, chan, mask(view.topic_by, session.server_name), stamp)


def _seconds(ts: str | None) -> str:
    """An ISO timestamp as Unix seconds (333 wants them)."""
    if ts is None:
        return "0"
    from datetime import datetime

    return str(int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()))


def join_refused(session: IrcSession, target: str, exc: ChatError) -> bool:
    """473 or 474 for a JOIN the rules refuse; False for other errors."""
    if exc.code == "forbidden":
        session.err(n.ERR_INVITEONLYCHAN, target, "Cannot join channel (+i)")
    elif exc.code == "banned":
        session.err(n.ERR_BANNEDFROMCHAN, target, "Cannot join channel (+b)")
    else:
        return False
    return True


def _refused(session: IrcSession, chan: str, exc: ChatError, nick: str = "") -> None:
    code = exc.code
    if code == "forbidden":
        session.err(n.ERR_CHANOPRIVSNEEDED, chan, exc.message)
    elif code == "not_in_room":
        session.err(n.ERR_NOTONCHANNEL, chan, "You're not on that channel")
    elif code in ("no_such_user", "name_invalid"):
        if nick and "not in" in exc.message:
            session.err(n.ERR_USERNOTINCHANNEL, nick, chan, "They aren't on that channel")
        else:
            session.err(n.ERR_NOSUCHNICK, nick or chan, "No such nick")
    else:
        session.fail("MODE", code.upper(), exc.message)


def _visible_room(session: IrcSession, target: str) -> Name | None:
    """The channel's room when it shows to this user (a private room it may not join: 403)."""
    room = session._room(target)
    if room is None:
        return None
    assert session.member is not None
    if not session.chat.moderation.visible(session.member, room.key):
        session.err(n.ERR_NOSUCHCHANNEL, target, "No such channel")
        return None
    return room


def _nick(session: IrcSession, text: str) -> Name | None:
    try:
        return parse_name(text.split("!", 1)[0], "nick", "name_invalid")
    except ChatError:
        session.err(n.ERR_NOSUCHNICK, text, "No such nick")
        return None


async def topic(session: IrcSession, message: IrcMessage) -> None:
    member = session.member
    assert member is not None
    room = _visible_room(session, message.params[0])
    if room is None:
        return
    moderation = session.chat.moderation
    chan = channel(session.chat.hub.room_name(room).spelling)
    if len(message.params) == 1:
        view = moderation.view(room.key)
        show_topic(session, JoinResult(chan[1:], (), (), False, view=view), always=True)
        return
    text = clean_from_irc(message.params[1])[:MAX_TOPIC]
    try:
        await moderation.topic(member, room, text)
    except ChatError as exc:
        _refused(session, chan, exc)
        return
    if room.key not in member.rooms:  # the TOPIC line comes with the fan-out to members
        session.reply("TOPIC", chan, fit_line(text), source=mask(session.nick, session.server_name))


async def kick(session: IrcSession, message: IrcMessage) -> None:
    member = session.member
    assert member is not None
    room = _visible_room(session, message.params[0])
    if room is None:
        return
    chan = channel(session.chat.hub.room_name(room).spelling)
    reason = clean_from_irc(message.params[2]) if len(message.params) > 2 else ""
    for nick in message.params[1].split(","):
        name = _nick(session, nick)
        if name is None:
            continue
        try:
            done = await session.chat.moderation.kick(member, room, name, reason)
        except ChatError as exc:
            _refused(session, chan, exc, nick)
            continue
        if room.key not in member.rooms:  # members see it with the room's fan-out
            session.reply(
                "KICK",
                chan,
                done.name,
                reason or "kicked",
                source=mask(session.nick, session.server_name),
            )


async def invite(session: IrcSession, message: IrcMessage) -> None:
    member = session.member
    assert member is not None
    nick, target = message.params[0], message.params[1]
    room = _visible_room(session, target)
    name = _nick(session, nick) if room is not None else None
    if room is None or name is None:
        return
    chan = channel(session.chat.hub.room_name(room).spelling)
    try:
        done = await session.chat.moderation.invite(member, room, name)
    except ChatError as exc:
        _refused(session, chan, exc, nick)
        return
    session.numeric(n.RPL_INVITING, done.name, chan)


async def mode(session: IrcSession, message: IrcMessage) -> None:
    """Channel modes: +i/-i private, +b/-b ban, +o/-o op, `b` alone the ban list."""
    target = message.params[0]
    if not target.startswith("#"):
        if target.casefold() != session.nick.casefold():
            session.err(n.ERR_USERSDONTMATCH, "Cannot change mode for other users")
        else:
            session.numeric(n.RPL_UMODEIS, "+")
        return
    member = session.member
    assert member is not None
    room = _visible_room(session, target)
    if room is None:
        return
    moderation = session.chat.moderation
    chan = channel(session.chat.hub.room_name(room).spelling)
    modes = message.params[1:]
    if not modes:
        view = moderation.view(room.key)
        session.numeric(n.RPL_CHANNELMODEIS, chan, "+i" if view.private else "+")
        return
    letters, args = modes[0], list(modes[1:])
    if letters.lstrip("+") == "b" and not args:
        try:
            found = moderation.bans(member, room)
        except ChatError:
            found = None
        for ban in found.bans if found is not None else ():
            session.numeric(
                n.RPL_BANLIST, chan, f"{ban.name}!*@*", mask(ban.by, session.server_name),
                _seconds(ban.ts),
            )  # fmt: skip
        session.numeric(n.RPL_ENDOFBANLIST, chan, "End of channel ban list")
        return
    sign = "+"
    for letter in letters:
        if letter in "+-":
            sign = letter
            continue
        if letter not in _MODE_LETTERS:
            session.err(n.ERR_UNKNOWNMODE, letter, "is an unknown mode char to me")
            continue
        try:
            await _one_mode(session, room, chan, sign == "+", letter, args)
        except ChatError as exc:
            _refused(session, chan, exc)


async def _one_mode(
    session: IrcSession, room: Name, chan: str, on: bool, letter: str, args: list[str]
) -> None:
    member = session.member
    assert member is not None
    moderation = session.chat.moderation
    me = mask(session.nick, session.server_name)
    sign = "+" if on else "-"
    if letter == "i":
        await moderation.set_room(member, room, private=on)
        session.reply("MODE", chan, sign + "i", source=me, trailing=False)
        return
    if not args:
        session.err(n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
        return
    name = _nick(session, args.pop(0))
    if name is None:
        return
    if letter == "o":
        await moderation.op(member, room, name, give=on)
        session.reply("MODE", chan, sign + "o", name.spelling, source=me, trailing=False)
    elif on:
        done = await moderation.ban(member, room, name)
        session.reply("MODE", chan, "+b", f"{done.name}!*@*", source=me, trailing=False)
    else:
        done = await moderation.unban(member, room, name)
        session.reply("MODE", chan, "-b", f"{done.name}!*@*", source=me, trailing=False)


Handler = Callable[["IrcSession", IrcMessage], Awaitable[None]]
COMMANDS: Final[dict[str, tuple[Handler, int, bool]]] = {
    "TOPIC": (topic, 1, True),
    "KICK": (kick, 2, True),
    "INVITE": (invite, 2, True),
    "MODE": (mode, 1, True),
}
