"""report.html in a real browser: headless Chromium loads it from disk (no network), and a probe
script reports console errors, the KPI block and every figure as the page shows them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from synthetic_logs import synthetic_run

from lemcosim.analysis.report import analyze

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium; "
    ".ci/run installs it)")

# Runs first in <head>: records errors (script errors, resources that fail to load, console
# errors), then on load writes what the page shows into <pre id="probe"> for --dump-dom.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(e.message ||
  'failed to load ' + (e.target && (e.target.src || e.target.href))), true);
const consoleError = console.error;
console.error = (...a) => { window.__errors.push(a.join(' ')); consoleError.apply(console, a); };
window.addEventListener('load', () => {
  const probe = document.createElement('pre');
  probe.id = 'probe';
  const kpis = document.getElementById('kpis');
  probe.textContent = JSON.stringify({
    errors: window.__errors,
    kpis: kpis ? kpis.querySelectorAll('.kpi').length : -1,
    kpi_height: kpis ? kpis.getBoundingClientRect().height : 0,
    figures: [...document.querySelectorAll('figure')].map(f => {
      const img = f.querySelector('img');
      return {id: f.id, width: img ? img.naturalWidth : 0,
              shown: img ? img.getBoundingClientRect().height : 0};
    }),
  });
  document.body.appendChild(probe);
});
</script>"""


def browse(page: Path, tmp_path: Path) -> tuple[dict, str]:
    """Load `page` with the probe in headless Chromium; returns (probe, console lines)."""
    probed = page.with_name("probed_" + page.name)
    probed.write_text(page.read_text().replace("<head>", "<head>\n" + PROBE, 1))
    profile = tmp_path / f"chromium-profile-{page.stem}"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--window-size=1200,900", "--virtual-time-budget=10000", "--dump-dom",
         probed.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, "the page never finished loading:\n" + proc.stdout[-1000:]
    probe = json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<")
                       .replace("&gt;", ">").replace("&quot;", '"'))
    console = "\n".join(line for line in proc.stderr.splitlines() if "CONSOLE" in line)
    return probe, console


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run = synthetic_run(tmp_path_factory.mktemp("browser") / "day", 96)
    analyze(run)
    return run / "analysis" / "report.html"


def test_report_loads_without_errors_and_shows_kpis_and_every_figure(report, tmp_path):
    probe, console = browse(report, tmp_path)
    assert probe["errors"] == [] and console == "", (probe["errors"], console)  # not one message
    assert probe["kpis"] >= 10 and probe["kpi_height"] > 100
    pngs = sorted(p.stem for p in report.parent.glob("*.png"))
    assert sorted(f["id"].removeprefix("figure-") for f in probe["figures"]) == pngs
    for figure in probe["figures"]:
        assert figure["width"] > 300 and figure["shown"] > 100, figure


def test_the_probe_sees_a_figure_that_does_not_show(report, tmp_path):
    # the same page with one figure's image cut short: the check above would fail on it
    html = report.read_text()
    start = html.index('<img src="data:image/png;base64,') + len('<img src="data:image/png;base64,')
    broken = report.with_name("broken.html")
    broken.write_text(html[:start] + "iVBORw0KGgo" + html[html.index('"', start):])
    probe, _ = browse(broken, tmp_path)
    assert any(f["width"] == 0 for f in probe["figures"])
    assert any("failed to load" in e for e in probe["errors"])
