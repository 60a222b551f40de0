"""`mentionwatch run`: poll every source on its own schedule until stopped."""

from __future__ import annotations

import click

from mentionwatch.cli.context import AppContext, pass_app
from mentionwatch.errors import ConfigError


@click.command()
@pass_app
def run(app: AppContext) -> None:
    """Run as a service: poll each enabled source at its interval, send alerts, keep a
    heartbeat (see `mentionwatch status`). Stop with Ctrl-C or SIGTERM: passes in flight
    finish first, nothing is half-written. A second one stops at once (a pass cut short
    stores nothing and is read again next time).

    For cron or a systemd timer use `mentionwatch poll` instead.
    """
    from mentionwatch.cli.core import _load_judge
    from mentionwatch.scheduler import Daemon

    config = app.config
    if not any(s.enabled for s in config.sources):
        raise ConfigError(f"{config.path}: no enabled [[sources]] to poll.")
    daemon = Daemon(config, app.open_store(create=True), judge=_load_judge(app))
    app.err.print(f"mentionwatch run: polling {sum(s.enabled for s in config.sources)} "
                  "sources; Ctrl-C to stop.")
    daemon.run()
    app.err.print(f"Stopped after {daemon.passes} passes.")
