"""Shared bits for benchmark scripts (not part of the installed package)."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def emit(figures: dict[str, Any]) -> None:
    """Print the figures as the last line, one JSON object."""
    print(json.dumps(figures, sort_keys=True))
