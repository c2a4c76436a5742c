#!/usr/bin/env python
"""Render an analysis report.html in headless Chromium and save a PNG screenshot (a dev tool, not CI).

Usage::

    python scripts/screenshot_report.py ANALYSIS_DIR/report.html OUT.png [--width 1200] [--height 3000]
        [--max-kb 300]

Chromium is the Debian package ``chromium`` (``apt-get install -y chromium``). The page is loaded from
``file://`` with networking, sync and component updates off and a throw-away profile, so a report that
needs anything from outside shows up broken in the picture. With ``--max-kb`` the PNG is re-quantised
(Pillow, when installed) until it fits.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def screenshot(html: Path, png: Path, width: int = 1200, height: int = 3000, timeout: float = 120.0) -> Path:
    """Screenshot ``html`` into ``png`` with headless Chromium; return the PNG path."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        raise SystemExit("chromium not found: apt-get update && apt-get install -y chromium")
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="spinemri-chromium-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            html.resolve().as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not png.exists():
        raise SystemExit(f"chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return png


def shrink(png: Path, max_kb: int) -> None:
    """Quantise the PNG's colours (Pillow) until it is below ``max_kb`` kilobytes."""
    if png.stat().st_size <= max_kb * 1024:
        return
    try:
        from PIL import Image
    except ImportError:
        print(
            f"warning: {png} is {png.stat().st_size // 1024} KB and Pillow is not installed", file=sys.stderr
        )
        return
    img = Image.open(png).convert("RGB")
    for colours in (128, 64, 32, 16):
        img.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
        if png.stat().st_size <= max_kb * 1024:
            return
    w, h = img.size
    img.resize((w * 3 // 4, h * 3 // 4)).quantize(colors=32).save(png, optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html", type=Path)
    ap.add_argument("png", type=Path)
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--max-kb", type=int, default=None)
    args = ap.parse_args(argv)
    if not args.html.is_file():
        raise SystemExit(f"{args.html} is not a file")
    out = screenshot(args.html, args.png, args.width, args.height)
    if args.max_kb:
        shrink(out, args.max_kb)
    print(f"{out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
