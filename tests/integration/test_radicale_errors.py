"""A request Radicale answers 500 leaves one line in the daemon's log saying which request and
what failed, without a traceback unless --verbose, and without the password. Run in a fresh
process: the log set-up is the CLI's own, process-wide."""

from __future__ import annotations

import subprocess
import sys

from calmirror.testing import LOCAL_PASSWORD

SCRIPT = r"""
import sys, tempfile, pathlib, requests
from calmirror import logs
logs.setup("info", verbose=sys.argv[1] == "verbose")
from calmirror.local import LocalServer
from calmirror.testing import LOCAL_PASSWORD, LOCAL_USER

store = pathlib.Path(tempfile.mkdtemp()) / "store"
with LocalServer(store, port=0, username=LOCAL_USER, password=LOCAL_PASSWORD) as server:
    logs.redact(LOCAL_PASSWORD)
    (store / "collection-root" / LOCAL_USER / "appointments" / ".Radicale.props").write_text("{not json")
    answer = requests.request("PROPFIND", server.url + LOCAL_USER + "/appointments/", headers={"Depth": "0"},
                              auth=(LOCAL_USER, LOCAL_PASSWORD), timeout=30)
    print(answer.status_code)
"""


def run(verbosity: str) -> tuple[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, verbosity], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr.splitlines()


def test_a_500_is_one_line_saying_which_request_and_what_failed() -> None:
    status, lines = run("quiet")
    assert status == "500"
    radicale = [line for line in lines if " radicale: " in line]
    assert len(radicale) == 1, lines
    line = radicale[0]
    assert " ERROR " in line
    assert "PROPFIND '/calmirror/appointments/' answered 500 Internal Server Error" in line
    assert "RuntimeError: Failed to load properties of collection 'calmirror/appointments'" in line
    assert "(at multifilesystem/meta.py:" in line
    assert not any("Traceback" in line for line in lines)


def test_verbose_keeps_the_traceback() -> None:
    status, lines = run("verbose")
    assert status == "500"
    assert any("Traceback" in line for line in lines)
    assert any("answered 500 Internal Server Error: RuntimeError" in line for line in lines)
    assert not any(LOCAL_PASSWORD in line for line in lines)
