"""Every bad config gives one line naming the file and the key; good ones load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from calmirror import config, config_edit
from calmirror.errors import ConfigError

BROKEN = [
    ("[server\nport = 1", None, "not valid TOML"),
    ("[server]\nport = 'abc'", "server.port", "must be a whole number"),
    ("[server]\nport = 70000", "server.port", "port number"),
    ("[server]\nhost = '0.0.0.0'", "server.host", "allow_non_loopback"),
    ("[server]\nportt = 5232", "server.portt", "unknown key; did you mean 'port'? (allowed: "),
    ("[availabilty]\nguard = 'warn'", "availabilty", "unknown key; did you mean 'availability'? (allowed: "),
    ("[sync]\nfrobnicate = 1", "sync.frobnicate", "unknown key (allowed: "),
    ("[sync]\ninterval = 1", "sync.interval", "at least 5"),
    ("[sync]\njitter = 3", "sync.jitter", "between 0 and 1"),
    ("[push]\ncancel = 'archive'", "push.cancel", "'delete', 'mark-cancelled'"),
    ("[availability]\ntimezone = 'Mars/Olympus'", "availability.timezone", "unknown time zone"),
    ("[availability]\nguard = 'maybe'", "availability.guard", "'off', 'warn', 'reject'"),
    ("[availability]\naliases = 'me@example.com'", "availability.aliases", "must be a list"),
    ("[availability]\ntravel_time = 'yes'", "availability.travel_time", "true or false"),
    ("[icloud]\nserver = 'ftp://x'", "icloud.server", "http(s)://"),
    ("[icloud]\nconflicts = [1, 2]", "icloud.conflicts", "list of non-empty strings"),
    ("[calendars.home]\ndetails = 'some'", "calendars.home.details", "'full', 'busy'"),
    ("server = 5", "server", "must be a table"),
    ("log_level = 'loud'", "log_level", "'debug', 'info'"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), BROKEN)
def test_broken_config_names_file_key_and_what_is_allowed(
    tmp_path: Path, text: str, key: str | None, fragment: str
) -> None:
    file = tmp_path / "config.toml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.load(file)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(file))
    if key:
        assert f": {key}:" in message
    assert fragment in message
    assert caught.value.exit_code == 2


def test_binary_config_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="UTF-8"):
        config.load(file)


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    settings = config.load(tmp_path / "none.toml")
    assert settings.server.port == 5232 and settings.availability.guard == "warn"
    assert settings.availability.travel_time is True


def test_example_config_loads_and_documents_every_option() -> None:
    example = Path(__file__).parents[2] / "config" / "calmirror.example.toml"
    text = example.read_text(encoding="utf-8")
    setting = re.compile(r"^# (\[[a-z.]+\]|[a-z_]+ = .*)$")
    uncommented = "\n".join(line[2:] if setting.match(line) else line for line in text.splitlines())
    config.parse(example, __import__("tomllib").loads(uncommented))
    for key in (
        "port",
        "allow_non_loopback",
        "max_body_mb",
        "server",
        "linked",
        "conflicts",
        "timeout",
        "credential",
        "interval",
        "jitter",
        "batch",
        "cancel",
        "max_backoff",
        "timezone",
        "aliases",
        "tentative_busy",
        "allday_busy",
        "guard",
        "details",
        "log_level",
    ):
        assert f"{key} =" in text, key


def test_edits_keep_comments_and_validate(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text("# my notes\n[sync]\ninterval = 120 # slow\n", encoding="utf-8")
    settings = config_edit.set_linked(file, "WORK-ID", also_conflict=True)
    assert settings.icloud.linked == "WORK-ID" and settings.icloud.conflicts == ("WORK-ID",)
    settings = config_edit.set_conflicts(file, ["WORK-ID", "home", "home"])
    assert settings.icloud.conflicts == ("WORK-ID", "home")
    settings = config_edit.set_calendar_details(file, "home", "busy")
    assert settings.calendar("home").details == "busy"
    text = file.read_text(encoding="utf-8")
    assert "# my notes" in text and "# slow" in text
    assert (file.stat().st_mode & 0o777) == 0o600


def test_a_byte_order_mark_at_the_start_is_accepted(tmp_path: Path) -> None:
    """Notepad saves UTF-8 with a BOM; the config must still load, and an edit keeps it loading."""
    file = tmp_path / "config.toml"
    file.write_bytes(b"\xef\xbb\xbf# written by Notepad\n[sync]\ninterval = 120\n")
    assert config.load(file).sync.interval == 120
    settings = config_edit.set_linked(file, "WORK-ID", also_conflict=False)
    assert settings.icloud.linked == "WORK-ID" and settings.sync.interval == 120
    assert config.load(file).icloud.linked == "WORK-ID"
    assert "# written by Notepad" in file.read_text(encoding="utf-8")


def test_a_byte_order_mark_anywhere_else_is_still_refused(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_bytes(b"[sync]\n\xef\xbb\xbfinterval = 120\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(file)
