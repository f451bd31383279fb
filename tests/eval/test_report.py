import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lhama.eval.report import render_report, write_report
from lhama.eval.runner import AdmireConfig, evaluate_admire
from tests.eval.helpers import write_admire

ARTIFACTS = Path(os.environ.get("LHAMA_TEST_ARTIFACTS", "/tmp/lhama-test-artifacts"))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    cfg = AdmireConfig(data=write_admire(root / "data"), baselines=("random",), cache=root / "c.jsonl")
    return evaluate_admire(cfg)


def test_report_has_metrics_items_thumbnails_and_filter(results):
    page = render_report(results)
    assert len(re.findall(r'<tr class="item" data-type="(idiomatic|literal)"', page)) == 3
    assert page.count('data-type="idiomatic"') == 2 and page.count('data-type="literal"') == 1
    assert '<tr class="system"><th>random</th>' in page
    # 3 items x 5 images, each shown in the expected and the predicted column, one inline thumbnail each
    assert page.count('src="data:image/jpeg;base64,') == 3 * 5 * 2
    assert "onclick=\"show('idiomatic')\"" in page
    assert "The tax reform became a hot potato" in page
    text = re.sub(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", "", page)
    assert "http" not in text.split("<body>")[1] and "src=\"/" not in text  # self-contained: nothing fetched


def test_report_without_images_shows_captions(tmp_path):
    cfg = AdmireConfig(data=write_admire(tmp_path / "d", images=False), baselines=("random",), cache=tmp_path / "c.jsonl")
    page = render_report(evaluate_admire(cfg))
    assert "data:image/jpeg" not in page
    assert '<div class="cap">A red picture of hot potato number 1.</div>' in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(results, tmp_path):
    html_path = write_report(results, tmp_path / "report.html")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert len(re.findall(r'<tr class="item"', dom)) == 3
    assert '<tr class="system"><th>random</th>' in dom
    literal_only = subprocess.run([*flags, "--dump-dom", html_path.as_uri() + "#literal"], capture_output=True,
                                  text=True, timeout=120).stdout
    hidden = re.findall(r'<tr class="item" data-type="(\w+)"[^>]*style="display: none;"', literal_only)
    assert hidden == ["idiomatic", "idiomatic"]  # the filter ran in the browser
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "admire-report.png"
    subprocess.run([*flags, "--window-size=1400,900", f"--screenshot={shot}", html_path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # a blank page is a few kB
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
