"""The client's widgets: room list, history pane, member list, input line, status line."""

from textual_client.widgets.chat_input import ChatInput
from textual_client.widgets.chat_log import ChatLog
from textual_client.widgets.member_list import MemberList
from textual_client.widgets.room_list import RoomList
from textual_client.widgets.status_line import StatusLine

__all__ = ["ChatInput", "ChatLog", "MemberList", "RoomList", "StatusLine"]
