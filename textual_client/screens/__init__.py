"""The client's screens: the name prompt, then the main chat screen."""

from textual_client.screens.login import LoginScreen
from textual_client.screens.main import MainScreen

__all__ = ["LoginScreen", "MainScreen"]
