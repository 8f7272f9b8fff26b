"""Patches of typer's private parts, applied only to the typer they were written and tested for.

Typer gives no public hook for three things the command line wants: a flag's help without
`<bool>` (and one value's type without `<list[str]>` or `<int range>`), an absent option
without building a pydantic TypeAdapter (importing pydantic is a tenth of a second of every
`calmirror sync`), and building only the command a process runs (a third of a sync's CPU after
its imports). Each is a patch of a private name (`_TyperParameter.process_value`,
`display_type_rich`, `Typer.registered_commands`), so a typer upgrade could change what they
replace without a word. Hence:

- pyproject bounds typer to the minor version listed in `TESTED`;
- `apply` patches only that typer, and only where each private name still has the shape the
  patch expects; anything else is left as typer has it (a slower start, `<bool>` in the help,
  every command built: all still correct) and named in `LEFT_OUT`, which `--verbose` prints;
- tests/cli/test_typer_patches.py fails when anything is left out, when an absent option's
  value differs from typer's own, and runs the command line without the patches.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

import typer
import typer.core

# The typer versions (major, minor) these patches were read against and are tested with;
# pyproject's bound on typer says the same.
TESTED = ((0, 29),)

# The patches left out of this process, each with why: empty with a tested typer.
LEFT_OUT: list[str] = []

# Typer's own functions that a patch replaced, by name, for the tests that compare the two.
REPLACED: dict[str, Callable[..., object]] = {}


def typer_version() -> tuple[int, int] | None:
    found = re.match(r"(\d+)\.(\d+)", getattr(typer, "__version__", ""))
    return (int(found[1]), int(found[2])) if found else None


def _has(owner: object, name: str, parameters: list[str]) -> bool:
    """Whether `owner.name` is a function taking exactly these parameters."""
    target = getattr(owner, name, None)
    if not callable(target):
        return False
    try:
        return list(inspect.signature(target).parameters) == parameters
    except (TypeError, ValueError):
        return False


def _plain(shown: str | None) -> str | None:
    """One value's type: typer prints `<list[str]>` for a value given many times (the `...` and
    the help say so already) and `<int range>` for a bounded number (the bounds follow)."""
    if shown is None:
        return None
    return re.sub(r"^<list\[(.*)\]>", r"<\1>", shown).replace(" range>", ">")


def _patch_help_types() -> None:
    option_display = typer.core.TyperOption.display_type_rich
    argument_display = typer.core.TyperArgument.display_type_rich

    def flags_without_type(option: typer.core.TyperOption, ctx: typer.Context) -> str | None:
        """A flag takes no value, so help shows no type for it (typer prints `<bool>`)."""
        return None if option.is_flag else _plain(option_display(option, ctx))

    def argument_type(argument: typer.core.TyperArgument, ctx: typer.Context) -> str | None:
        return _plain(argument_display(argument, ctx))

    typer.core.TyperOption.display_type_rich = flags_without_type  # type: ignore[method-assign,assignment]  # a patch of typer
    typer.core.TyperArgument.display_type_rich = argument_type  # type: ignore[method-assign,assignment]  # a patch of typer


def _patch_absent_values() -> None:
    typed_process_value = REPLACED["process_value"] = typer.core._TyperParameter.process_value

    def absent_without_pydantic(param: typer.core._TyperParameter, ctx: typer.Context, value: object) -> object:
        """An option left out (None) becomes None, or () for one given many times, as typer
        makes it, without the value's pydantic TypeAdapter, which typer builds first for every
        value it checks. A value given, or a required one, goes to typer."""
        if value is not None or param.required:
            return typed_process_value(param, ctx, value)
        absent = () if param.multiple or param.nargs == -1 else None
        return absent if param.callback is None else param.callback(ctx, param, absent)

    typer.core._TyperParameter.process_value = absent_without_pydantic  # type: ignore[method-assign,assignment]  # a patch of typer


def _fits_help_types() -> bool:
    return all(
        _has(getattr(typer.core, kind, None), "display_type_rich", ["self", "ctx"])
        for kind in ("TyperOption", "TyperArgument")
    )


def _fits_absent_values() -> bool:
    return _has(getattr(typer.core, "_TyperParameter", None), "process_value", ["self", "ctx", "value"])


def _fits_one_command() -> bool:
    probe = typer.Typer()
    return isinstance(getattr(probe, "registered_commands", None), list) and isinstance(
        getattr(probe, "registered_groups", None), list
    )


# name: (does typer still have what the patch replaces, the patch); the one-command patch is
# `main._for_command`, which asks `applied` before it trims the app.
PATCHES: dict[str, tuple[Callable[[], bool], Callable[[], None]]] = {
    "help without Python types": (_fits_help_types, _patch_help_types),
    "absent options without pydantic": (_fits_absent_values, _patch_absent_values),
    "only the command run is built": (_fits_one_command, lambda: None),
}


_APPLIED: set[str] = set()


def apply() -> None:
    """Patch typer where it is a tested version and still has each private name as expected."""
    if _APPLIED or LEFT_OUT:  # once per process
        return
    tested = typer_version() in TESTED
    for name, (fits, patch) in PATCHES.items():
        if not tested:
            LEFT_OUT.append(f"{name} (typer {getattr(typer, '__version__', '?')} is not a tested version)")
        elif not fits():
            LEFT_OUT.append(f"{name} (typer changed what it replaces)")
        else:
            patch()
            _APPLIED.add(name)


def applied(name: str) -> bool:
    return name in _APPLIED


def note() -> str | None:
    """One line for `--verbose` when something was left out, else None."""
    if not LEFT_OUT:
        return None
    wanted = " or ".join(f"{major}.{minor}" for major, minor in TESTED)
    return (
        f"calmirror: running without typer patches ({'; '.join(LEFT_OUT)}); everything works, "
        f"start-up is slower: install typer {wanted} to have them"
    )
