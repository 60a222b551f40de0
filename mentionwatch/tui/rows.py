"""A table of rows, as the queue and the outbox show them."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding
from textual.widgets import DataTable


class RowTable(DataTable[Any]):
    """A DataTable with a row cursor where Home and End go to the first and the last row
    (DataTable's own Home and End scroll sideways, which a list of rows never needs)."""

    BINDINGS: ClassVar[list[Any]] = [
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]
