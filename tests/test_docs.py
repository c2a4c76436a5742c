"""Docs stay true: the CLI reference matches the parser, and every doc link points at a file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_cli_reference_is_up_to_date() -> None:
    script = REPO / "scripts" / "make_cli_reference.py"
    proc = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_relative_links_in_docs_and_readme_exist() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    missing = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(REPO)} -> {target}")
    assert not missing, "broken links:\n" + "\n".join(missing)


def test_every_command_in_design_exists() -> None:
    from spinemri.cli import COMMANDS

    assert {"phantom", "measure", "run", "link", "analyze"} <= set(COMMANDS)
