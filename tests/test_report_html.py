"""The HTML report: self-contained, escaped, and correct as a browser sees it (headless Chromium)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report_formats import NASTY, make_run

from mipcheck import __version__
from mipcheck.engine.report_html import render_html, write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Dom(HTMLParser):
    """Elements by id, rows by data-verdict, links and script tags: enough to check the report."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, dict[str, str]] = {}
        self.text_by_id: dict[str, str] = {}
        self.rows: dict[str, str] = {}
        self.links: list[str] = []
        self.scripts = 0
        self._open: list[tuple[str, str]] = []  # (tag, id) of open elements that have an id

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script":
            self.scripts += 1
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "tr" and "data-verdict" in a:
            self.rows[a["id"]] = a["data-verdict"]
        if "id" in a:
            self.ids[a["id"]] = a
            self.text_by_id[a["id"]] = ""
            self._open.append((tag, a["id"]))

    def handle_data(self, data: str) -> None:
        for _tag, i in self._open:
            self.text_by_id[i] += data

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            self._open.pop()


def _check_dom(dom: _Dom, html_dir: Path) -> None:
    assert dom.scripts == 0, "device or profile text must never become markup"
    assert dom.text_by_id["tool"].strip() == f"mipcheck {__version__}"
    assert "127.0.0.1:434" in dom.text_by_id["target"]
    assert dom.rows == {
        "case-CASE-PASS": "pass",
        "case-CASE-FAIL": "fail",
        "case-CASE-WARN": "warn",
        "case-CASE-INC": "inconclusive",
        "case-CASE-NA": "not-applicable",
        "case-CASE-ERR": "error",
    }
    row = " ".join(dom.text_by_id["case-CASE-FAIL"].split())
    assert "expected: no reply at all" in row and "observed: frame 2: reply code 0" in row
    assert "MUST reject (drop silently)" in row  # the requirement's text
    assert dom.text_by_id["total-fail"].strip() == "1" and dom.text_by_id["total-pass"].strip() == "1"
    assert json.dumps(NASTY)[1:-1] in dom.text_by_id["profile"]  # shown as text, escaped
    pcaps = [h for h in dom.links if h.endswith(".pcap")]
    assert pcaps == ["../out/pcaps/CASE-FAIL.pcap"]
    assert (html_dir / pcaps[0]).exists()


def test_html_is_escaped_and_self_contained(tmp_path: Path) -> None:
    run = make_run(tmp_path / "out")
    (tmp_path / "reports").mkdir()
    text = render_html(run, tmp_path / "reports")
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "http://" not in text and "https://" not in text  # nothing fetched from anywhere
    dom = _Dom()
    dom.feed(text)
    _check_dom(dom, tmp_path / "reports")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package 'chromium'; .ci/run installs it)")
def test_html_in_headless_chromium(tmp_path: Path) -> None:
    run = make_run(tmp_path / "out")
    path = write_html(run, tmp_path / "reports" / "report.html")
    with tempfile.TemporaryDirectory() as profile_dir:
        done = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile_dir}",
                "--dump-dom",
                path.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    dom = _Dom()
    dom.feed(done.stdout.decode())
    assert dom.rows, "chromium rendered no case rows"
    _check_dom(dom, path.parent)
