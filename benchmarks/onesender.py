"""One sender pipelining `say`s with flood control off: durable, echoed messages per second.

Run: ``python -m benchmarks.onesender [--messages N]``. The server runs as a subprocess
(``--flood-rate 0``); one client sends every message as fast as the socket takes them,
from a thread, while reading its own echoes; the clock stops at the last echo, which
comes only after that message's commit.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time

from benchmarks.servers import chat_server


def measure(messages: int) -> dict[str, float | int]:
    """Send `messages` says from one client and time them until the last echo."""
    lines = [
        json.dumps({"type": "say", "room": "lobby", "text": f"message {n} of one sender"}).encode()
        + b"\n"
        for n in range(messages)
    ]
    with (
        chat_server(queue_limit=1000) as target,
        socket.create_connection((target.host, target.port)) as sock,
    ):
        replies = sock.makefile("rb")
        sock.sendall(b'{"type":"hello","name":"sender"}\n')
        replies.readline()
        sock.sendall(b'{"type":"join","room":"lobby"}\n')
        replies.readline()

        def send() -> None:
            for start in range(0, messages, 500):
                sock.sendall(b"".join(lines[start : start + 500]))

        began = time.perf_counter()
        sender = threading.Thread(target=send)
        sender.start()
        echoed, last_id = 0, 0
        while echoed < messages:
            frame = json.loads(replies.readline())
            if frame["type"] == "message":
                assert frame["id"] > last_id, "echoes out of order"
                last_id = frame["id"]
                echoed += 1
        seconds = time.perf_counter() - began
        sender.join()
    return {"messages": messages, "seconds": round(seconds, 3), "per_s": round(messages / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.onesender", description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    result = measure(parser.parse_args().messages)
    print(f"one sender: {result['per_s']:,} durable, echoed messages/s", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
