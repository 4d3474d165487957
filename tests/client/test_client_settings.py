"""The config file, desktop notifications, selecting and copying text, themes, /join's Tab."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual import events
from textual.pilot import Pilot

from textual_client import __main__ as client_main
from textual_client import settings as cfg
from textual_client import state
from textual_client.app import ChatApp
from textual_client.messages import ClientEventReceived
from textual_client.notify import Notifier, Rules, clean, detect
from textual_client.screens import MainScreen
from textual_client.widgets import ChatInput, ChatLog
from trio_chat import protocol as p

SIZE = (110, 32)
ME = p.Welcome(name="ann", account=False, server="x")


def message(id: int, sender: str, text: str, room: str | None = "lobby") -> p.Message:
    to = None if room else "ann"
    return p.Message(id=id, sender=sender, text=text, ts="2026-11-24T21:00:00Z", room=room, to=to)


@pytest.mark.asyncio
async def offline(pilot: Pilot[None], rooms: tuple[str, ...] = ("lobby",)) -> MainScreen:
    app = pilot.app
    assert isinstance(app, ChatApp)
    main = app.start_chat(ME, connect=False)
    await pilot.pause()
    for room in rooms:
        main.handle(p.Joined(room, ("ann",), (), False))
    await pilot.pause()
    return main


# ----------------------------------------------------------------------- 1. the config file


def test_the_first_run_writes_every_setting_with_its_default_and_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trio-chat" / "client.toml"
    monkeypatch.setattr(cfg, "default_config_path", lambda: path)
    args = client_main.build_parser().parse_args([])
    settings = client_main.apply_config(args)
    text = path.read_text()
    assert settings == cfg.ClientSettings()
    for spec in cfg.SPECS:
        assert f"# {spec.help}" in text
        assert f"{spec.key} = " in text, spec.key
    data = tomllib.loads(text)
    assert data["server"] == {"host": "127.0.0.1", "port": 7878, "tls": False}
    assert data["notify"] == {"mention": True, "direct": True, "method": "auto"}
    assert (data["rooms"], data["theme"]) == ([], cfg.DEFAULT_THEME)
    assert (args.host, args.port, args.tls, args.room, args.config_path) == (
        "127.0.0.1",
        7878,
        False,
        None,
        path,
    )


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'name = "bob"\nrooms = ["rust", "#ops"]\n'
        '[server]\nhost = "chat.example"\nport = 1234\ntls = true\ncafile = "ca.pem"\n'
    )
    args = client_main.build_parser().parse_args(["--config", str(path)])
    client_main.apply_config(args)
    assert (args.host, args.port, args.name, args.tls) == ("chat.example", 1234, "bob", True)
    assert args.room == ["rust", "ops"] and args.cafile == tmp_path / "ca.pem"
    argv = ["--config", str(path), "--port", "99", "--room", "x", "--no-tls", "--name", "cy"]
    args = client_main.build_parser().parse_args(argv)
    client_main.apply_config(args)
    assert (args.host, args.port, args.name, args.tls, args.room) == (
        "chat.example",
        99,
        "cy",
        False,
        ["x"],
    )


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        (
            '[server]\nport = "7878"\n',
            'server.port: expected a port number from 1 to 65535, got "7878"',
        ),
        ("[server]\nhots = 1\n", "server.hots: no such setting (did you mean server.host?)"),
        ("rooms = 3\n", 'rooms: expected a list of room names, such as ["lobby", "rust"], got 3'),
        ('theme = "pink"\n', "theme: expected one of "),
        ("[notify]\nmention = 1\n", "notify.mention: expected true or false, got 1"),
        ("name = [\n", "not valid TOML"),
    ],
)
def test_a_wrong_key_or_type_is_one_line_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, said: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    assert client_main.main(["--config", str(path), "--no-check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"trio-chat-client: {path}: ") and said in err, err


def test_a_missing_config_given_by_flag_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert client_main.main(["--config", str(tmp_path / "none.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


# ----------------------------------------------------------------------- 2. rooms


def test_rooms_are_the_last_sessions_then_the_configured_ones_once_each() -> None:
    rooms = cfg.startup_rooms(["rust", "Lobby"], ["lobby", "#ops", "rust"])
    assert rooms == ["rust", "Lobby", "ops"]


@pytest.mark.asyncio
async def test_configured_rooms_join_besides_the_restored_ones(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    app = ChatApp("127.0.0.1", 9, state_path=path, rooms=["lobby"])
    state.save(path, app.client.address, "ann", state.Saved(["rust", "lobby"], ["bob"]))
    async with app.run_test(size=SIZE) as pilot:
        main = await offline(pilot, ())
        assert [b.title for b in main.buffers.order] == ["#rust", "#lobby", "@bob"]


# ----------------------------------------------------------------------- 3. notifications


def test_the_sequence_is_chosen_from_the_terminal() -> None:
    assert detect({"TERM_PROGRAM": "iTerm.app"}) == "osc9"
    assert detect({"TERM": "xterm-kitty"}) == "osc9"
    assert detect({"TERM_PROGRAM": "WezTerm", "TERM": "xterm-256color"}) == "osc9"
    assert detect({"TERM": "foot"}) == "osc777"
    assert detect({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-1/default,1,0"}) == "bell"
    assert detect({"TERM": "xterm-256color"}) == "bell"
    assert clean("hi\x1b]52;c;eHl6\x07 there\n" + "x" * 300).startswith("hi ]52;c;eHl6 there x")
    assert len(clean("x" * 300)) == 200


@pytest.mark.asyncio
async def test_a_mention_or_direct_message_notifies_unless_seen() -> None:
    app = ChatApp("127.0.0.1", 9)
    written: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        main = await offline(pilot, ("lobby", "rust"))
        app.notifier = Notifier(Rules(), written.append, env={"TERM_PROGRAM": "iTerm.app"})
        assert main.current is not None and main.current.name == "lobby"
        main.handle(message(1, "bob", "plain line"))
        main.handle(message(2, "bob", "hey ann, look", room="rust"))
        await pilot.pause()
        assert written == ["\x1b]9;trio-chat: bob in #rust: hey ann, look\x07"]
        main.handle(message(3, "cy", "psst\x1b]0;pwned\x07", room=None))
        await pilot.pause()
        assert written[-1] == "\x1b]9;trio-chat: cy (direct): psst ]0;pwned\x07"
        written.clear()
        main.handle(message(4, "bob", "ann: here", room="lobby"))  # shown, terminal focused
        main.handle(message(5, "ann", "ann talks to herself", room="lobby"))
        await pilot.pause()
        assert written == []
        app.post_message(events.AppBlur())  # the terminal lost the focus
        await pilot.pause()
        main.handle(message(6, "bob", "ann?", room="lobby"))
        await pilot.pause()
        assert written == ["\x1b]9;trio-chat: bob in #lobby: ann?\x07"]
        written.clear()
        app.notifier = Notifier(Rules(False, False, "osc777"), written.append)
        main.handle(message(7, "dee", "hello", room=None))
        await pilot.pause()
        assert written == []
        app.notifier = Notifier(Rules(method="osc777"), written.append)
        main.handle(message(8, "dee", "again", room=None))
        await pilot.pause()
        assert written == ["\x1b]777;notify;trio-chat: dee (direct);again\x07"]


@pytest.mark.asyncio
async def test_nothing_is_written_to_a_headless_terminal() -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE):
        assert app._driver is not None and app._driver.is_headless
        app.write_terminal("\x1b]9;x\x07")  # would corrupt a test's or a browser's screen


# ----------------------------------------------------------------------- 4. select and copy


@pytest.mark.asyncio
async def test_mouse_selected_log_text_is_copied_with_ctrl_c() -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE) as pilot:
        main = await offline(pilot)
        main.handle(message(1, "bob", "the first line to copy"))
        main.handle(message(2, "bob", "a second one"))
        await pilot.pause()
        log = main.query_one(ChatLog)
        rows = log.visible_text()
        row = next(i for i, t in enumerate(rows) if "first line" in t)
        column = rows[row].index("first")
        await pilot.mouse_down(log, offset=(column, row))
        await pilot.hover(log, offset=(column + 10, row + 1))
        await pilot.mouse_up(log, offset=(column + 10, row + 1))
        await pilot.pause()
        expected = f"first line to copy\n{rows[row + 1][: column + 11]}"
        assert main.get_selected_text() == expected and "bob │ a second" in expected
        assert main.focused is main.query_one(ChatInput)
        await pilot.press("ctrl+c")
        assert app.clipboard == expected
        main.clear_selection()
        await pilot.press("ctrl+c")  # nothing selected: Ctrl+C says how to quit, as before
        await pilot.pause()
        assert app.clipboard == expected
        assert app.is_running


@pytest.mark.asyncio
async def test_c_copies_the_selected_message() -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE) as pilot:
        main = await offline(pilot)
        main.handle(message(1, "bob", "copy me\nall of me"))
        main.handle(message(2, "bob", "not me"))
        await pilot.pause()
        await pilot.press("alt+up", "up", "c")
        assert app.clipboard == "copy me\nall of me"
        assert main.query_one(ChatLog).selected is not None  # still selecting


# ----------------------------------------------------------------------- 5. themes


@pytest.mark.asyncio
async def test_the_theme_comes_from_the_config_and_a_picked_one_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "client.toml"
    cfg.write_default(path)
    path.write_text(path.read_text().replace(f'theme = "{cfg.DEFAULT_THEME}"', 'theme = "nord"'))
    app = ChatApp("127.0.0.1", 9, settings=cfg.read(path), config_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await offline(pilot)
        assert app.theme == "nord"
        await pilot.press("f4")  # the command palette, with Textual's theme picker
        await pilot.pause()
        assert app.screen.__class__.__name__ == "CommandPalette"
        await pilot.press(*"theme", "enter")
        await pilot.pause()
        await pilot.press(*"gruvbox", "enter")
        await pilot.pause()
        assert app.theme == "gruvbox"
    assert cfg.read(path).theme == "gruvbox"
    text = path.read_text()
    assert text.count("theme = ") == 1 and "# colour theme" in text  # comments are kept


# ----------------------------------------------------------------------- 6. /join's Tab


@pytest.mark.asyncio
async def test_tab_after_join_offers_listed_and_joined_rooms() -> None:
    app = ChatApp("127.0.0.1", 9)
    async with app.run_test(size=SIZE) as pilot:
        main = await offline(pilot, ("lobby", "rustaceans"))
        app.post_message(
            ClientEventReceived(p.RoomList((p.RoomInfo("rust", 3), p.RoomInfo("random", 1))))
        )
        await pilot.pause()
        box = main.query_one(ChatInput)
        box.value = "/join ru"
        await pilot.press("tab")
        assert box.value == "/join rust "
        await pilot.press("tab")
        assert box.value == "/join rustaceans "
        box.value = "/join #lo"
        await pilot.press("tab")
        assert box.value == "/join lobby "
        box.value = "/part r"
        await pilot.press("tab")
        assert box.value == "/part random "
