"""`mentionwatch tui`: the triage screen."""

from __future__ import annotations

import click

from mentionwatch.cli.context import AppContext, pass_app


@click.command()
@click.option("--mention", "mention_id", type=int, help="Open with this mention selected.")
@pass_app
def tui(app: AppContext, mention_id: int | None) -> None:
    """The approval queue: the most urgent flagged mentions first, their drafts editable,
    one key to approve, dismiss or open. Press ? inside for the keys.

    Approved replies are sent at once (and by `poll`/`run` passes); nothing is posted twice.
    """
    from mentionwatch.tui.app import TriageApp

    # A store this user may only read opens for browsing, marked READ-ONLY: the keys that
    # write (approve, dismiss, snooze, edit, ...) say so and change nothing.
    TriageApp(app.config, app.store, mention_id=mention_id).run()
