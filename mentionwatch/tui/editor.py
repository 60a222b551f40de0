"""Hand a draft to the person's own editor ($EDITOR, else $VISUAL) and take back the result.

The draft goes to a private temporary file; the TUI steps aside (`App.suspend()`) while the
editor owns the terminal. Anything but a clean exit keeps the draft as it was.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.app import App, SuspendNotSupported

NO_EDITOR = ("No editor is set: export EDITOR (or VISUAL), e.g. `export EDITOR=nano`, and "
             "start the TUI again. The draft is unchanged.")


@dataclass(frozen=True, slots=True)
class EditResult:
    text: str | None  # None: keep the draft as it was
    message: str | None = None  # why nothing changed, for the person


def editor_command(environ: dict[str, str] | None = None) -> list[str] | None:
    """$EDITOR, else $VISUAL, split like a shell would ("code --wait"); None if neither."""
    env = os.environ if environ is None else environ
    for name in ("EDITOR", "VISUAL"):
        words = shlex.split(env.get(name, ""))
        if words:
            return words
    return None


def edit_text(app: App[Any], text: str, command: list[str]) -> EditResult:
    """Run `command FILE` on a copy of `text`; the edited text, or None and why not."""
    fd, name = tempfile.mkstemp(prefix="mentionwatch-draft-", suffix=".txt")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        try:
            code = _run(app, [*command, str(path)])
        except SuspendNotSupported:
            return EditResult(None, "This terminal cannot hand the screen to an editor; edit "
                                    "the draft in place (e). The draft is unchanged.")
        except OSError as exc:
            return EditResult(None, f"Could not start the editor {command[0]!r}: "
                                    f"{exc.strerror or exc}. Check $EDITOR; the draft is "
                                    "unchanged.")
        if code != 0:
            return EditResult(None, f"The editor exited with status {code}; the draft is "
                                    "unchanged.")
        edited = path.read_text(encoding="utf-8", errors="replace")
    finally:
        path.unlink(missing_ok=True)
    # Editors end the file with a newline; the draft did not have one.
    return EditResult(edited.rstrip("\n"))  # editors end a file with a line break or more


def _run(app: App[Any], argv: list[str]) -> int:
    if app.is_headless:  # tests, and no terminal to hand over
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              check=False).returncode
    with app.suspend():
        return subprocess.run(argv, check=False).returncode
