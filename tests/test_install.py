"""A non-editable install finds its migrations, rule packs and example config.

Builds the real wheel, installs it into a fresh directory and runs it from elsewhere, so the
source checkout cannot be what makes it work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (test extra)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    [built] = out.glob("mentionwatch-*.whl")
    return built


def test_wheel_contains_data_folders(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "mentionwatch/_bundled/migrations/env.py" in names
    assert any(n.startswith("mentionwatch/_bundled/migrations/versions/0001") for n in names)
    assert "mentionwatch/_bundled/config.example.toml" in names
    assert any(n.startswith("connectors/rss.py") for n in names)
    assert any(n.startswith("mentionwatch/sample/") for n in names)
    assert "mentionwatch/tui/app.tcss" in names
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_upgrades_a_fresh_database_from_another_directory(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTIONWATCH_")}
    env.update(PYTHONPATH=str(target), XDG_CONFIG_HOME=str(work), XDG_DATA_HOME=str(work),
               NO_COLOR="1")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mentionwatch", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)

    located = subprocess.run(
        [sys.executable, "-c", "import mentionwatch.resources as r; print(r.migrations_dir())"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )
    assert located.stdout.strip().startswith(str(target))
    assert run("init").returncode == 0
    config = (work / "mentionwatch.toml").read_text()
    (work / "mentionwatch.toml").write_text(config)
    upgraded = run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Upgraded database from empty to" in upgraded.stdout
    assert (work / "mentionwatch.db").exists()
    demo = run("demo")
    assert demo.returncode == 0, demo.stderr
    assert "community-forum" in demo.stdout
