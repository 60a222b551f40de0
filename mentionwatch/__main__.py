"""`python -m mentionwatch` runs the CLI."""

from mentionwatch.cli import main

main()
