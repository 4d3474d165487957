"""Section 11's rules in the core, without sockets: role x act x room kind -> ok or error."""

from __future__ import annotations

import pytest

from trio_chat.core.rooms import KINDS, ROLES, RULES, decide, kind_of
from trio_chat.rooms_store import RoomRecord

# Written from PROTOCOL.md section 11, not from the code. Per act, per role: the kinds of room
# where it is allowed, as letters: P public with owner, Q private with owner, L public without
# owner ("lobby"), M private without owner. Anything else is `forbidden`, but for a topic sent
# from outside a public room without owner, which is `not_in_room`.
EXPECTED: dict[str, dict[str, str]] = {
    #          admin   owner   op      member  invited outsider
    "join": dict(admin="PQLM", owner="PQLM", op="PQLM", member="PQLM", invited="PQLM",
                 outsider="PL"),
    "topic": dict(admin="PQLM", owner="PQLM", op="PQLM", member="LM", invited="", outsider=""),
    "private": dict(admin="PQLM", owner="PQ", op="", member="", invited="", outsider=""),
    "owner": dict(admin="PQLM", owner="", op="", member="", invited="", outsider=""),
    "invite": dict(admin="PQLM", owner="PQLM", op="PQLM", member="", invited="", outsider=""),
    "kick": dict(admin="PQLM", owner="PQLM", op="PQLM", member="", invited="", outsider=""),
    "ban": dict(admin="PQLM", owner="PQLM", op="PQLM", member="", invited="", outsider=""),
    "unban": dict(admin="PQLM", owner="PQLM", op="PQLM", member="", invited="", outsider=""),
    "bans": dict(admin="PQLM", owner="PQLM", op="PQLM", member="", invited="", outsider=""),
    "op": dict(admin="PQLM", owner="PQ", op="", member="", invited="", outsider=""),
    "deop": dict(admin="PQLM", owner="PQ", op="", member="", invited="", outsider=""),
    "delete": dict(admin="PQLM", owner="PQLM", op="PQLM", member="", invited="", outsider=""),
}  # fmt: skip
LETTER = {"public": "P", "private": "Q", "ownerless": "L", "ownerless_private": "M"}


def expected(role: str, act: str, kind: str) -> str | None:
    if LETTER[kind] in EXPECTED[act][role]:
        return None
    if act == "topic" and role in ("invited", "outsider") and kind == "ownerless":
        return "not_in_room"
    return "forbidden"


@pytest.mark.parametrize("act", sorted(EXPECTED))
def test_the_table_is_section_11(act: str) -> None:
    for role in ROLES:
        for kind in KINDS:
            assert decide(role, act, kind) == expected(role, act, kind), (role, act, kind)  # type: ignore[arg-type]
            assert RULES[(role, act, kind)] == expected(role, act, kind)  # type: ignore[index]


def test_the_table_covers_every_role_act_and_kind() -> None:
    assert len(RULES) == len(ROLES) * len(EXPECTED) * len(KINDS)


def test_kind_of_a_room() -> None:
    assert kind_of(None) == "ownerless"
    assert kind_of(RoomRecord("a")) == "ownerless"
    assert kind_of(RoomRecord("a", private=True)) == "ownerless_private"
    assert kind_of(RoomRecord("a", owner="Souvik")) == "public"
    assert kind_of(RoomRecord("a", owner="Souvik", private=True)) == "private"
