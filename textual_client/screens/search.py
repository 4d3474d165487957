"""Search (section 9): a results screen, newest first and paged, and a hit in its context.

`SearchScreen` lists the hits of `/search`; Enter on one pushes `ContextScreen`, which
shows the entries around it (`history` with `before` and with `after`), the hit
highlighted. Esc goes back. The main screen hands both their answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from textual_client import connection as c
from textual_client.buffers import Buffer, BufferKind, Buffers, local_time
from textual_client.widgets import ChatLog
from trio_chat import protocol as p

if TYPE_CHECKING:
    from textual_client.app import ChatApp

MORE = "more"  # the id of the last option when older hits exist


def place_of(message: p.Message, me: str) -> str:
    """The conversation of a message: `#lobby`, or `@bob` for a direct one."""
    if message.room is not None:
        return f"#{message.room}"
    mine = p.name_key(message.sender) == p.name_key(me)
    return f"@{message.to if mine else message.sender}"


def hit_label(message: p.Message, me: str) -> Text:
    """Two lines: `#lobby · bob · 2026-11-24 21:00`, then the text (on one line)."""
    label = Text(no_wrap=True, overflow="ellipsis")
    label.append(place_of(message, me), style="bold")
    label.append(f" · {message.sender} · ", style="")
    label.append(local_time(message.ts, with_date=True), style="dim")
    label.append("\n  " + " ".join(message.text.split()))
    return label


class SearchScreen(Screen[None]):
    """The hits of one search, newest first; `more` loads the next (older) page."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Open"),
    ]

    def __init__(
        self,
        query: str,
        *,
        room: str | None = None,
        with_: str | None = None,
        from_: str | None = None,
    ) -> None:
        super().__init__()
        self.query_text = query
        self.room, self.with_, self.from_ = room, with_, from_
        self.hits: list[p.Message] = []
        self.more = False
        self.loading = False

    @property
    def client(self) -> c.ChatClient:
        app: ChatApp = self.app  # type: ignore[assignment]
        return app.client

    @property
    def scope(self) -> str:
        words = [
            f"in #{self.room}" if self.room else "",
            f"with @{self.with_}" if self.with_ else "",
        ]
        words.append(f"from {self.from_}" if self.from_ else "")
        return " ".join(w for w in words if w)

    def compose(self) -> ComposeResult:
        title = f"search: {self.query_text}" + (f"  ·  {self.scope}" if self.scope else "")
        yield Static(title, id="search-title")
        yield OptionList(id="search-results")
        yield Static("searching…", id="search-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def ask(self, before: int | None = None) -> bool:
        """Send the search (the page before `before`); False when not connected."""
        sent = self.client.search(
            self.query_text, room=self.room, with_=self.with_, from_=self.from_, before=before
        )
        self.loading = sent
        return sent

    def take(self, results: p.Results) -> None:
        """A page of hits: added below those shown."""
        self.loading = False
        self.hits += [m for m in results.messages if all(h.id != m.id for h in self.hits)]
        self.more = results.more
        me = self.client.name
        options = [Option(hit_label(m, me), id=str(i)) for i, m in enumerate(self.hits)]
        if self.more:
            options.append(Option(Text("more results… (Enter)", style="italic"), id=MORE))
        results_list = self.query_one(OptionList)
        highlighted = results_list.highlighted
        results_list.set_options(options)
        if options:
            results_list.highlighted = highlighted if highlighted is not None else 0
        count = len(self.hits)
        status = f"{count} message{'s' if count != 1 else ''} found" if count else "nothing found"
        hint = " · Enter opens a hit · Esc back"
        self.query_one("#search-status", Static).update(status + (hint if count else ""))

    def failed(self, words: str) -> None:
        self.loading = False
        self.query_one("#search-status", Static).update(f"search failed: {words}")

    def action_back(self) -> None:
        self.dismiss()

    def action_open(self) -> None:
        results_list = self.query_one(OptionList)
        index = results_list.highlighted
        if index is not None:
            self.open_option(results_list.get_option_at_index(index).id)

    @on(OptionList.OptionSelected, "#search-results")
    def option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.open_option(event.option_id)

    def open_option(self, option_id: str | None) -> None:
        """Enter on a hit: its context; on `more`: the next page."""
        if option_id == MORE:
            if not self.loading and self.hits and not self.ask(before=self.hits[-1].id):
                self.failed("not connected")
            return
        if option_id is None:
            return
        hit = self.hits[int(option_id)]
        context = ContextScreen(hit)
        app: ChatApp = self.app  # type: ignore[assignment]
        if app.main_screen is not None:
            app.main_screen.context_screen = context
        self.app.push_screen(context)
        if not self.client.context(hit):
            context.note("not connected")


class ContextScreen(Screen[None]):
    """A search hit among the entries around it, highlighted; Esc goes back to the results."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("pageup", "scroll(-1)", "Scroll", show=False),
        Binding("pagedown", "scroll(1)", "Scroll", show=False),
    ]

    def __init__(self, hit: p.Message) -> None:
        super().__init__()
        self.hit = hit
        self.pages = 0
        self.lines = Buffers()
        self.buffer: Buffer | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="context-title")
        yield ChatLog(id="context-log")
        yield Footer()

    def on_mount(self) -> None:
        me = self.app.client.name  # type: ignore[attr-defined]
        self.lines.me = me
        place = place_of(self.hit, me)
        kind: BufferKind = "room" if self.hit.room is not None else "dm"
        self.buffer = self.lines.get(kind, place[1:])
        when = local_time(self.hit.ts, with_date=True)
        title = f"{place}  ·  {self.hit.sender}'s message of {when} in its context  ·  Esc back"
        self.query_one("#context-title", Static).update(title)
        self.query_one(ChatLog).show(self.buffer)

    def take(self, page: p.HistoryPage) -> None:
        """One of the two pages around the hit (they may come in either order)."""
        buf = self.buffer
        if buf is None:
            return
        self.lines.add_entries(buf, page.messages, page=True)
        buf.entries.sort(key=lambda e: e.id or 0)
        self.pages += 1
        target = buf.by_id.get(self.hit.id)
        if target is not None:
            target.hit = True
            target.render_cache = None
        log = self.query_one(ChatLog)
        log.sync()
        if target is not None:
            self.call_after_refresh(log.scroll_to_entry, target)

    def note(self, text: str) -> None:
        if self.buffer is not None:
            self.lines.note(self.buffer, text, "error")
            self.query_one(ChatLog).sync()

    def action_back(self) -> None:
        self.dismiss()

    def action_scroll(self, direction: int) -> None:
        log = self.query_one(ChatLog)
        if direction < 0:
            log.scroll_page_up(animate=False)
        else:
            log.scroll_page_down(animate=False)
