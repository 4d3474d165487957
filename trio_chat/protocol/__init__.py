"""The trio-chat wire protocol (docs/PROTOCOL.md), sans-IO: bytes in, typed frames out.

Both sides use it: the server parses client frames, the client parses server
frames, and each encodes what it sends. Nothing here does I/O or imports an
event loop (a test checks that), so it is tested by pushing bytes through it.
`framing` splits bytes into JSON objects, `frames` holds the typed frames and
their field checks, `codec` turns one into the other.
"""

from __future__ import annotations

from ..core.errors import ERROR_CODES as ERROR_CODES
from ..core.errors import ChatError as ChatError
from ..core.errors import ErrorCode as ErrorCode
from ..core.rules import (
    MAX_NAME as MAX_NAME,
)
from ..core.rules import (
    MAX_TEXT as MAX_TEXT,
)
from ..core.rules import (
    Name as Name,
)
from ..core.rules import (
    check_text as check_text,
)
from ..core.rules import (
    name_key as name_key,
)
from ..core.rules import (
    nfc_length as nfc_length,
)
from ..core.rules import (
    parse_name as parse_name,
)
from .base import (
    BYE_REASONS as BYE_REASONS,
)
from .base import (
    DEFAULT_LIMIT as DEFAULT_LIMIT,
)
from .base import (
    HISTORY_LIMIT as HISTORY_LIMIT,
)
from .base import (
    LEAVE_REASONS as LEAVE_REASONS,
)
from .base import (
    MAX_FRAME as MAX_FRAME,
)
from .base import (
    MAX_ID as MAX_ID,
)
from .base import (
    MAX_INT as MAX_INT,
)
from .base import (
    MAX_PASSWORD as MAX_PASSWORD,
)
from .base import (
    MAX_REASON as MAX_REASON,
)
from .base import (
    MAX_SERVER_FRAME as MAX_SERVER_FRAME,
)
from .base import (
    MIN_PASSWORD as MIN_PASSWORD,
)
from .base import (
    PROTOCOL_VERSION as PROTOCOL_VERSION,
)
from .base import (
    ROOMS_LIMIT as ROOMS_LIMIT,
)
from .base import (
    SMALL_FRAME as SMALL_FRAME,
)
from .base import (
    ByeReason as ByeReason,
)
from .base import (
    LeaveReason as LeaveReason,
)
from .base import (
    ProtocolError as ProtocolError,
)
from .base import (
    RequestId as RequestId,
)
from .codec import (
    JSON_WIRE as JSON_WIRE,
)
from .codec import (
    NEED_DATA as NEED_DATA,
)
from .codec import (
    Connection as Connection,
)
from .codec import (
    JsonWire as JsonWire,
)
from .codec import (
    NeedData as NeedData,
)
from .codec import (
    Role as Role,
)
from .codec import (
    encode as encode,
)
from .codec import (
    parse_client_frame as parse_client_frame,
)
from .codec import (
    parse_server_frame as parse_server_frame,
)
from .codec import (
    with_re as with_re,
)
from .frames import (
    Bye as Bye,
)
from .frames import (
    ClientFrame as ClientFrame,
)
from .frames import (
    Delete as Delete,
)
from .frames import (
    DeleteEntry as DeleteEntry,
)
from .frames import (
    Edit as Edit,
)
from .frames import (
    EditEntry as EditEntry,
)
from .frames import (
    Entry as Entry,
)
from .frames import (
    Error as Error,
)
from .frames import (
    Frame as Frame,
)
from .frames import (
    Hello as Hello,
)
from .frames import (
    HistoryPage as HistoryPage,
)
from .frames import (
    HistoryRequest as HistoryRequest,
)
from .frames import (
    Join as Join,
)
from .frames import (
    Joined as Joined,
)
from .frames import (
    Left as Left,
)
from .frames import (
    Limits as Limits,
)
from .frames import (
    Members as Members,
)
from .frames import (
    Message as Message,
)
from .frames import (
    Part as Part,
)
from .frames import (
    Ping as Ping,
)
from .frames import (
    Pong as Pong,
)
from .frames import (
    Presence as Presence,
)
from .frames import (
    Quit as Quit,
)
from .frames import (
    Results as Results,
)
from .frames import (
    RoomInfo as RoomInfo,
)
from .frames import (
    RoomList as RoomList,
)
from .frames import (
    RoomsRequest as RoomsRequest,
)
from .frames import (
    Say as Say,
)
from .frames import (
    Search as Search,
)
from .frames import (
    ServerFrame as ServerFrame,
)
from .frames import (
    TopicEntry as TopicEntry,
)
from .frames import (
    Welcome as Welcome,
)
from .frames import (
    Who as Who,
)
from .frames import (
    check_request_id as check_request_id,
)
from .framing import (
    HUGE_INT as HUGE_INT,
)
from .framing import (
    NON_FINITE as NON_FINITE,
)
from .framing import (
    LineDecoder as LineDecoder,
)
from .framing import (
    dumps as dumps,
)
from .framing import (
    loads_object as loads_object,
)
