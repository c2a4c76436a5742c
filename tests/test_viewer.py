"""The case viewer (``viewer/<id>.html``): self-contained, written by both commands, and working in a browser.

The browser test drives Debian's ``chromium`` with ``chromedriver`` through Selenium (the
``test`` extra; ``.ci/run`` installs the browser) and is skipped, with the reason, when any
of them is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import spinemri
from spinemri import Volume
from spinemri.errors import SpinemriWarning
from spinemri.io.nifti import save_nifti
from spinemri.report import viewer


def _case() -> tuple[Volume, np.ndarray, Volume]:
    shape = (9, 40, 60)  # identity affine: axis 0 LR, 1 AP, 2 SI
    img = np.full(shape, 100.0)
    vert = np.zeros(shape, np.uint8)
    vert[1:8, 10:30, 35:55] = 1
    vert[1:8, 10:30, 5:25] = 2
    img[vert > 0] = 300.0
    les = np.zeros(shape, np.uint8)
    les[4, 11:17, 40:48] = 1  # on the mid-sagittal slice only
    img[les > 0] = 900.0
    return Volume(img, np.eye(4)), vert, Volume(les, np.eye(4))


def _data(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="case-data">(.*?)</script>', page, re.S)
    assert m
    return dict(json.loads(m.group(1)))


def test_viewer_is_self_contained_and_holds_every_slice() -> None:
    image, vert, lesions = _case()
    page = viewer.render_viewer_html(image, vert, ["T11", "T12"], lesions, patient_id="P<1>")
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert "P&lt;1&gt;" in page and "P<1>" not in page
    d = _data(page)
    assert d["n"] == 9 and len(d["slices"]) == 9 and d["start"] == 4
    assert all(s["img"].startswith("image/jpeg ") for s in d["slices"])
    raw = bytes.fromhex(
        d["slices"][4]["img"][11:].translate(str.maketrans(viewer.ALPHABET, "0123456789abcdef"))
    )
    assert raw[:3] == b"\xff\xd8\xff"  # a JPEG
    assert not re.search(r"[A-Za-z0-9]", d["slices"][4]["img"][11:] + d["slices"][4]["lesion"][10:])
    assert [s for s in range(9) if d["slices"][s]["lesion"]] == [4] == d["lesion_slices"]
    assert d["slices"][0]["outline"] is None and d["slices"][4]["outline"].startswith("image/png ")
    assert [n[0] for n in d["slices"][4]["names"]] == ["T11", "T12"]


def test_viewer_href_is_the_safe_file_name() -> None:
    assert viewer.viewer_href("SMR-001") == "../viewer/SMR-001.html"
    assert viewer.viewer_href("a/b", base="viewer/").startswith("viewer/a_b-")


def test_viewer_of_a_512x512x20_case_stays_small() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        img, mask, _ = spinemri.make_phantom(seed=4, rows=512, cols=512, n_slices=20)
        m = spinemri.measure(img, mask)
    page = viewer.measurement_viewer_html(img, mask, m)
    assert len(page.encode()) < 2_000_000
    assert len(_data(page)["slices"]) == 20
    for lev in m.vertebrae["level"]:
        assert f"data-level='{lev}'" in page


@pytest.fixture(scope="module")
def measured_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spinemri.cli import main

    tmp = tmp_path_factory.mktemp("viewer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpinemriWarning)
        img, mask, _ = spinemri.make_phantom(seed=3, rows=192, cols=96, n_slices=9, first_level="T12")
    ip, mp = save_nifti(img, tmp / "img.nii.gz"), save_nifti(mask, tmp / "seg.nii.gz")
    out = tmp / "out"
    assert main(["measure", str(ip), "--mask", str(mp), "--patient-id", "P01", "--out", str(out)]) == 0
    return out


def test_measure_writes_the_viewer(measured_out: Path) -> None:
    page = (measured_out / "viewer" / "P01.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and len(_data(page)["slices"]) == 9


def test_run_writes_a_viewer_per_case(tmp_path: Path) -> None:
    from spinemri.pipeline.cohort import run_cohort

    cohort = tmp_path / "cohort"
    for i, pid in enumerate(("P1", "P2")):
        d = cohort / pid
        d.mkdir(parents=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpinemriWarning)
            img, mask, _ = spinemri.make_phantom(seed=i, rows=128, cols=64, n_slices=5, first_level="L1")
        save_nifti(img, d / "image.nii.gz")
        save_nifti(mask, d / "mask.nii.gz")
    out = tmp_path / "out"
    assert run_cohort(cohort, out).exit_code == 0
    assert {p.name for p in (out / "viewer").iterdir()} == {"P1.html", "P2.html"}
    shutil.rmtree(cohort / "P2")
    run_cohort(cohort, out)
    assert {p.name for p in (out / "viewer").iterdir()} == {"P1.html"}  # stale viewer removed


# --- in a real headless browser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (test extra)")
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1100",
    ):
        opts.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="spinemri-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


_RED_PIXELS = """
const c = document.getElementById('view'), x = c.getContext('2d');
const d = x.getImageData(0, 0, c.width, c.height).data; let n = 0;
for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 120 && d[i + 2] < 120) n++;
return n;"""


def _wait_slice(drv: Any, value: int) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(drv, 10).until(
        lambda d: d.execute_script("return document.body.dataset.slice") == str(value)
    )


def test_viewer_in_a_browser(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    image, vert, lesions = _case()
    page = tmp_path / "case.html"
    page.write_text(viewer.render_viewer_html(image, vert, ["T11", "T12"], lesions, patient_id="P1"), "utf-8")
    browser.get(page.as_uri())
    _wait_slice(browser, 4)
    assert browser.execute_script(_RED_PIXELS) > 100  # the lesion on the first slice shown
    before = browser.execute_script("return document.getElementById('view').toDataURL()")
    slider = browser.find_element(By.ID, "slice")
    slider.send_keys(Keys.ARROW_RIGHT)
    _wait_slice(browser, 5)
    assert browser.execute_script("return document.getElementById('view').toDataURL()") != before
    assert browser.execute_script(_RED_PIXELS) == 0  # no lesion on slice 5
    assert "slice 5 of 9" in browser.find_element(By.ID, "where").text
    slider.send_keys(Keys.ARROW_LEFT)
    _wait_slice(browser, 4)
    toggle = browser.find_element(By.ID, "show-lesion")
    toggle.click()  # hide the lesions
    browser.implicitly_wait(0)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda d: d.execute_script(_RED_PIXELS) == 0)
    toggle.click()  # show them again
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(_RED_PIXELS) > 100)
    assert not [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
