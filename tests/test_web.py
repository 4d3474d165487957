"""trio-chat-web: its flags, its offline page, and the client in a real (headless) Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from textual_client import web

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1100,700",
    # no internet: every host name but the test's own address fails to resolve
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
# records what the terminal is sent, as text: xterm.js draws on a canvas, not in the DOM
RECORD_TERMINAL = """
(() => {
  const Native = window.WebSocket;
  const decoder = new TextDecoder();
  window.__terminalText = "";
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        if (typeof event.data !== "string") {
          window.__terminalText += decoder.decode(new Uint8Array(event.data), {stream: true});
        }
      });
    }
  };
})();
"""
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def parse(*argv: str) -> Any:
    return web.build_parser().parse_args(argv)


# -- flags, the command each tab runs, the page ------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:7878", "127.0.0.1", 7878),
        ("chat.example.org:1", "chat.example.org", 1),
        ("[::1]:9000", "::1", 9000),
    ],
)
def test_server_address_is_parsed(text: str, host: str, port: int) -> None:
    assert web.parse_address(text) == web.Address(host, port)


@pytest.mark.parametrize(
    "text",
    [
        "nohost",
        ":7878",
        "host:0",
        "host:http",
        "a b:1",
        "x;rm -rf ~:1",
        "$(id):1",
        "[::zz]:1",
        "-oProxyCommand=x:1",
        "`id`:1",
        "host\n:1",
    ],
)
def test_a_bad_server_address_is_a_short_error(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        web.main(["--server", text])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("trio-chat-web: error: argument --server:")


def test_the_client_command_is_quoted_and_points_at_the_server(tmp_path: Path) -> None:
    cafile = tmp_path / "it's a CA; $(id).pem"
    args = parse("--server", "[::1]:7000", "--room", "dev", "--cafile", str(cafile))
    argv = web.client_argv(args)
    assert argv[:4] == [sys.executable, "-m", "textual_client", "--host"]
    assert argv[4:] == [
        "::1",
        "--port",
        "7000",
        "--no-check",
        "--no-state",
        "--cafile",
        str(cafile),
        "--room",
        "dev",
    ]
    command = web.client_command(args)
    assert command.startswith("exec ")
    assert shlex.split(command) == ["exec", *argv]  # the shell sees these words, no more


def test_a_shell_runs_the_client_with_exactly_those_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """textual-serve runs the command with `sh -c`: hostile text stays one quoted word."""
    printer = tmp_path / "argv"
    printer.write_text('#!/bin/sh\nprintf "%s\\0" "$@"\n')
    printer.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(printer))
    cafile = tmp_path / "a'b\"c $(touch pwned) `touch pwned`; touch pwned.pem"
    args = parse("--server", "chat.example.org:7000", "--cafile", str(cafile), "--tls")
    out = subprocess.run(["sh", "-c", web.client_command(args)], cwd=tmp_path, capture_output=True)
    assert out.stdout.split(b"\0")[:-1] == [word.encode() for word in web.client_argv(args)[1:]]
    assert not (tmp_path / "pwned").exists()


def test_help_gives_every_flag_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        web.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for flag, default in [
        ("--server", "[127.0.0.1:7878]"),
        ("--host", "[127.0.0.1]"),
        ("--port", "[8000]"),
        ("--public-url", "[http://"),
        ("--title", "[trio-chat]"),
        ("--room", "[lobby]"),
        ("--tls", "[off]"),
        ("--cafile", "[the system's CAs]"),
    ]:
        assert re.search(rf"{re.escape(flag)} .*?{re.escape(default)}", out), flag


def test_the_page_fetches_nothing_from_other_sites() -> None:
    textual_serve = pytest.importorskip("textual_serve")
    template = (Path(textual_serve.__file__).parent / "templates" / web.TEMPLATE).read_text()
    page = web.offline_page(template)
    assert "googleapis" not in page
    assert "fonts/RobotoMono-VariableFont_wght.ttf" in page
    shipped = Path(textual_serve.__file__).parent / "static" / "fonts"
    assert (shipped / "RobotoMono-VariableFont_wght.ttf").is_file()


@pytest.mark.parametrize(
    ("flags", "host", "websocket"),
    [
        ([], "chat.lan:8000", "ws://chat.lan:8000/ws"),
        (
            ["--public-url", "https://chat.example.org/"],
            "10.0.0.2:8000",
            "wss://chat.example.org/ws",
        ),
    ],
)
def test_the_page_points_where_the_browser_came_from(
    flags: list[str], host: str, websocket: str
) -> None:
    """With --host 0.0.0.0 a browser elsewhere must not be sent to ws://0.0.0.0."""
    pytest.importorskip("textual_serve")
    from aiohttp.test_utils import TestClient, TestServer

    server = web.make_server(parse("--host", "0.0.0.0", *flags))

    async def fetch() -> str:
        async with TestClient(TestServer(await server._make_app())) as client:
            response = await client.get("/", headers={"Host": host})
            assert response.status == 200
            return await response.text()

    page = asyncio.run(fetch())
    assert f'data-session-websocket-url="{websocket}"' in page
    origin = websocket.removesuffix("/ws").replace("ws", "http", 1)
    assert web.external_references(page, origin) == []
    assert "0.0.0.0" not in page


# -- the browser ----------------------------------------------------------------------------


def missing_for_the_browser() -> list[str]:
    """What the browser test lacks: Debian packages, or Python ones of the test group/extra."""
    debian = [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]
    missing = [f"{path} (Debian: {pkg})" for path, pkg in debian if not path.exists()]
    for module in ("selenium", "textual_serve"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the Python package {module}")
    return missing


def require_the_browser() -> None:
    """Skip when the browser is missing, but under CI fail: it is installed there."""
    missing = missing_for_the_browser()
    if not missing:
        return
    reason = f"browser test needs {', '.join(missing)}"
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{reason}: under CI, .ci/apt-packages.sh should install chromium and"
            " chromium-driver, and nox the web extra and the test group"
        )
    pytest.skip(reason)


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll `check` until it returns something true; fail saying `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def start_logged(
    argv: list[str], log: Path, pattern: str, timeout: float
) -> tuple[subprocess.Popen[bytes], re.Match[str]]:
    """Start a process, its output in `log`, and wait for `pattern` there."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def started() -> re.Match[str] | None:
        assert proc.poll() is None, f"{argv[0]} exited: {log.read_text()}"
        return re.search(pattern, log.read_text(errors="replace"))

    return proc, wait_for(f"{pattern!r} in {log}", started, timeout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS in /proc/PID/status), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found, status
    return int(found.group(1))


class JsonClient:
    """A blocking client speaking PROTOCOL.md's JSON lines over a plain socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, **frame: Any) -> None:
        self.sock.sendall(json.dumps(frame).encode() + b"\n")

    def expect(self, type_: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
        """Skip frames until one of `type_` whose fields equal `match` (pings answered)."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" not in self.buf:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = self.sock.recv(65536)
                except TimeoutError:
                    raise AssertionError(f"no {type_} {match} within {timeout} s") from None
                assert chunk, "the server closed the connection"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            frame: dict[str, Any] = json.loads(line)
            if frame["type"] == "ping":
                self.send(type="pong")
            if frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items()):
                return frame

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test: stopped (then killed) at its end, last first."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in reversed(started):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.timeout(120)
def test_the_client_in_a_browser_chats_with_a_json_client(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Name, a line each way, two tabs, a clean stop; UPDATE_SCREENSHOT=1 keeps the picture."""
    require_the_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    server, found = start_logged(
        [sys.executable, "-m", "trio_chat", "--port", "0", "--db", str(tmp_path / "chat.db")],
        tmp_path / "server.log",
        r"listening on \S+:(\d+)",
        30,
    )
    processes.append(server)
    chat_port = int(found.group(1))
    bob = JsonClient(chat_port)
    bob.send(type="hello", name="Bob")
    bob.expect("welcome")
    bob.send(type="join", room="lobby")
    bob.expect("joined")

    script = Path(sys.executable).with_name("trio-chat-web")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "textual_client.web"]
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    serving, _ = start_logged(
        [
            *command,
            "--server",
            f"127.0.0.1:{chat_port}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        tmp_path / "web.log",
        r"listening on http://",
        30,
    )
    processes.append(serving)
    with urllib.request.urlopen(f"{origin}/", timeout=10) as response:
        assert web.external_references(response.read().decode(), origin) == []

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        driver.set_script_timeout(20)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_TERMINAL})
        driver.get(f"{origin}/")

        def screen() -> str:
            return ANSI.sub("", driver.execute_script("return window.__terminalText || ''"))

        wait_for("the client's first frame", lambda: "your name" in screen(), 60)
        loaded = driver.execute_script(
            "return performance.getEntriesByType('resource').map(entry => entry.name)"
        )
        assert loaded and all(url.startswith(f"{origin}/") for url in loaded), loaded
        fonts = driver.execute_async_script(
            "document.fonts.load('16px \"Roboto Mono\"').then(f => arguments[0](f.length))"
        )
        assert fonts >= 1, "Roboto Mono did not load from /static"
        (client,) = children(serving.pid)  # one client process for this tab, exec'd by sh
        assert b"textual_client" in Path(f"/proc/{client}/cmdline").read_bytes()
        web_rss, client_rss = rss_kib(serving.pid), rss_kib(client)
        print(f"RSS after the page opened: textual-serve {web_rss} KiB, client {client_rss} KiB")

        # keys go to xterm.js's input; a click would be a mouse click in the app (on a field)
        keys = driver.find_element(By.CSS_SELECTOR, "#terminal textarea.xterm-helper-textarea")
        driver.execute_script("arguments[0].focus()", keys)
        ActionChains(driver).send_keys("Webby", Keys.ENTER).perform()
        bob.expect("presence", name="Webby", state="joined")
        ActionChains(driver).send_keys("hello from the browser", Keys.ENTER).perform()
        bob.expect("message", text="hello from the browser")
        bob.send(type="say", room="lobby", text="hello from JSON")
        wait_for("Bob's line in the browser", lambda: "hello from JSON" in screen(), 30)
        time.sleep(1)  # the last frame painted, for the picture
        shot = tmp_path / "browser.png"
        assert driver.save_screenshot(str(shot))
        assert shot.read_bytes().startswith(b"\x89PNG")
        if os.environ.get("UPDATE_SCREENSHOT"):
            shutil.copyfile(shot, ROOT / "docs" / "browser.png")
        client_rss = rss_kib(client)
        print(
            f"RSS after chatting: textual-serve {rss_kib(serving.pid)} KiB, client {client_rss} KiB"
        )
        first = driver.current_window_handle
        driver.switch_to.new_window("tab")  # a second tab: a second client
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_TERMINAL})
        driver.get(f"{origin}/")
        wait_for("the second tab's client", lambda: "your name" in screen(), 60)
        (second,) = set(children(serving.pid)) - {client}
        second_tab = driver.current_window_handle
        driver.switch_to.window(first)
        driver.close()  # the first tab closed: its client ends with it, the other stays
        wait_for("the first tab's client to exit", lambda: not Path(f"/proc/{client}").exists(), 20)
        assert children(serving.pid) == [second]
        driver.switch_to.window(second_tab)
        serving.send_signal(signal.SIGTERM)  # stopping with a tab open: its client ends too
        assert serving.wait(15) == 0
        assert not Path(f"/proc/{second}").exists()
        wait_for(
            "the page to say the session ended",
            lambda: "-closed" in driver.execute_script("return document.body.className"),
            10,
        )
    finally:
        driver.quit()
        bob.close()
    assert "Traceback" not in (tmp_path / "web.log").read_text()
