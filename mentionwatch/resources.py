"""Where the bundled data folders are: in the wheel, or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    # A wheel maps the top-level folders into mentionwatch/_bundled/ (see pyproject.toml);
    # a source checkout or editable install has them beside the package.
    for candidate in (_PACKAGE_DIR / "_bundled" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"mentionwatch is installed without its {name}/ folder")


def migrations_dir() -> Path:
    return _data_dir("migrations")


def rules_dir() -> Path:
    return _data_dir("rules")


def sample_dir() -> Path:
    return _PACKAGE_DIR / "sample"


def example_config_path() -> Path:
    for candidate in (_PACKAGE_DIR / "_bundled" / "config.example.toml",
                      _PACKAGE_DIR.parent / "config.example.toml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("mentionwatch is installed without config.example.toml")
