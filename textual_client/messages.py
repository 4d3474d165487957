"""Textual messages of the client: small dataclasses posted between the app and its screens."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from textual_client.connection import ClientEvent
from trio_chat import protocol as p


@dataclass
class ClientEventReceived(Message):
    """Something from the connection layer: a server frame or a connection change."""

    event: ClientEvent


@dataclass
class LoggedIn(Message):
    """The name prompt got a `welcome`: time for the main screen."""

    welcome: p.Welcome
