"""The triage TUI (Textual). The core never imports this package."""
