"""trio-chat: a self-hosted multi-user chat server on trio, and its Textual client."""

__version__ = "0.1"
