"""symbp's pages in a real browser: headless Chromium from the system packages renders them, with no formula left
as TeX and nothing fetched from the network. Screenshots go to $SYMBP_SCREENSHOTS when it is set (to look at)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from html_inspection import raw_tex_in, read_page

pytest.importorskip("latex2mathml")

from symbp.render.html.page import derivation_page, worksheet_page  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")

SOFTMAX = {"name": "softmax_net", "title": "Three classes: softmax and cross-entropy", "inputs": 3,
           "layers": [{"units": 4, "activation": "tanh"}, {"units": 3, "activation": "softmax"}],
           "loss": "cross_entropy"}
PAGES = {
    "actuarial_lab": lambda: derivation_page("actuarial"),
    "actuarial_fausett": lambda: derivation_page("actuarial", "fausett"),
    "softmax": lambda: derivation_page(SOFTMAX),
    "worksheet": lambda: worksheet_page("actuarial", variant=1, solutions=True),
}
WIDTH = 1000


def chromium(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    """Headless Chromium with every name resolving nowhere, so that a fetch could only fail, never succeed."""
    profile = tmp_path / "profile"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def requested_hosts(tmp_path: Path, page: Path) -> set[tuple[str, str]]:
    """(scheme, host) of every network address Chromium's net log names while loading the page."""
    log = tmp_path / f"{page.stem}.netlog.json"
    chromium(tmp_path, f"--log-net-log={log}", "--dump-dom", page.as_uri())
    events = json.loads(log.read_text())["events"]
    hosts = set()
    for event in events:
        for key in ("url", "original_url"):
            address = urlsplit(str(event.get("params", {}).get(key, "")))
            if address.scheme in ("http", "https", "ws", "wss"):
                hosts.add((address.scheme, address.hostname or ""))
    return hosts


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pages")
    pages = {}
    for name, make in PAGES.items():
        pages[name] = folder / f"{name}.html"
        pages[name].write_text(make(), encoding="utf-8")
    return pages


@pytest.mark.parametrize("name", list(PAGES))
def test_the_rendered_page_has_mathml_and_no_tex(tmp_path, written, name):
    result = chromium(tmp_path, "--dump-dom", written[name].as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = read_page(result.stdout)
    assert dom.tags.count("math") > 20 and "mfrac" in dom.tags and "svg" in dom.tags
    assert raw_tex_in(dom.text) == []


@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_renders_to_a_picture(tmp_path, written, name):
    from PIL import Image

    shot = Path(os.environ.get("SYMBP_SCREENSHOTS", tmp_path)) / f"{name}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    result = chromium(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},4000", written[name].as_uri())
    assert shot.exists(), result.stderr[-2000:]
    picture = Image.open(shot).convert("L")
    assert picture.size == (WIDTH, 4000)
    inked = sum(count for level, count in enumerate(picture.histogram()) if level < 128)
    # Text and formulas cover a few per cent of a page; a blank or error page covers almost none.
    assert inked > 0.01 * WIDTH * 4000


def test_nothing_is_fetched(tmp_path, written):
    # What Chromium asks of the network by itself, on an empty page: the baseline.
    empty = tmp_path / "empty.html"
    empty.write_text("<!DOCTYPE html><html><head><title>empty</title></head><body></body></html>")
    baseline = requested_hosts(tmp_path, empty)
    # The net log does see a page's own fetches: a canary image is caught.
    canary = tmp_path / "canary.html"
    canary.write_text('<!DOCTYPE html><html><body><img src="http://symbp-canary.invalid/x.png"></body></html>')
    assert ("http", "symbp-canary.invalid") in requested_hosts(tmp_path, canary) - baseline
    for name, page in written.items():
        assert requested_hosts(tmp_path, page) - baseline == set(), name
