"""The one place where failures become a line of text and an exit code."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from calmirror.errors import AuthFailed, CalmirrorError, TLSFailure, Unavailable, Unreachable
from calmirror.local.errors import AddressInUse

T = TypeVar("T")
log = logging.getLogger("calmirror")

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
INTERRUPTED = "calmirror: interrupted; what was finished is kept: run the command again to carry on\n"


def message_for(error: CalmirrorError) -> str:
    if isinstance(error, AddressInUse):
        return (
            f"{error.message} (by another program, or calmirror for another home): stop it, or set port "
            "under [server] in config.toml (0 picks a free port)"
        )
    if isinstance(error, AuthFailed):
        return error.message
    if isinstance(error, TLSFailure):
        return f"{error.message} (the server's certificate could not be verified; check the server URL)"
    if isinstance(error, Unavailable):
        wait = f"; it asked to wait {error.retry_after:.0f} s" if error.retry_after else ""
        return f"{error.message}: the server is not answering right now{wait}; try again later"
    if isinstance(error, Unreachable):
        return f"{error.message}: check the network and the server URL"
    return error.message


def guarded(main: Callable[[], T], verbose: Callable[[], bool]) -> T:
    """Run `main`; a CalmirrorError ends the process with its message and exit code."""
    try:
        return main()
    except CalmirrorError as error:
        sys.stderr.write(f"calmirror: {message_for(error)}\n")
        raise SystemExit(error.exit_code) from None
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except SystemExit as leaving:
        # Typer turns Ctrl-C into a silent exit 130; a user should still learn that what
        # was finished is kept (a sync's committed batches, an outbox) and how to go on.
        if leaving.code == EXIT_INTERRUPTED:
            sys.stderr.write(INTERRUPTED)
        raise
    except OSError as error:
        if error.errno == 28:
            sys.stderr.write("calmirror: the disk is full; free some space and try again (nothing was lost)\n")
        else:
            sys.stderr.write(
                f"calmirror: {error.strerror or error}{': ' + str(error.filename) if error.filename else ''}\n"
            )
        raise SystemExit(5) from None
    except Exception as error:
        if verbose():
            log.exception("internal error")
        sys.stderr.write(
            f"calmirror: internal error ({type(error).__name__}); run with --verbose for details and report it\n"
        )
        raise SystemExit(EXIT_INTERNAL) from None
