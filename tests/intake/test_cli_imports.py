"""What the command line imports: help and mistakes load no database layer, and each command
only its own part of the program. Each case runs ``python -m intake`` in a fresh process and
reads ``sys.modules`` at its exit (a module imported once stays there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config

DEMO_INBOX = ROOT / "examples" / "inbox"
ONE_EML = sorted(p for p in (DEMO_INBOX / "new").iterdir() if not p.name.startswith("."))[0]

# Runs the command line as `python -m intake` does, then reports what was imported.
PROBE = """
import json, runpy, sys
sys.argv = ["intake", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("intake", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
with open({out!r}, "w") as out:
    json.dump({{"exit": code, "modules": sorted(sys.modules)}}, out)
"""

# The slow parts (SQLAlchemy and the models, the pipeline, templates, the web view): none
# of them is needed to show help or to report a mistake on the command line.
HEAVY = [
    "sqlalchemy",
    "store",
    "intake.app",
    "intake.pipeline",
    "jinja2",
    "numpy",
    "imap_tools",
    "starlette",
    "intake.web",
]


def _imported(args: list[str], tmp_path: Path) -> tuple[int, set[str]]:
    """Run ``intake ARGS`` in a new interpreter; its exit code and every module it imported."""
    report = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(out=str(report)), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
        check=False,
    )
    assert report.exists(), result.stderr
    found = json.loads(report.read_text())
    return found["exit"], set(found["modules"])


def _loaded(modules: set[str], names: list[str]) -> list[str]:
    """Which of ``names`` (packages count with their submodules) are among ``modules``."""
    return [n for n in names if any(m == n or m.startswith(f"{n}.") for m in modules)]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        pytest.param(["--help"], 0, id="help"),
        pytest.param(["import", "--help"], 0, id="import help"),
        pytest.param(["users", "add", "--help"], 0, id="users add help"),
        pytest.param(["list", "--bogus"], 2, id="bad option"),
        pytest.param(["--config", "missing.toml", "list"], 2, id="list without config"),
        pytest.param(
            ["--config", "missing.toml", "import", str(ONE_EML)], 2, id="import without config"
        ),
    ],
)
def test_help_and_mistakes_import_nothing_heavy(args: list[str], code: int, tmp_path: Path) -> None:
    """`intake --help`, a command's help and a mistaken command line start in a tenth of a
    second: no SQLAlchemy, no store, no pipeline, no templates, no numpy."""
    exit_code, modules = _imported(args, tmp_path)
    assert exit_code == code
    assert "intake.cli.root" in modules  # the probe did run the command line
    assert _loaded(modules, HEAVY) == []


def test_import_loads_no_staff_web_or_oauth_modules(tmp_path: Path) -> None:
    """`intake import` needs the database and the pipeline, but not the staff commands, the
    web view, OAuth2 sign-in, IMAP or the templates of acknowledgements and digests."""
    config = write_config(tmp_path)
    exit_code, modules = _imported(["--config", str(config), "import", str(ONE_EML)], tmp_path)
    assert exit_code == 0
    assert {"sqlalchemy", "store", "intake.app", "intake.pipeline"} <= modules
    unwanted = ["intake.staff", "intake.web", "intake.mail.oauth", "imap_tools", "jinja2"]
    assert _loaded(modules, ["starlette", "cryptography", *unwanted]) == []


# Loaded only when a message needs them: an HTML body, bytes of no declared charset, an
# old Office file; the PostgreSQL dialect only on PostgreSQL.
ON_NEED = ["lxml", "charset_normalizer", "olefile", "sqlalchemy.dialects.postgresql"]
PLAIN = (
    "From: Ann Example <ann@example.org>\r\nTo: evidence@example.gov.uk\r\n"
    "Subject: Response\r\nMessage-ID: <plain-1@example.org>\r\n"
    "Date: Mon, 02 Mar 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nOur response to question 1.\r\n"
)


def test_importing_plain_mail_on_sqlite_loads_nothing_it_does_not_need(tmp_path: Path) -> None:
    """`intake import` of a plain-text message into SQLite reads and stores it without
    loading the HTML parser, charset detection, the OLE reader or SQLAlchemy's
    PostgreSQL dialect: start-up stays short for the common case."""
    config = write_config(tmp_path)
    exit_code, _ = _imported(["--config", str(config), "db", "upgrade"], tmp_path)
    assert exit_code == 0  # the schema exists: creating it is the migrations' own cost
    message = tmp_path / "plain.eml"
    message.write_bytes(PLAIN.encode())
    exit_code, modules = _imported(["--config", str(config), "import", str(message)], tmp_path)
    assert exit_code == 0
    assert {"intake.mail.mime", "intake.stages.read", "sqlalchemy.dialects.sqlite"} <= modules
    assert _loaded(modules, ON_NEED) == []


CAMPAIGN_CODE = ["numpy", "intake.stages.cluster", "intake.analysis.text"]


def test_campaign_detection_loads_only_when_it_has_work(tmp_path: Path) -> None:
    """NumPy and the MinHash code load when the campaign stage runs: not for `intake
    list`, nor for an import with `[campaigns] enabled = false`."""
    config = write_config(tmp_path)
    exit_code, modules = _imported(["--config", str(config), "import", str(ONE_EML)], tmp_path)
    assert exit_code == 0
    assert "intake.stages.cluster" in modules  # the import's campaign stage ran
    exit_code, modules = _imported(["--config", str(config), "list"], tmp_path)
    assert exit_code == 0
    assert {"store", "intake.app", "intake.stages"} <= modules
    assert _loaded(modules, CAMPAIGN_CODE) == []

    off = tmp_path / "off"
    off.mkdir()
    config = write_config(off, "[campaigns]\nenabled = false\n")
    exit_code, modules = _imported(["--config", str(config), "import", str(ONE_EML)], off)
    assert exit_code == 0
    assert "intake.stages.read" in modules
    assert _loaded(modules, CAMPAIGN_CODE) == []


def test_user_roles_match_the_store() -> None:
    """`intake users add --role` offers the roles the store accepts (written out in the
    command line so that its help needs no database layer)."""
    from intake.cli.web import _ROLES
    from store.users import ROLES

    assert _ROLES == ROLES
