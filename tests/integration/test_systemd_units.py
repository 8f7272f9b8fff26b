"""The systemd recipe: the units parse, the README's install steps put calmirror where the units
look, and `calmirror-as-service` runs commands on the service's home with its credential.

`systemd-analyze` checks and rates the unit files offline; no running systemd is needed. The
helper is run for real, with calmirror and the emulator; only `systemd-run` is a stand-in (a
test cannot start units), which does what the helper asks of it: the state directory, the
credential, the environment, then the command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from calmirror.emulator import Emulator
from calmirror.testing import APP_PASSWORD, APPLE_ID

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "systemd"
SYSTEM_UNIT = SYSTEMD / "calmirror.service"
USER_UNIT = SYSTEMD / "calmirror.user.service"
HELPER = SYSTEMD / "calmirror-as-service"
VENV = "/opt/calmirror"  # where the README's system recipe installs calmirror
#: The highest `systemd-analyze security` exposure each unit may have (the README states them).
EXPOSURE = {SYSTEM_UNIT: 1.2, USER_UNIT: 1.8}

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed (apt install systemd)")


def directives(unit: Path) -> dict[str, list[str]]:
    """`Key` -> its values in file order (systemd allows a key more than once)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def readme_systemd() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text[text.index("## systemd") : text.index("## Layout")]


def helper_properties() -> dict[str, str]:
    text = HELPER.read_text(encoding="utf-8")
    found = dict(re.findall(r"--property=(\w+)=(\S+)", text))
    found.update({f"env:{k}": v for k, v in re.findall(r"--setenv=(\w+)=(\S+)", text)})
    return found


def user_env(tmp_path: Path) -> dict[str, str]:
    """An environment where `systemd-analyze --user` finds a home and a runtime folder."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "HOME": str(tmp_path / "home"), "XDG_RUNTIME_DIR": str(runtime)}


# --- the units, the README and the helper agree ------------------------------------------------


def test_the_system_unit_runs_calmirror_from_the_venv_the_readme_makes() -> None:
    unit = directives(SYSTEM_UNIT)
    assert unit["ExecStart"] == [f"{VENV}/bin/calmirror run"]
    readme = readme_systemd()
    assert f"sudo python3 -m venv {VENV} && sudo {VENV}/bin/pip install ." in readme
    commands = [line for block in re.findall(r"```sh\n(.*?)```", readme, re.S) for line in block.splitlines()]
    assert not [line for line in commands if line.startswith(("sudo pip ", "pip install"))]
    assert "sudo install -m 0644 systemd/calmirror.service /etc/systemd/system/" in readme


def test_the_helper_runs_as_the_unit_does() -> None:
    unit, helper = directives(SYSTEM_UNIT), helper_properties()
    for key in ("DynamicUser", "User", "StateDirectory", "StateDirectoryMode", "UMask", "LoadCredential"):
        assert helper[key] == unit[key][0], key
    (home,) = unit["Environment"]
    assert home == "CALMIRROR_HOME=%S/calmirror"  # %S is /var/lib for a system unit
    assert helper["env:CALMIRROR_HOME"] == "/var/lib/" + unit["StateDirectory"][0]
    assert unit["ExecStart"][0].split()[0] in HELPER.read_text(encoding="utf-8")
    credential_file = unit["LoadCredential"][0].split(":", 1)[1]
    assert f"sudo install -m 0600 /dev/stdin {credential_file}" in readme_systemd()


def test_the_readme_sets_the_service_up_with_the_helper() -> None:
    readme = readme_systemd()
    assert "sudo install -m 0755 systemd/calmirror-as-service /usr/local/sbin/" in readme
    for step in ("connect --apple-id you@example.com --password-stdin", "link Work", "conflicts add Home Family"):
        assert f"sudo calmirror-as-service {step}" in readme
    assert "--home /var/lib/calmirror connect" not in readme  # root-owned files the service cannot read


def test_the_user_unit_runs_calmirror_where_pipx_puts_it() -> None:
    unit = directives(USER_UNIT)
    assert unit["ExecStart"] == ["%h/.local/bin/calmirror run"]  # pipx's default bin folder
    readme = readme_systemd()
    assert "pipx install ." in readme
    assert "cp systemd/calmirror.user.service ~/.config/systemd/user/calmirror.service" in readme
    # ProtectSystem=strict: the service writes only to its config and data folders (platformdirs')
    assert unit["ReadWritePaths"] == ["-%h/.config/calmirror -%h/.local/share/calmirror"]


# --- systemd's own reading of the units --------------------------------------------------------


@needs_analyze
@pytest.mark.parametrize("unit", [SYSTEM_UNIT, USER_UNIT], ids=["system", "user"])
def test_systemd_accepts_every_line_of_the_unit(unit: Path, tmp_path: Path) -> None:
    """`verify` only warns about unknown keys and bad values, so it must say nothing at all, with
    calmirror installed where the unit runs it (this environment's, put in that place)."""
    assert analyze is not None
    installed = str(Path(sys.executable).with_name("calmirror"))
    env = user_env(tmp_path)
    if unit is USER_UNIT:
        (tmp_path / "home/.local/bin").mkdir(parents=True)
        (tmp_path / "home/.local/bin/calmirror").symlink_to(installed)
        checked = unit
    else:
        checked = tmp_path / "calmirror.service"
        checked.write_text(unit.read_text(encoding="utf-8").replace(f"{VENV}/bin/calmirror", installed))
    args = [analyze, "verify", *(["--user"] if unit is USER_UNIT else []), str(checked)]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip(), done.stderr.strip()) == (0, "", "")


def test_the_units_keep_their_essentials() -> None:
    """What the daemon relies on (readiness, watchdog, restart, reload) and the core of the sandbox."""
    for unit in (SYSTEM_UNIT, USER_UNIT):
        found = directives(unit)
        assert found["Type"] == ["notify"] and found["WatchdogSec"] and found["Restart"] == ["on-failure"]
        assert found["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
        for key in ("ProtectSystem", "PrivateTmp", "NoNewPrivileges", "RestrictAddressFamilies", "SystemCallFilter"):
            assert key in found, (unit.name, key)
        assert found["CapabilityBoundingSet"] == [""]
    assert directives(SYSTEM_UNIT)["ProtectHome"] == ["yes"]


@needs_analyze
@pytest.mark.parametrize("unit", [SYSTEM_UNIT, USER_UNIT], ids=["system", "user"])
def test_the_units_exposure_is_what_the_readme_says(unit: Path, tmp_path: Path) -> None:
    assert analyze is not None
    args = [analyze, "security", "--offline=yes", *(["--user"] if unit is USER_UNIT else []), str(unit)]
    done = subprocess.run(args, capture_output=True, text=True, env=user_env(tmp_path), timeout=60, check=False)
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert level is not None, done.stdout[-2000:] + done.stderr[-2000:]
    assert float(level.group(1)) <= EXPOSURE[unit]
    assert f"rates the system unit {EXPOSURE[SYSTEM_UNIT]} and the user unit {EXPOSURE[USER_UNIT]}" in readme_systemd()


# --- the helper, run ---------------------------------------------------------------------------

#: Stands in for `systemd-run`: sets up what the properties ask for under ROOT (the state
#: directory, the credential) and runs the command with the environment they give.
FAKE_SYSTEMD_RUN = r"""#!{python}
import os, sys
from pathlib import Path

root, calmirror = Path(os.environ["FAKE_ROOT"]), os.environ["FAKE_CALMIRROR"]
seen = Path(os.environ["FAKE_ROOT"]) / "systemd-run.args"
args = sys.argv[1:]
seen.write_text("\n".join(args))
env = dict(os.environ)
while args[0].startswith("-"):
    option = args.pop(0)
    if option.startswith("--property=StateDirectory="):
        (root / "var/lib" / option.split("=", 2)[2]).mkdir(parents=True, mode=0o700, exist_ok=True)
    elif option.startswith("--property=LoadCredential="):
        name, source = option.split("=", 2)[2].split(":", 1)
        creds = root / "credentials"
        creds.mkdir(exist_ok=True)
        (creds / name).write_bytes((root / source.lstrip("/")).read_bytes())
        env["CREDENTIALS_DIRECTORY"] = str(creds)
    elif option.startswith("--setenv="):
        key, value = option.split("=", 2)[1:]
        env[key] = str(root / value.lstrip("/"))
args = [calmirror if a == "/opt/calmirror/bin/calmirror" else a for a in args]
os.execve(args[0], args, env)
"""


def as_service(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "FAKE_ROOT": str(root),
        "FAKE_CALMIRROR": str(Path(sys.executable).parent / "calmirror"),
        "COLUMNS": "200",
    }
    return subprocess.run([str(HELPER), *args], capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture
def service_root(tmp_path: Path) -> Path:
    """A stand-in `/`: the password in etc/calmirror, `systemd-run` on the PATH."""
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "systemd-run"
    fake.write_text(FAKE_SYSTEMD_RUN.replace("{python}", sys.executable), encoding="utf-8")
    fake.chmod(0o755)
    (tmp_path / "etc/calmirror").mkdir(parents=True)
    (tmp_path / "etc/calmirror/icloud-password").write_text(APP_PASSWORD + "\n", encoding="utf-8")
    return tmp_path


def test_the_helper_connects_the_service_home_with_the_credential(service_root: Path, emu: Emulator) -> None:
    connected = as_service(
        service_root, "connect", "--apple-id", APPLE_ID, "--password-stdin", "--server", emu.url, "--json"
    )
    assert connected.returncode == 0, connected.stderr
    assert "Work" in {cal["name"] for cal in json.loads(connected.stdout)["calendars"]}
    home = service_root / "var/lib/calmirror"
    assert 'credential = "systemd"' in (home / "config.toml").read_text(encoding="utf-8")
    assert not (home / "secrets" / "icloud-password").exists()  # stored once: in the credential
    assert "--property=User=calmirror" in (service_root / "systemd-run.args").read_text(encoding="utf-8")

    assert as_service(service_root, "link", "Work").returncode == 0
    listed = as_service(service_root, "calendars", "--json")  # asks iCloud: reads the password from the credential
    assert listed.returncode == 0, listed.stderr
    assert APP_PASSWORD not in listed.stdout + listed.stderr


def test_the_helper_keeps_a_config_it_finds(service_root: Path) -> None:
    home = service_root / "var/lib/calmirror"
    home.mkdir(parents=True)
    (home / "config.toml").write_text("[server]\nport = 0\n", encoding="utf-8")
    status = as_service(service_root, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert (home / "config.toml").read_text(encoding="utf-8") == "[server]\nport = 0\n"
