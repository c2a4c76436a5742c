"""Write docs/cli.md from the argument parser, so the CLI reference never drifts from the code.

Usage: python scripts/make_cli_reference.py [--check]
With --check, exit 1 when docs/cli.md differs from what the parser says (used by the tests).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"

INTRO = """# Command line reference

Generated from the argument parser by `python scripts/make_cli_reference.py`; a test fails when
this page and the code disagree.

Exit status (all commands): **0** success; **1** some cases failed (`run`; listed in
`errors.csv`, every other case written) or an error that is not about the input; **2** bad usage or
no usable input (a missing or unreadable file, a mask on another grid, an unknown label scheme,
a cohort folder without patient folders). Errors print one line naming the file and what to do;
`--debug` shows the traceback. `-v` / `-vv` log more, `--log-file F` also logs to a file.

Output folders: `measure --out DIR` needs a new or empty DIR (else exit 2; `--force` removes only
spinemri's own earlier outputs there, never another file); `run --out DIR` resumes a DIR it wrote
before (unchanged cases are skipped). Without `--patient-id`, `measure` names the patient as `run`
names a case folder: the DICOM pseudonym, else the file name, or the case folder's name when the
file name is generic (`SMR-002/image.nii.gz` is `SMR-002`). See
[decision 0020](decisions/0020-cli-exits-output-folder-and-ids.md).
"""


def render() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width: fix it
    from spinemri.cli import build_parser

    parser = build_parser()
    parts = [INTRO, "## spinemri\n", "```text\n" + parser.format_help().rstrip() + "\n```\n"]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        parts.append(f"## spinemri {name}\n")
        parts.append("```text\n" + p.format_help().rstrip() + "\n```\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__).parse_known_args(argv)[1]
    text = render()
    if "--check" in args:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run python scripts/make_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
