"""`make install` into a scratch directory: runtime dependencies only, config, secrets, units.

This is the README's server installation, run for real (pip installs from the
configured package index, so it takes about a minute).
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    return [name for name in out.decode().split("\0") if name]


@pytest.mark.slow
def test_make_install_in_a_scratch_directory(tmp_path: Path) -> None:
    """The installed `intake` runs the demo; test tools are absent; a re-install keeps config."""
    source = tmp_path / "source"
    for name in _tracked_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    prefix, etc, units = tmp_path / "opt", tmp_path / "etc", tmp_path / "units"
    make = [
        "make",
        "-C",
        str(source),
        "install",
        f"PREFIX={prefix}",
        f"SYSCONFDIR={etc}",
        f"UNITDIR={units}",
    ]
    installed = subprocess.run(make, capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]

    intake = prefix / "bin" / "intake"
    version = subprocess.run([intake, "--version"], check=True, capture_output=True, text=True)
    assert "0.1.0" in version.stdout
    for tool in ("pytest", "ruff", "mypy", "hypothesis"):
        assert not (prefix / "bin" / tool).exists(), tool
    assert stat.S_IMODE((etc / "env").stat().st_mode) == 0o600
    assert stat.S_IMODE((etc / "config.toml").stat().st_mode) == 0o640
    worker = (units / "consultation-intake.service").read_text()
    assert f"ExecStart={intake} worker" in worker
    assert f"INTAKE_CONFIG={etc}/config.toml" in worker and f"EnvironmentFile={etc}/env" in worker
    assert (units / "consultation-intake-status.timer").exists()

    # The shipped example loads, needs no secret to say so, and names what is missing.
    check = subprocess.run(
        [intake, "--config", str(etc / "config.toml"), "check"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert check.returncode == 1 and "Traceback" not in check.stderr + check.stdout
    assert "INTAKE_OAUTH2_CLIENT_SECRET is not set" in check.stdout

    # An operator's config: the demo inbox into a SQLite file next to it.
    shutil.copytree(ROOT / "examples" / "inbox", etc / "inbox")
    (etc / "config.toml").write_text(
        (ROOT / "examples" / "demo.toml").read_text().replace("demo.db", "intake.db")
    )
    env = {"PATH": "/usr/bin:/bin", "INTAKE_CONFIG": str(etc / "config.toml")}
    poll = subprocess.run(
        [intake, "poll", "--no-ack"], capture_output=True, text=True, env=env, timeout=300
    )
    assert poll.returncode == 0, poll.stderr
    assert "7 new" in poll.stdout and (etc / "intake.db").exists()
    listing = subprocess.run([intake, "list"], capture_output=True, text=True, env=env, cwd="/")
    assert listing.stdout.count("KIL-000") == 6

    subprocess.run(make, check=True, capture_output=True, timeout=900)  # the upgrade step
    assert "intake.db" in (etc / "config.toml").read_text()  # the operator's file is kept


def test_readme_install_section_covers_the_server() -> None:
    """The README's server section names every step a new operator needs."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Installing on a server", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "python3-venv",
        "antiword",
        "tesseract-ocr-eng",
        "tesseract-ocr-cym",
        "poppler-utils",
        "adduser --system",
        "make install",
        "/opt/consultation-intake/bin/pip install .",
        "/etc/consultation-intake/config.toml",
        "/etc/consultation-intake/env",
        "systemctl enable --now consultation-intake",
        "poll --no-ack",
        ".backup",
        "pg_dump",
        "db upgrade",
    ):
        assert needed in section, needed
    # The units the README enables are the ones shipped.
    units = {p.name for p in (ROOT / "examples" / "systemd").iterdir()}
    assert {"consultation-intake.service", "consultation-intake-status.timer"} <= units
