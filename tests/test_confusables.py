"""Look-alike names: TR39 skeletons from the shipped ICU table, and the server refusing them."""

from __future__ import annotations

import json

import pytest
from chat_client import ChatClient, login
from harness import RunningServer

from trio_chat.confusables import TABLE, LookAlikes, skeleton
from trio_chat.protocol import Name, name_key

pytestmark = pytest.mark.trio


def name(text: str) -> Name:
    return Name(text, name_key(text))


async def test_the_table_comes_from_icu_and_is_not_hand_made() -> None:
    data = json.loads(TABLE.read_text(encoding="utf-8"))
    assert data["source"].startswith("ICU ")
    assert len(data["map"]) > 5000


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Souvik", "\u0405ouvik"),  # Cyrillic DZE for S
        ("paypal", "p\u0430ypal"),  # Cyrillic a
        ("Ritam", "Ritarn"),  # m and rn
        ("bob1", "bobl"),
        ("ℌello", "Hello"),  # a mathematical H
    ],
)
async def test_look_alikes_share_a_skeleton(a: str, b: str) -> None:
    assert a != b and skeleton(a) == skeleton(b)
    taken = LookAlikes()
    taken.add(name(a))
    assert taken.clash(name(b))
    assert not taken.clash(name(a.upper()))  # the same name in other case is not a look-alike


async def test_case_folding_does_not_hide_a_look_alike() -> None:
    taken = LookAlikes()
    taken.add(name("Ilya"))  # capital I looks like l
    assert taken.clash(name("llya"))
    taken.remove(name("Ilya"))
    assert not taken.clash(name("llya"))


async def test_compatibility_forms_clash_too() -> None:
    taken = LookAlikes()
    taken.add(name("full"))
    assert taken.clash(name("ｆｕｌｌ"))  # fullwidth: not in TR39's table, equal under NFKC


async def test_different_names_do_not_clash() -> None:
    taken = LookAlikes()
    for text in ("Souvik", "Ritam", "Auditor", "lobby"):
        taken.add(name(text))
    assert not taken.clash(name("Ritwik"))


async def test_the_server_refuses_a_look_alike_of_a_name_online(server: RunningServer) -> None:
    holder = await login(server.port, "Souvik")
    c = await ChatClient.connect(server.port)
    refused = await c.hello("\u0405ouvik")
    assert refused["code"] == "name_taken"
    await holder.send(type="quit")
    assert await holder.closed()  # the server let the name go before it said bye
    assert (await c.hello("\u0405ouvik"))["type"] == "welcome"


async def test_the_server_refuses_a_look_alike_of_an_account(server: RunningServer) -> None:
    owner = await login(server.port, "paypal", password="a long password")
    await owner.aclose()
    c = await ChatClient.connect(server.port)
    assert (await c.hello("p\u0430ypal"))["code"] == "name_taken"
    assert (await c.hello("p\u0430ypal", password="another password"))["code"] == "name_taken"
    assert (await c.hello("PayPal", password="a long password"))["type"] == "welcome"


async def test_digits_that_look_like_letters_are_look_alikes() -> None:
    """TR39 maps `0` to `O`; folded after the mapping (as ergo does), `B0b` looks like `Bob`."""
    names = LookAlikes()
    names.add(Name("Bob", "bob"))
    assert names.clash(Name("B0b", "b0b"))
    assert not names.clash(Name("Bobby", "bobby"))
