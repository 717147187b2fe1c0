"""`communities --version`, and `serve --help` and the README's "Running it" table naming every setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from communities import config
from tests.e2e.helpers import COMMUNITIES, ROOT, run

pytestmark = pytest.mark.e2e

SETTINGS = sorted(set(re.findall(r'"(COMMUNITIES_[A-Z_]+)"', Path(config.__file__).read_text())))


def test_version():
    result = run([COMMUNITIES, "--version"]).ok()
    assert re.fullmatch(r"communities \d+\.\d+\.\d+\S*\n", result.stdout), result.describe()


def test_serve_help_and_readme_name_every_setting():
    assert len(SETTINGS) >= 15, SETTINGS
    help_text = " ".join(run([COMMUNITIES, "serve", "--help"]).ok().stdout.split())
    readme = (ROOT / "README.md").read_text()
    running_it = readme[readme.index("## Running it") : readme.index("## Calling it")]
    for name in SETTINGS:
        assert name in help_text, f"{name} is not in `serve --help`"
        assert f"`{name}" in running_it, f"{name} is not in the README's Running it table"
