"""The member list of the room shown: who is in it, the user first and highlighted."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from trio_chat.protocol import name_key


class MemberList(OptionList, can_focus=False):
    """Names of a room's members, sorted case-insensitively."""

    def show_members(
        self, members: list[str], me: str, mark: Callable[[str], str] = lambda n: ""
    ) -> None:
        """`mark`: a name's prefix (`~` owner, `@` op); marked names come first, as in weechat."""
        mine = name_key(me)
        unique = {name_key(n): n for n in members}.values()  # one line (and id) a name
        rank = {"~": 0, "@": 1}
        names = sorted(
            unique, key=lambda n: (rank.get(mark(n), 2), name_key(n) != mine, name_key(n))
        )
        options = [
            Option(
                Text.assemble((mark(n), "bold green"), (n, "bold" if name_key(n) == mine else "")),
                id=f"m:{name_key(n)}",
            )
            for n in names
        ]
        self.set_options(options)
        self.highlighted = None
        self.border_title = f"{len(names)} here" if names else ""
