"""The main screen: room list, history pane, member list, status line and input.

It turns connection events into buffer changes (buffers.py) and refreshes the
widgets that show them, and turns typed lines into commands and messages. The
input box is in one of three modes: a new message, an edit of one of the user's
messages, or a reply to a message (Esc goes back to a new message).
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, OptionList, Static

from textual_client import connection as c
from textual_client.buffers import Buffer, BufferKind, Buffers, Entry, quote_of
from textual_client.commands import COMMANDS, help_lines, parse_command, text_of
from textual_client.screens.search import ContextScreen, SearchScreen
from textual_client.widgets import ChatInput, ChatLog, MemberList, RoomList, StatusLine
from textual_client.widgets.chat_input import typed_text
from trio_chat import protocol as p
from trio_chat.protocol import markers as mk
from trio_chat.protocol import moderation as md

if TYPE_CHECKING:
    from textual_client.app import ChatApp

START_MARK = "no older messages: this is the start of the conversation"
ROOMS_MIN_WIDTH = 80  # narrower than this, the room list hides (F2 shows it)
MEMBERS_MIN_WIDTH = 110  # narrower than this, the member list hides (F3 shows it)
MODERATION = frozenset(
    {"/topic", "/kick", "/ban", "/unban", "/bans", "/invite", "/op", "/deop", "/private"}
)
SEARCH_FILTER = re.compile(r"(?<!\S)(in|from):(\S+)", re.IGNORECASE)


@dataclass
class Compose:
    """What Enter does with the box: edit `entry`, or reply to it, in `buffer`."""

    kind: Literal["edit", "reply"]
    entry: Entry
    buffer: Buffer


class MainScreen(Screen[None]):
    """The chat itself; see the module docstring."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "cycle(1)", "Next room"),
        Binding("ctrl+p", "cycle(-1)", "Prev room"),
        Binding("f2", "toggle_panel('rooms')", "Rooms"),
        Binding("f3", "toggle_panel('members')", "Members"),
        Binding("alt+1", "goto(1)", "Room", key_display="alt+1…9"),
        *(Binding(f"alt+{n}", f"goto({n})", show=False) for n in range(2, 10)),
        Binding("ctrl+r", "reconnect", "Reconnect"),
        Binding("alt+up", "select_message", "Select", key_display="alt+↑"),
        Binding("pageup", "scroll(-1)", "Scroll", show=False, priority=True),
        Binding("pagedown", "scroll(1)", "Scroll", show=False, priority=True),
        Binding("f1", "help", "Help"),
    ]

    def __init__(self, buffers: Buffers) -> None:
        super().__init__()
        self.buffers = buffers
        self.current: Buffer | None = buffers.order[0] if buffers.order else None
        self._retry_at: float | None = None
        self._retry_timer: Timer | None = None
        self._who_asked: set[str] = set()
        self._retry_reason = ""
        self._panels: dict[str, bool | None] = {"rooms": None, "members": None}  # None: auto
        self.compose_mode: Compose | None = None
        self.search_screen: SearchScreen | None = None
        self.context_screen: ContextScreen | None = None
        self._mark_timer: Timer | None = None
        self.mark_delay = 1.0  # seconds after the last change before the read marker moves

    @property
    def chat_app(self) -> ChatApp:
        return self.app  # type: ignore[return-value]

    @property
    def client(self) -> c.ChatClient:
        client: c.ChatClient = self.chat_app.client
        return client

    def compose(self) -> ComposeResult:
        yield Static("", id="title-bar")
        with Horizontal(id="panes"):
            yield RoomList(id="rooms")
            with Vertical(id="center"):
                yield ChatLog(id="log")
                yield Static("", id="new-below")
            yield MemberList(id="members")
        yield StatusLine(id="status")
        yield ChatInput(sorted(COMMANDS), placeholder="message", id="input")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#rooms", RoomList).border_title = "rooms"
        self.query_one("#new-below", Static).display = False
        chat_input = self.query_one(ChatInput)
        chat_input.names = self.completion_names
        chat_input.rooms = self.chat_app.completion_rooms
        chat_input.max_text = self.max_text
        chat_input.focus()
        self.apply_panels(self.size.width)
        self.switch_to(self.current)
        self.chat_app.start_connection()

    def on_resize(self, event: events.Resize) -> None:
        self.apply_panels(event.size.width)

    def apply_panels(self, width: int) -> None:
        """Side panels give way on narrow terminals, unless F2 / F3 said otherwise."""
        auto = {"rooms": width >= ROOMS_MIN_WIDTH, "members": width >= MEMBERS_MIN_WIDTH}
        for panel, shown in auto.items():
            wanted = self._panels[panel]
            self.set_class(not (shown if wanted is None else wanted), f"-hide-{panel}")

    def action_toggle_panel(self, panel: str) -> None:
        self._panels[panel] = self.has_class(f"-hide-{panel}")
        self.apply_panels(self.size.width)

    # ------------------------------------------------------------ showing

    @property
    def log_view(self) -> ChatLog:
        return self.query_one(ChatLog)

    def switch_to(self, buf: Buffer | None) -> None:
        """Show another buffer: its history, members and title; it is read now."""
        if self.compose_mode is not None and self.compose_mode.buffer is not buf:
            self.set_mode(None)
        if self.current is not None and self.current is not buf and self.log_view.at_bottom:
            self.send_mark(self.current)  # leaving a conversation read to its end
        self.current = buf
        if buf is not None:
            buf.unread = 0
            buf.mention = False
            buf.place_marker()
            if buf.kind == "dm" and buf.more and not buf.ids:
                self.load_older(buf)
        self.log_view.show(buf)
        self.schedule_mark()
        self.refresh_rooms()
        self.refresh_members()
        placeholder = f"message {buf.title}" if buf else "/join a room"
        self.query_one(ChatInput).placeholder = placeholder + "   (/help for commands)"

    def refresh_rooms(self) -> None:
        self.query_one(RoomList).show_buffers(self.buffers.order, self.current)
        self.chat_app.save_state()

    def refresh_members(self) -> None:
        buf = self.current
        members = buf.members if buf is not None and buf.kind == "room" else []
        if buf is not None and buf.kind == "dm":
            members = [self.buffers.me] + ([] if buf.offline else [buf.name])
            members = list({p.name_key(m): m for m in members}.values())  # /msg to oneself
        mark = buf.mark_of if buf is not None and buf.kind == "room" else (lambda n: "")
        self.query_one(MemberList).show_members(members, self.buffers.me, mark)
        title = "" if buf is None else buf.title
        if buf is not None and buf.kind == "room":
            title += "  ·  private" if buf.private else ""
            title += f"  ·  {len(buf.members)} here" if buf.joined else "  ·  not joined"
            if buf.topic:
                title += f"  ·  {' '.join(buf.topic.split())}"
        elif buf is not None:
            title += "  ·  direct conversation" + ("  ·  not online" if buf.offline else "")
        self.query_one("#title-bar", Static).update(title)

    def changed(self, buf: Buffer, prepended: list[Entry] | None = None) -> None:
        """A buffer got new lines: redraw it if shown, else count them as unread."""
        if buf is self.current:
            self.log_view.sync(prepended)
            self.schedule_mark()

    # ------------------------------------------------------------ read markers (section 10)

    @property
    def markers(self) -> bool:
        """Whether read markers are kept: an account, on a server that speaks them."""
        welcome = self.client.welcome
        return welcome is not None and welcome.account and "markers" in self.client.features

    def schedule_mark(self) -> None:
        """Move the marker `mark_delay` after the last change, if the view is at the bottom."""
        buf = self.current
        if buf is None or buf.read is None or buf.newest_id <= max(buf.read, buf.marking):
            return
        if self._mark_timer is not None:
            self._mark_timer.stop()
        self._mark_timer = self.set_timer(self.mark_delay, self.send_mark)

    def send_mark(self, buf: Buffer | None = None) -> None:
        """Tell the server the conversation is read up to its newest message shown."""
        if buf is None:
            self._mark_timer = None
            buf = self.current
            if buf is None or not self.log_view.at_bottom:
                return
        upto = buf.newest_id
        if buf.read is None or upto <= max(buf.read, buf.marking):
            return
        if buf.kind == "room":
            sent = self.client.mark(upto, room=buf.name)
        else:
            sent = self.client.mark(upto, with_=buf.name)
        if sent:
            buf.marking = upto

    @on(ChatLog.ReachedBottom)
    def reached_bottom(self, event: ChatLog.ReachedBottom) -> None:
        if event.buffer is self.current:
            self.schedule_mark()

    def _apply_marked(self, marked: mk.Marked) -> None:
        """The marker moved (from this device or another): fewer unread messages."""
        if marked.room is not None:
            buf = self.buffers.find("room", marked.room)
        else:
            buf = self.buffers.find("dm", marked.with_ or "")
        if buf is None:
            return
        buf.read = max(buf.read or 0, marked.upto)
        oldest = buf.oldest_id
        if buf is not self.current and oldest is not None and marked.upto >= oldest:
            buf.unread = buf.unread_after(buf.read)
            buf.mention = buf.mention and buf.unread > 0
            self.refresh_rooms()

    def _apply_counts(self, frame: p.RoomList | mk.Directs) -> None:
        """The server's unread counts (`rooms` entries, `directs`) for the room list."""
        if isinstance(frame, p.RoomList):
            for info in frame.rooms:
                room = self.buffers.find("room", info.room)
                if room is not None and info.read is not None:
                    self._set_count(room, info.read, info.unread or 0)
        else:
            for direct in frame.directs:
                buf = self.buffers.get("dm", direct.with_)
                buf.more = buf.more or not buf.ids
                self._set_count(buf, direct.read, direct.unread)
        self.refresh_rooms()

    def _set_count(self, buf: Buffer, read: int, unread: int) -> None:
        buf.read = max(buf.read or 0, read)
        if buf is not self.current:
            buf.unread = unread
        elif buf.kind == "dm" and buf.more and not buf.ids:
            self.load_older(buf)

    @on(ChatLog.UnseenChanged)
    def unseen_changed(self, event: ChatLog.UnseenChanged) -> None:
        """Show how many lines came below the view while the user reads older ones."""
        below = self.query_one("#new-below", Static)
        below.display = event.count > 0
        plural = "s" if event.count != 1 else ""
        below.update(f"↓ {event.count} new message{plural} below (PgDn)")

    def note(self, text: str, kind: str = "info", buf: Buffer | None = None) -> None:
        """A line for the user (help, errors, answers) in a buffer, the current one by default."""
        target = buf or self.current
        if target is None:
            self.notify(text, severity="error" if kind == "error" else "information")
            return
        self.buffers.note(target, text, "error" if kind == "error" else "info")
        self.changed(target)

    def completion_names(self) -> list[str]:
        buf = self.current
        names = list(buf.members) if buf is not None else []
        names += [b.name for b in self.buffers.order if b.kind == "dm"]
        me = p.name_key(self.buffers.me)
        return [n for n in names if p.name_key(n) != me]

    # ------------------------------------------------------------ connection events

    def handle(self, event: c.ClientEvent) -> None:
        """Apply one event of the connection layer to the buffers and the widgets."""
        status = self.query_one(StatusLine)
        if isinstance(event, c.Connected):
            self._stop_countdown()
            who = f"{event.welcome.name}{' (account)' if event.welcome.account else ''}"
            status.set("online", f"connected to {self.client.address} as {who}")
            if event.resumed:
                self.note("reconnected; catching up")
        elif isinstance(event, c.Disconnected):
            self._apply_disconnected(event)
        elif isinstance(event, c.Reconnecting):
            self._stop_countdown()
            status.set(
                "connecting", f"reconnecting to {self.client.address} (try {event.attempt})…"
            )
        elif isinstance(event, p.Message):
            self._apply_message(event)
        elif isinstance(event, p.EditEntry | p.DeleteEntry | p.TopicEntry):
            self._apply_entry(event)
        elif isinstance(event, c.Sent):
            self._apply_sent(event)
        elif isinstance(event, c.SayFailed):
            self._apply_say_failed(event)
        elif isinstance(event, p.Joined):
            self._apply_joined(event)
        elif isinstance(event, p.Left):
            buf = self.buffers.find("room", event.room)
            if buf is not None:
                self.close_buffer(buf)
        elif isinstance(event, p.Presence):
            self._apply_presence(event)
        elif isinstance(event, p.HistoryPage):
            self._apply_history(event)
        elif isinstance(event, p.Members):
            self._apply_members(event)
        elif isinstance(event, p.RoomList):
            rooms = ", ".join(f"#{r.room} ({r.members})" for r in event.rooms) or "none yet"
            self.note(f"rooms on the server: {rooms}")
            self._apply_counts(event)
        elif isinstance(event, c.Background):
            self._apply_counts(event.frame)
        elif isinstance(event, mk.Marked):
            self._apply_marked(event)
        elif isinstance(event, mk.Directs):
            self._apply_counts(event)
        elif isinstance(event, p.Results):
            if self.search_screen is not None and self.search_screen.query_text == event.query:
                self.search_screen.take(event)
        elif isinstance(event, c.ContextPage):
            if self.context_screen is not None and self.context_screen.hit.id == event.around:
                self.context_screen.take(event.page)
        elif isinstance(event, md.RoomState | md.Invited | md.Kicked | md.Banned | md.BanList):
            self._apply_room_event(event)
        elif isinstance(event, c.RequestFailed):
            self._apply_request_failed(event)
        elif isinstance(event, p.Bye):
            self.note(f"the server said goodbye: {c.explain_bye(event)}", "error")
            if event.reason == "banned":
                self.notify(c.explain_bye(event), severity="error", timeout=10)
        elif isinstance(event, p.Error):
            self.note(f"server error: {c.explain_error(event)} ({event.code})", "error")
        elif isinstance(event, c.BadFrame):
            self.log.warning(f"unreadable frame from the server: {event.error}")

    def _apply_disconnected(self, event: c.Disconnected) -> None:
        status = self.query_one(StatusLine)
        for buf in self.buffers.order:
            buf.loading_older = False
        if event.retry_in is None:
            self._stop_countdown()
            status.set("stopped", f"disconnected: {event.reason}")
            self.note(f"disconnected: {event.reason}", "error")
            return
        self._retry_reason = event.reason
        self._retry_at = time.monotonic() + event.retry_in
        if self._retry_timer is None:
            self._retry_timer = self.set_interval(0.5, self._show_countdown)
        self._show_countdown()

    def _show_countdown(self) -> None:
        if self._retry_at is None:
            return
        left = max(0, round(self._retry_at - time.monotonic()))
        self.query_one(StatusLine).set(
            "waiting",
            f"reconnecting in {left}s (Ctrl+R: now) · connection lost: {self._retry_reason}",
        )

    def _stop_countdown(self) -> None:
        self._retry_at = None
        if self._retry_timer is not None:
            self._retry_timer.stop()
            self._retry_timer = None

    def _apply_entry(self, entry: p.EditEntry | p.DeleteEntry | p.TopicEntry) -> None:
        """A live edit, deletion or topic change: the lines it touches change in place."""
        buf = self.buffers.buffer_of_entry(entry)
        lines, changed = self.buffers.add_entries(buf, [entry])
        mode = self.compose_mode
        if mode is not None and mode.entry in changed and mode.entry.deleted:
            self.set_mode(None)
            self.note("the message you were answering or editing was deleted", buf=buf)
        if isinstance(entry, p.TopicEntry) and buf is self.current:
            self.refresh_members()
        if lines or changed:
            self.changed(buf)

    def _apply_message(self, message: p.Message) -> None:
        buf = self.buffers.buffer_of(message)
        entries = self.buffers.add_messages(buf, [message])
        if not entries:
            return
        if buf.kind == "dm" and buf.offline:
            buf.offline = False
            if buf is self.current:
                self.refresh_members()
        if buf is not self.current:
            buf.unread += 1
            buf.mention |= entries[0].mention
        self.chat_app.notify_entry(buf, entries[0], shown=buf is self.current)
        self.changed(buf)
        self.refresh_rooms()

    def _apply_sent(self, event: c.Sent) -> None:
        buf = self.buffers.find_pending(event.nonce) or self.buffers.buffer_of(event.message)
        self.buffers.take_pending(buf, event.nonce)
        if event.new:
            self.buffers.add_messages(self.buffers.buffer_of(event.message), [event.message])
        self.changed(buf)

    def _apply_say_failed(self, event: c.SayFailed) -> None:
        buf = self.buffers.find_pending(event.nonce)
        if buf is None:
            return
        entry = self.buffers.take_pending(buf, event.nonce)
        if entry is not None:
            entry.kind = "failed"
            entry.render_cache = None
            buf.entries.append(entry)
        if buf.kind == "dm" and event.error.code == "no_such_user":
            buf.offline = True
            if buf is self.current:
                self.refresh_members()
        self.note(f"not sent: {c.explain_error(event.error)}", "error", buf)

    def _apply_joined(self, joined: p.Joined) -> None:
        buf = self.buffers.get("room", joined.room)
        first = not buf.ids
        buf.joined = True
        buf.members = list(joined.members)
        if joined.topic is not None:
            buf.topic = joined.topic
            buf.owner, buf.ops, buf.private = joined.owner, list(joined.ops), joined.private
        if joined.read is not None:
            buf.read = max(buf.read or 0, joined.read)
        if first:
            buf.more = joined.more
        entries, _ = self.buffers.add_entries(buf, joined.history, page=True)
        if first and buf.read is not None:
            if buf is self.current:
                buf.place_marker()
            else:
                buf.unread = buf.unread_after(buf.read)
        elif entries and not first and buf is not self.current:
            shown = [e for e in entries if e.kind == "message"]
            buf.unread += len(shown)
            buf.mention |= any(e.mention for e in shown)
        self.changed(buf)
        self.refresh_rooms()
        if buf is self.current:
            self.refresh_members()

    def _apply_presence(self, presence: p.Presence) -> None:
        buf = self.buffers.find("room", presence.room)
        if buf is None:
            return
        key = p.name_key(presence.name)
        buf.members = [m for m in buf.members if p.name_key(m) != key]
        if presence.state == "joined":
            buf.members.append(presence.name)
            entry = Entry("presence", f"{presence.name} joined", sender="-->", ts=presence.ts)
        else:
            reason = {
                "part": "left",
                "quit": "quit",
                "timeout": "timed out",
                "kicked": "was kicked",
            }.get(presence.reason or "", f"left ({presence.reason})" if presence.reason else "left")
            said = f" ({presence.message})" if presence.message else ""
            entry = Entry(
                "presence", f"{presence.name} {reason}{said}", sender="<--", ts=presence.ts
            )
        buf.entries.append(entry)
        self.changed(buf)
        if buf is self.current:
            self.refresh_members()

    def _apply_history(self, page: p.HistoryPage) -> None:
        if page.room is not None:
            buf = self.buffers.get("room", page.room)
        else:
            buf = self.buffers.get("dm", page.with_ or "?")
        buf.loading_older = False
        buf.more = page.more
        first = not buf.ids
        entries, _ = self.buffers.add_entries(buf, page.messages, older=True, page=True)
        if first and buf is self.current and buf.place_marker():
            entries = list(buf.entries)
        if not buf.more:
            entries += self.mark_start(buf)
        self.changed(buf, prepended=entries)

    def mark_start(self, buf: Buffer) -> list[Entry]:
        """Put a "no older messages" line at the top of a buffer (once); returns it if new."""
        if buf.entries and buf.entries[0].kind == "info" and buf.entries[0].text == START_MARK:
            return []
        entry = Entry("info", START_MARK)
        buf.entries.insert(0, entry)
        return [entry]

    def _apply_members(self, members: p.Members) -> None:
        buf = self.buffers.find("room", members.room)
        if buf is not None:
            buf.members = list(members.members)
            if buf is self.current:
                self.refresh_members()
        self.note(f"in #{members.room}: {', '.join(members.members) or 'nobody'}")

    def _apply_request_failed(self, event: c.RequestFailed) -> None:
        request, words = event.request, c.explain_error(event.error)
        if isinstance(request, p.Join):
            buf = self.buffers.find("room", request.room.spelling)
            if buf is not None and not buf.ids:
                self.close_buffer(buf)
            self.note(f"cannot join #{request.room}: {words}", "error")
        elif isinstance(request, p.Edit | p.Delete):
            verb = "edit" if isinstance(request, p.Edit) else "delete"
            found = self.buffers.find_message(request.message)
            self.note(f"cannot {verb} that message: {words}", "error", found[0] if found else None)
        elif isinstance(request, p.Search):
            if self.search_screen is not None and self.search_screen.query_text == request.query:
                self.search_screen.failed(words)
            else:
                self.note(f"search failed: {words}", "error")
        elif isinstance(request, p.HistoryRequest) and request.after is not None:
            if self.context_screen is not None:
                self.context_screen.note(f"cannot show that message: {words}")
        elif isinstance(request, md.TopicRequest | md.SetRoom | md.Moderate | md.BansRequest):
            target = request.name if isinstance(request, md.Moderate) else None
            what = f"{request.type} {target}" if target else f"change #{request.room}"
            if isinstance(request, md.TopicRequest):
                what = f"set the topic of #{request.room}"
            elif isinstance(request, md.BansRequest):
                what = f"list the bans of #{request.room}"
            buf = self.buffers.find("room", request.room.spelling) if request.room else None
            self.note(f"cannot {what}: {words}", "error", buf)
        elif isinstance(request, p.HistoryRequest):
            target = request.room or request.with_
            kind: BufferKind = "room" if request.room else "dm"
            buf = self.buffers.find(kind, target.spelling) if target else None
            if buf is not None:
                buf.loading_older = False
                buf.more = False
            self.note(f"cannot load older messages: {words}", "error", buf)
        else:
            self.note(f"{request.type} failed: {words}", "error")

    def close_buffer(self, buf: Buffer) -> None:
        order = self.buffers.order
        index = order.index(buf) if buf in order else 0
        self.buffers.remove(buf)
        if buf is self.current:
            self.switch_to(order[min(index, len(order) - 1)] if order else None)
        else:
            self.refresh_rooms()

    # ------------------------------------------------------------ typing

    @on(ChatInput.Submitted, "#input")
    def submitted(self, event: ChatInput.Submitted) -> None:
        """Send the typed text or run its command; nothing typed may crash the client."""
        try:
            self.take_line(event.value.rstrip("\n"))
        except Exception as exc:  # a bug of ours must not end the session
            self.log.error(f"error on input {event.value!r}: {exc!r}")
            self.note(f"internal error ({exc!r}); please report it", "error")

    def take_line(self, line: str) -> None:
        chat_input = self.query_one(ChatInput)
        mode = self.compose_mode
        if mode is not None and mode.kind == "edit":
            self.finish_edit(mode, line)
            return
        if not line.strip():
            chat_input.value = ""
            return
        command = parse_command(line)
        if command is None:
            count = len(unicodedata.normalize("NFC", text_of(line)))
            limit = self.max_text
            if count > limit:  # kept in the box, to be shortened
                self.note(
                    f"not sent: {count} characters, {count - limit} over the limit of {limit}",
                    "error",
                )
                return
        chat_input.value = ""
        chat_input.remember(line)
        if command is None:
            self.send(text_of(line), reply_to=self._reply_target())
        else:
            self.run_command(*command)

    def _reply_target(self) -> int | None:
        """The id of the message being answered (the reply mode ends with it)."""
        mode = self.compose_mode
        if mode is None or mode.kind != "reply" or mode.buffer is not self.current:
            return None
        self.set_mode(None)
        return mode.entry.id

    # ------------------------------------------------------------ edit, delete, reply

    def set_mode(self, mode: Compose | None) -> None:
        """Enter or leave the edit / reply mode of the box (its title says which)."""
        chat_input = self.query_one(ChatInput)
        was_edit = self.compose_mode is not None and self.compose_mode.kind == "edit"
        self.compose_mode = mode
        chat_input.editing = mode is not None and mode.kind == "edit"
        if mode is None:
            chat_input.border_title = None
            if was_edit:
                chat_input.value = ""
            return
        if mode.kind == "edit":
            chat_input.border_title = "editing your message · Enter saves · Esc cancels"
            chat_input.value = mode.entry.text
        else:
            quote = quote_of(mode.buffer, mode.entry.id or 0).removeprefix("↳ ")
            chat_input.border_title = f"replying to {quote} · Esc cancels"
        chat_input.focus()

    def start_edit(self, entry: Entry | None, buf: Buffer | None = None) -> bool:
        """Put one of the user's messages in the box to edit it; False when there is none."""
        buf = buf or self.current
        if entry is None or buf is None:
            return False
        if not entry.own:
            self.note("only your own messages can be edited", "error", buf)
            return True
        self.set_mode(Compose("edit", entry, buf))
        return True

    def finish_edit(self, mode: Compose, line: str) -> None:
        """Enter in edit mode: send the `edit` (nothing when unchanged or empty)."""
        entry = mode.entry
        if not line.strip() or line == entry.text or entry.id is None or entry.deleted:
            self.set_mode(None)
            if not line.strip():
                self.note("an edit cannot be empty: /delete takes a message back", buf=mode.buffer)
            return
        try:
            sent = self.client.edit(entry.id, line)
        except p.ChatError as exc:
            self.note(f"not saved: {exc.message}", "error", mode.buffer)
            return
        if not sent:
            self.note("not connected: the edit was not sent", "error", mode.buffer)
            return
        self.set_mode(None)

    def delete_message(self, entry: Entry | None, buf: Buffer | None = None) -> None:
        """Ask the server to delete a message (it says no unless we may)."""
        buf = buf or self.current
        if entry is None or entry.id is None or buf is None:
            self.note("you have no message here to delete", "error")
        elif not self.client.delete(entry.id):
            self.note("not connected: the message was not deleted", "error", buf)

    @on(ChatInput.EditLast)
    def edit_last(self, event: ChatInput.EditLast) -> None:
        """Up on an empty box: edit the user's last message here, else recall a line."""
        buf = self.current
        if buf is None or not self.start_edit(self.buffers.last_own(buf), buf):
            self.query_one(ChatInput).action_recall(-1, force=True)

    @on(ChatInput.Cancel)
    def cancel_mode(self, event: ChatInput.Cancel) -> None:
        if self.compose_mode is not None:
            self.set_mode(None)

    def action_select_message(self) -> None:
        """Alt+Up: select the newest message of the log (then Up/Down, r, e, d, Esc)."""
        if not self.log_view.select(-1 if self.log_view.selected else 0):
            self.notify("no message to select here", timeout=3)

    @on(ChatLog.Act)
    def act_on_message(self, event: ChatLog.Act) -> None:
        buf = self.current
        if buf is None:
            return
        if event.action == "reply":
            self.set_mode(Compose("reply", event.entry, buf))
        elif event.action == "edit":
            self.start_edit(event.entry, buf)
        else:
            self.delete_message(event.entry, buf)

    @on(ChatLog.Left)
    def log_left(self, event: ChatLog.Left) -> None:
        self.query_one(ChatInput).focus()

    @property
    def max_text(self) -> int:
        welcome = self.client.welcome
        return welcome.limits.max_text if welcome is not None else p.MAX_TEXT

    @on(ChatInput.GotoBuffer)
    def goto_buffer(self, event: ChatInput.GotoBuffer) -> None:
        self.action_goto(event.number)

    def on_key(self, event: events.Key) -> None:
        """A key typed while the input has no focus is typed into it."""
        chat_input = self.query_one(ChatInput)
        text = typed_text(event)
        if text is None or self.focused is chat_input:
            return
        if self.focused is self.log_view:  # a selected message: typing ends the selection
            self.log_view.action_leave()
        event.stop()
        event.prevent_default()
        chat_input.focus()
        chat_input.insert_text(text)

    def send(
        self,
        text: str,
        buf: Buffer | None = None,
        *,
        reply_to: int | None = None,
        action: bool = False,
    ) -> None:
        """Send text to a buffer (the current one by default), shown pending until echoed."""
        buf = buf or self.current
        if buf is None:
            self.note("join a room first: /join ROOM", "error")
            return
        if buf.kind == "room" and p.name_key(buf.name) not in self.client.rooms:
            self.note(f"you are not in #{buf.name}: /join {buf.name}", "error", buf)
            return
        room, to = (buf.name, None) if buf.kind == "room" else (None, buf.name)
        try:
            nonce = self.client.say(text, room=room, to=to, reply_to=reply_to, action=action)
        except p.ChatError as exc:
            self.note(f"not sent: {exc.message}", "error", buf)
            return
        self.buffers.add_pending(buf, nonce, text, reply_to=reply_to, action=action)
        self.changed(buf)

    def run_command(self, command: str, args: str) -> None:
        """Carry out one of the slash commands (see commands.py)."""
        buf = self.current
        try:
            if command == "/join":
                self._join(args)
            elif command == "/part":
                self._part(args)
            elif command == "/msg":
                self._msg(args)
            elif command == "/who":
                room = args.lstrip("#") or (buf.name if buf and buf.kind == "room" else "")
                if not room:
                    self.note("usage: /who ROOM", "error")
                elif not self.client.who(room):
                    self.note("not connected", "error")
            elif command == "/rooms":
                if not self.client.list_rooms():
                    self.note("not connected", "error")
            elif command == "/history":
                self._history(buf)
            elif command == "/me":
                if args:
                    self.send(args, action=True, reply_to=self._reply_target())
                else:
                    self.note("usage: /me TEXT (shown as: * you TEXT)", "error")
            elif command == "/edit":
                last = self.buffers.last_own(buf) if buf is not None else None
                if last is None or buf is None:
                    self.note("you have no message here to edit", "error")
                elif not args:
                    self.start_edit(last, buf)
                else:
                    self.finish_edit(Compose("edit", last, buf), args)
            elif command == "/delete":
                self.delete_message(self.buffers.last_own(buf) if buf is not None else None, buf)
            elif command == "/search":
                self._search(args)
            elif command in MODERATION:
                self._moderate(command, args)
            elif command == "/quit":
                self.app.run_worker(self.chat_app.quit_chat(args or None))
            elif command == "/help":
                for line in help_lines():
                    self.note(line)
            else:
                self.note(f"unknown command {command}: /help lists them", "error")
        except p.ChatError as exc:
            self.note(exc.message, "error")

    def _history(self, buf: Buffer | None) -> None:
        """Load the page before the oldest line shown; at the start, show the start."""
        if buf is None:
            self.note("join a room first: /join ROOM", "error")
            return
        if not buf.more and buf.ids:
            if self.mark_start(buf):
                self.changed(buf, prepended=buf.entries[:1])
            self.log_view.scroll_home(animate=False)
            self.notify("no older messages", timeout=3)
            return
        self.load_older(buf, explicit=True)
        self.log_view.scroll_home(animate=False)

    def _search(self, args: str) -> None:
        """`/search [in:#room|in:@name] [from:name] words`: the results screen."""
        scope: dict[str, str] = {}
        for word, value in SEARCH_FILTER.findall(args):
            if word.casefold() == "from":
                scope["from_"] = value.lstrip("@")
            elif value.startswith("@"):
                scope["with_"] = value[1:]
            else:
                scope["room"] = value.lstrip("#")
        query = " ".join(SEARCH_FILTER.sub(" ", args).split())
        if not query:
            self.note("usage: /search [in:#room|in:@name] [from:name] WORDS", "error")
            return
        screen = SearchScreen(query, **scope)
        self.search_screen = screen
        self.app.push_screen(screen)
        if not screen.ask():
            screen.failed("not connected")

    def _moderate(self, command: str, args: str) -> None:
        """The section 11 commands, for the room shown; the server says who may."""
        buf = self.current
        if buf is None or buf.kind != "room":
            self.note(f"{command} works in a room: switch to one first", "error")
            return
        room = p.parse_name(buf.name, "room", "room_invalid")
        name, _, rest = args.partition(" ")
        frame: md.ModerationRequest
        if command == "/topic":
            if not args:
                words = f"the topic of #{buf.name}: {buf.topic}" if buf.topic else "no topic"
                self.note(words + " (/topic TEXT sets it, /topic -delete clears it)")
                return
            frame = md.TopicRequest(room, md.check_topic("" if args == "-delete" else args))
        elif command == "/bans":
            frame = md.BansRequest(room)
        elif command == "/private":
            if args.casefold() not in ("on", "off"):
                self.note("usage: /private on|off", "error")
                return
            frame = md.SetRoom(room, private=args.casefold() == "on")
        elif not name:
            self.note(f"usage: {command} {COMMANDS[command][0]}", "error")
            return
        else:
            who = p.parse_name(name.lstrip("@"), "name", "name_invalid")
            reason = rest.strip() if command in ("/kick", "/ban") else ""
            frame = md.Moderate(command[1:], who, room, reason)
        if not self.client.moderate(frame):
            self.note("not connected", "error")

    def _apply_room_event(
        self, event: md.RoomState | md.Invited | md.Kicked | md.Banned | md.BanList
    ) -> None:
        """Section 11's answers and events: lines in the room, its members and marks."""
        me = p.name_key(self.buffers.me)
        buf = self.buffers.find("room", event.room) if event.room else None
        if isinstance(event, md.RoomState):
            if buf is not None:
                self._apply_room_state(buf, event)
        elif isinstance(event, md.Invited):
            if p.name_key(event.name) == me:
                self.note(f"{event.by} invited you to #{event.room}: /join #{event.room}")
                self.notify(f"{event.by} invited you to #{event.room}", timeout=10)
            else:
                self.note(f"{event.by} invited {event.name} to #{event.room}", buf=buf)
        elif isinstance(event, md.Kicked):
            reason = f": {event.reason}" if event.reason else ""
            if p.name_key(event.name) == me:
                text = f"you were kicked from #{event.room} by {event.by}{reason}"
                if buf is not None:
                    buf.joined, buf.members = False, []
                    self.note(text, "error", buf)
                if buf is not self.current:
                    self.note(text, "error")
                self.refresh_rooms()
                self.refresh_members()
            else:
                self._remove_member(buf, event.name, f"you kicked {event.name}{reason}")
        elif isinstance(event, md.BanList):
            lines = [
                f"{b.name} (by {b.by}{': ' + b.reason if b.reason else ''})" for b in event.bans
            ]
            self.note(f"banned from #{event.room}: {', '.join(lines) or 'nobody'}", buf=buf)
        elif event.lifted:
            self.note(f"{event.name} may join #{event.room} again", buf=buf)
        elif event.room is None:
            self.note(f"{event.name} is banned from the server")
        else:
            reason = f": {event.reason}" if event.reason else ""
            self._remove_member(buf, event.name, f"you banned {event.name}{reason}")

    def _remove_member(self, buf: Buffer | None, name: str, text: str) -> None:
        if buf is None:
            self.note(text)
            return
        buf.members = [m for m in buf.members if p.name_key(m) != p.name_key(name)]
        self.note(text, buf=buf)
        if buf is self.current:
            self.refresh_members()

    def _apply_room_state(self, buf: Buffer, state: md.RoomState) -> None:
        """Owner, ops, privacy: say what changed, then show it."""
        old = {p.name_key(o) for o in buf.ops}
        new = {p.name_key(o) for o in state.ops}
        changes = [f"{o} is now an op" for o in state.ops if p.name_key(o) not in old]
        changes += [f"{o} is no longer an op" for o in buf.ops if p.name_key(o) not in new]
        if (state.owner or "") != (buf.owner or ""):
            changes.append(f"{state.owner} owns the room now" if state.owner else "no owner now")
        if state.private != buf.private:
            changes.append("the room is private now" if state.private else "the room is public now")
        buf.owner, buf.ops, buf.private = state.owner, list(state.ops), state.private
        for change in changes:
            self.note(change, buf=buf)
        if buf is self.current:
            self.refresh_members()

    def _join(self, args: str) -> None:
        words = args.split()
        if len(words) != 1:
            self.note(
                "usage: /join ROOM (one room; room names have no spaces, try "
                f"/join {'-'.join(w.lstrip('#') for w in words) or 'lobby'})",
                "error",
            )
            return
        room = words[0].lstrip("#")
        name = self.client.join(room)
        buf = self.buffers.get("room", name.spelling)
        if not self.client.connected:
            self.note(f"#{name} will be joined once connected", buf=buf)
        self.switch_to(buf)

    def _part(self, args: str) -> None:
        buf = self.current
        if args.split():
            buf = self.buffers.find("room", args.split()[0].lstrip("#"))
        if buf is None:
            self.note("usage: /part ROOM (a room you are in)", "error")
        elif buf.kind == "dm" or not self.client.part(buf.name) or not self.client.connected:
            self.close_buffer(buf)

    def _msg(self, args: str) -> None:
        name, _, text = args.partition(" ")
        name = name.lstrip("@")
        if not name:
            self.note("usage: /msg NAME TEXT", "error")
            return
        spelling = p.parse_name(name, "name", "name_invalid").spelling
        buf = self.buffers.get("dm", spelling)
        self.switch_to(buf)
        if text.strip():
            self.send(text, buf)

    def load_older(self, buf: Buffer | None, explicit: bool = False) -> None:
        """Ask for the page of messages before the oldest one shown."""
        if buf is None or buf.loading_older:
            return
        if not buf.more and not explicit:
            return
        if buf.kind == "room":
            sent = self.client.history(room=buf.name, before=buf.oldest_id)
        else:
            sent = self.client.history(with_=buf.name, before=buf.oldest_id)
        if sent:
            buf.loading_older = True
        else:
            self.note("not connected", "error", buf)

    @on(ChatLog.NeedOlder)
    def need_older(self, event: ChatLog.NeedOlder) -> None:
        self.load_older(event.buffer)

    @on(OptionList.OptionSelected, "#rooms")
    def room_clicked(self, event: OptionList.OptionSelected) -> None:
        buf = self.buffers.by_ident.get(event.option_id or "")
        if buf is not None and buf is not self.current:
            self.switch_to(buf)
        self.query_one(ChatInput).focus()

    # ------------------------------------------------------------ keys

    def action_cycle(self, step: int) -> None:
        order = self.buffers.order
        if not order:
            return
        index = order.index(self.current) if self.current in order else -step
        self.switch_to(order[(index + step) % len(order)])

    def action_goto(self, number: int) -> None:
        if 1 <= number <= len(self.buffers.order):
            self.switch_to(self.buffers.order[number - 1])

    def action_reconnect(self) -> None:
        if self.client.connected:
            self.note(f"already connected to {self.client.address}")
        else:
            self.client.reconnect_now()

    def action_scroll(self, direction: int) -> None:
        if direction < 0:
            self.log_view.scroll_page_up(animate=False)
            if self.log_view.scroll_offset.y == 0:
                self.load_older(self.current)
        else:
            self.log_view.scroll_page_down(animate=False)

    def action_help(self) -> None:
        self.run_command("/help", "")

    def action_copy_text(self) -> None:
        """Ctrl+C with log text selected by mouse: copy it (OSC 52) and say so."""
        super().action_copy_text()  # SkipAction when nothing is selected: Ctrl+C goes on
        self.notify("copied to the clipboard", timeout=2)
