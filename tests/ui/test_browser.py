"""The notebooks as a user meets them: JupyterLab from .venv on 127.0.0.1, opened in headless Chromium (Debian's
chromium and chromedriver, driven by selenium), every cell run on the notebooks' kernel "Python (bendlab)", then the
explorer's parameter slider, operator and layer changed (notebook 01), the closing slider moved (notebook 03), and
the live view started and stopped (notebook 08). Asserts the widgets rendered, no error output or browser-console
error, and new pixels after each change (the live image: at least 10 new pictures while it plays, and an fps
readout above 0); prints slider-to-image latencies measured from in-page events. The explorer's and the live view's
tests save what the browser shows as figures/screenshot-explorer.png and figures/screenshot-live.png (the README's
pictures). Then the docs site as `make docs` built it into site/ (`make test` builds it before the slow tests):
its front page and a notebook page render with their pictures, with no console error and nothing fetched from
outside the site. Skips, saying why, where Chromium is not installed (`.ci/run` installs it) or site/ was never
built."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
pytestmark = [pytest.mark.slow,  # runs three notebooks in JupyterLab
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no chromium/chromedriver installed (Debian: "
                                 "apt-get install chromium chromium-driver; .ci/run does this)")]
ROOT = Path(__file__).resolve().parents[2]
KERNEL = "bendlab"  # every notebook's kernelspec (`make install` registers it as "Python (bendlab)")
SITE = ROOT / "site"  # the docs site, `make docs`
TIMEOUT = int(os.environ.get("BENDLAB_BROWSER_TIMEOUT", 420))  # s for a notebook to run all its cells (fast mode)


def wait_for_http(url: str, server: subprocess.Popen, seconds: float, what: str) -> None:
    """Poll `url` until it answers; a one-line error if `server` exits or `seconds` pass first."""
    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.2)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving copies of the notebooks (the repository's stay untouched)."""
    pytest.importorskip("selenium")
    from ipykernel.kernelspec import install
    root = tmp_path_factory.mktemp("lab")  # the notebooks and what they write; JupyterLab's settings and kernel beside
    home = tmp_path_factory.mktemp("jupyter")
    for nb in ("01_operators.ipynb", "03_figure2_rotation_sweep.ipynb", "08_live.ipynb"):
        assert json.loads((ROOT / "notebooks" / nb).read_text())["metadata"]["kernelspec"]["name"] == KERNEL, nb
        shutil.copy(ROOT / "notebooks" / nb, root / nb)
    # the notebooks' kernel, on this interpreter: JUPYTER_PATH comes before every other kernel folder
    install(kernel_name=KERNEL, display_name="Python (bendlab)", prefix=str(home))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = os.urandom(16).hex()
    settings = home / "settings" / "@jupyterlab"
    for extension, name, value in (
            ("notebook-extension", "tracker", {"windowingMode": "none"}),  # every cell in the page: every output read
            ("apputils-extension", "notification", {"fetchNews": "false"})):  # no news toast over the pictures
        (settings / extension).mkdir(parents=True)
        (settings / extension / f"{name}.jupyterlab-settings").write_text(json.dumps(value))
    env = {**os.environ, "BENDLAB_FAST": "1", "BENDLAB_FIGURES": str(root / "figures"),
           "BENDLAB_OUT": str(root / "out"), "OMP_NUM_THREADS": "1", "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTER_PATH": str(home / "share" / "jupyter")}
    server = subprocess.Popen([str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
                               "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
                               f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
                               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--allow-root"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/api/status?token={token}", server, 60, "JupyterLab")
        yield url, token
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started, by process group
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1100",
                "--disable-gpu", "--no-first-run"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    pid = driver.service.process.pid
    try:
        yield driver
    finally:
        driver.quit()
        try:
            os.kill(pid, signal.SIGKILL)  # chromedriver, should quit() have left it
        except ProcessLookupError:
            pass


WATCH_IMAGES = """
window.__imageChanges = [];
new MutationObserver(ms => { for (const m of ms) window.__imageChanges.push(performance.now()); })
  .observe(document.body, {subtree: true, attributes: true, attributeFilter: ['src']});
"""


def kernel_state(url, token, notebook) -> str | None:
    """The execution state of the kernel of `notebook`'s session, from the server's REST API (None: no session
    yet). JupyterLab may have started that kernel before the page asked (a restored workspace)."""
    with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=5) as r:
        states = [s["kernel"]["execution_state"] for s in json.load(r)
                  if s.get("path", "").endswith(notebook) and s.get("kernel")]
    return states[0] if states else None


def run_all(driver, url, token, notebook, script=None):
    """Open the notebook, wait for its kernel, run every cell and wait until all have run; `script`: JavaScript
    run in the page just before (to watch what the cells do while they run)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(f"{url}/lab/tree/{notebook}?token={token}")
    wait = WebDriverWait(driver, TIMEOUT)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"))
    wait.until(lambda d: kernel_state(url, token, notebook) == "idle",  # its kernel started, and idles
               message=f"{notebook}: its kernel did not become idle in {TIMEOUT} s")
    time.sleep(2)  # the page connects to it
    if script:
        driver.execute_script(script)
    from selenium.common.exceptions import TimeoutException

    def started(d):  # a cell queued, running or run: the click reached the notebook
        return kernel_state(url, token, notebook) == "busy" or any(
            p.text.strip() for p in d.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputPrompt"))
    for attempt in range(3):  # a click on a page still settling can be lost (seen once in 3 CI runs): click again
        menu = next(e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel") if e.text == "Run")
        menu.click()
        item = WebDriverWait(driver, 10).until(lambda d: next(
            (e for e in d.find_elements(By.CSS_SELECTOR, ".lm-Menu-itemLabel") if e.text == "Run All Cells"), None))
        item.click()
        try:
            WebDriverWait(driver, 30, poll_frequency=0.5).until(started)
            break
        except TimeoutException:
            if attempt == 2:
                raise
            from selenium.webdriver.common.keys import Keys
            driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)  # a menu left open closes first

    since = [None]

    def idle_for_3_s(d):  # the kernel, asked through the server's REST API, and every prompt numbered
        state = kernel_state(url, token, notebook)
        prompts = [p.text for p in d.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputPrompt") if p.text.strip()]
        done = state == "idle" and prompts and all(
            any(c.isdigit() for c in p) and "*" not in p for p in prompts)
        since[0] = (since[0] or time.time()) if done else None
        last[:] = [state, prompts]
        return done and time.time() - since[0] >= 3
    last = []
    WebDriverWait(driver, TIMEOUT, poll_frequency=1).until(
        idle_for_3_s, message=f"{notebook} did not finish in {TIMEOUT} s (kernel state, prompts: {last})")


def check_outputs(driver):
    from selenium.webdriver.common.by import By
    text = driver.find_element(By.CSS_SELECTOR, ".jp-Notebook").text
    assert "Error displaying widget" not in text and "HBox(" not in text and "VBox(" not in text, text[-2000:]
    errors = driver.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.stderr'], "
                                                   ".jp-OutputArea-output[data-mime-type*='error']")
    assert not errors, [e.text[:300] for e in errors]
    assert driver.find_elements(By.CSS_SELECTOR, ".widget-slider"), "no slider widget rendered"
    logs = driver.get_log("browser")
    console = [e for e in logs if e["level"] == "SEVERE"]
    assert not console, console
    missing = [e["message"][:300] for e in logs if "not found" in e["message"].lower()]  # any level
    assert not missing, missing  # e.g. "widget model not found": a widget closed before the page showed it


def screenshot(driver, name):
    """Save the browser's window as figures/NAME.png (the README shows them), scrolled to the top of the cell whose
    output holds the (last) widget image: its code, then the widget."""
    from selenium.webdriver.common.by import By
    driver.execute_script("arguments[0].closest('.jp-Cell').scrollIntoView({block: 'start'});",
                          driver.find_elements(By.CSS_SELECTOR, ".widget-image")[-1])
    time.sleep(0.5)
    assert driver.save_screenshot(str(ROOT / "figures" / f"{name}.png")), name


def picture(driver):
    """The widget image's pixels, as PNG bytes of a screenshot of it."""
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, ".widget-image")[-1].screenshot_as_png


def change(driver, label, value, kind="readout"):
    """Set a widget by its description: a slider's editable readout, a text box, or a dropdown; returns the
    latency (ms) from the change to the new picture, from in-page events."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
    widget = next(w for w in driver.find_elements(By.CSS_SELECTOR, ".widget-inline-hbox")
                  if w.find_elements(By.CSS_SELECTOR, ".widget-label")
                  and w.find_element(By.CSS_SELECTOR, ".widget-label").text.strip() == label)
    before = picture(driver)
    driver.execute_script(WATCH_IMAGES)
    t0 = driver.execute_script("return performance.now();")
    if kind == "select":
        Select(widget.find_element(By.TAG_NAME, "select")).select_by_visible_text(value)
    elif kind == "text":
        box = widget.find_element(By.TAG_NAME, "input")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(str(value), Keys.ENTER)
    else:
        readout = widget.find_element(By.CSS_SELECTOR, ".widget-readout")
        readout.click()
        readout.send_keys(Keys.CONTROL, "a")
        readout.send_keys(str(value), Keys.ENTER)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return window.__imageChanges.length") > 0
                                    and picture(d) != before)
    return driver.execute_script("return window.__imageChanges[window.__imageChanges.length - 1];") - t0


def test_explorer_in_a_real_browser(lab, browser, capsys):
    url, token = lab
    run_all(browser, url, token, "01_operators.ipynb")
    check_outputs(browser)
    screenshot(browser, "screenshot-explorer")
    latency = {"param": change(browser, "param r", 2.5), "operator": change(browser, "operator", "add", "select"),
               "layer": change(browser, "layer", 3)}
    check_outputs(browser)
    with capsys.disabled():  # shown in CI's log even when the test passes
        ms = json.dumps({k: round(v) for k, v in latency.items()})
        print(f"\nexplorer slider-to-image latency (ms, in-page): {ms}")


def test_figure_notebook_slider_in_a_real_browser(lab, browser, capsys):
    url, token = lab
    run_all(browser, url, token, "03_figure2_rotation_sweep.ipynb")
    check_outputs(browser)
    ms = change(browser, "theta (rad)", 3.0)
    check_outputs(browser)
    with capsys.disabled():
        print(f"\nfigure 2 slider-to-image latency: {ms:.0f} ms (in-page)")


WATCH_LIVE = """
window.__liveFrames = new Set();
new MutationObserver(ms => { for (const m of ms)
    if (m.target.classList.contains('widget-image') && m.target.src) window.__liveFrames.add(m.target.src); })
  .observe(document.body, {subtree: true, attributes: true, attributeFilter: ['src']});
"""


def live_frames(driver) -> int:
    """Distinct pictures the live image has shown since WATCH_LIVE: each new value the kernel sends becomes a new
    blob URL, and ipywidgets sends a value only when its bytes differ from the last."""
    return driver.execute_script("return window.__liveFrames.size;")


def readout(driver, pattern):
    """The number in the first widget label matching `pattern` (a regex with one group), or None."""
    import re
    from selenium.webdriver.common.by import By
    for label in driver.find_elements(By.CSS_SELECTOR, ".widget-label"):
        m = re.search(pattern, label.text)
        if m:
            return float(m.group(1))
    return None


def test_live_view_in_a_real_browser(lab, browser, capsys):
    """Notebook 08: the cell that plays a few seconds of the piano updates the live image in place (at least 10
    new pictures) and the fps readout; then the start button plays a session in the background, changing the
    picture again, the prompt box and a range slider change the running session (its recording says so), and
    the stop button ends it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from bendlab.session import read_session
    url, token = lab
    t0 = time.time()
    run_all(browser, url, token, "08_live.ipynb", script=WATCH_LIVE)
    check_outputs(browser)
    played, fps = live_frames(browser), readout(browser, r"([\d.]+) fps")
    assert played >= 10, f"the live image changed {played} times while the piano played"
    assert fps is not None and fps > 0, f"fps readout {fps}"
    ran = time.time() - t0

    def button(text):
        return next(b for b in browser.find_elements(By.CSS_SELECTOR, ".widget-toggle-button") if b.text == text)

    def status(d):
        return next((e.text for e in d.find_elements(By.CSS_SELECTOR, ".widget-label")
                     if e.text.startswith(("playing", "stopped"))), "")
    button("start").click()
    WebDriverWait(browser, 60).until(lambda d: live_frames(d) >= played + 10,
                                     message="the start button did not bring new pictures")
    screenshot(browser, "screenshot-live")  # while it plays
    change(browser, "prompt", "a red apple", "text")  # while it plays (the piano lasts 9 s)
    WebDriverWait(browser, 60).until(  # on screen once its first steps are computed (on a second pipeline)
        lambda d: any("showing 'a red apple'" in e.text for e in d.find_elements(By.CSS_SELECTOR, ".widget-label")),
        message="the new prompt never reached the screen")
    change(browser, "mapping 1: high", 1.0)
    assert status(browser).startswith("playing"), status(browser)
    button("stop").click()
    WebDriverWait(browser, 30).until(  # the session closed: the button reads "start" again, the status says why
        lambda d: any(b.text == "start" for b in d.find_elements(By.CSS_SELECTOR, ".widget-toggle-button"))
        and status(d).startswith("stopped: you stopped it"), message="the stop button did not stop the session")
    check_outputs(browser)
    session = read_session(status(browser).split("recorded in ")[1])
    assert session.meta["prompts"] == ["3D mesh geometry", "a red apple"] and session.prompt[-1] == 1
    assert session.highs[0][0] == pytest.approx(3.14159, abs=1e-4)  # the notebook's HIGH, then the slider's
    assert session.highs[0][-1] == pytest.approx(1.0, abs=0.016)  # 1.0 on the slider's step (pi/200)
    with capsys.disabled():
        print(f"\nlive view: {played} pictures while the cell played ({fps:g} fps readout), "
              f"{live_frames(browser) - played} more from the start button ({session.rows} frames recorded); "
              f"notebook run {ran:.0f} s")


@pytest.fixture(scope="module")
def site():
    """site/ as `make docs` built it, served on 127.0.0.1 by `python -m http.server`; skips where it was never built,
    fails where it is older than a page or notebook it is built from (make docs)."""
    pytest.importorskip("selenium")
    index = SITE / "index.html"
    if not index.is_file():
        pytest.skip("site/ has not been built: `make docs` builds it (`make test` does, before the slow tests)")
    sources = [ROOT / "mkdocs.yml", ROOT / "figures" / "README.md", *sorted((ROOT / "docs").glob("*.md")),
               *sorted((ROOT / "notebooks" / "executed").glob("*.ipynb"))]
    stale = [str(p.relative_to(ROOT)) for p in sources if p.stat().st_mtime > index.stat().st_mtime]
    assert not stale, f"site/ is older than {', '.join(stale)}: make docs"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(SITE)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/index.html", server, 30, "python -m http.server")
        yield url
    finally:
        server.terminate()
        server.wait(10)


def open_page(driver, url, heading):
    """Open a page of the site; assert its first heading holds `heading` and it shows at least one picture that loaded
    (its pixels decoded). Returns the URLs the page fetched (the Resource Timing entries)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    h1 = driver.find_element(By.CSS_SELECTOR, "article h1").text
    assert heading in h1, (url, h1)
    shown = driver.execute_script("return [...document.querySelectorAll('article img')]"
                                  ".filter(i => i.complete && i.naturalWidth > 0).length;")
    assert shown >= 1, f"{url}: no picture shown"
    return driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")


def test_docs_site_in_a_real_browser(site, browser):
    """The front page (its heading and the Figure 1 picture) and a notebook page (the executed notebook 02: its
    title and its figure) render; the browser's console has no error (a script or picture that failed to load
    included) and every request went to the local server."""
    fetched = open_page(browser, f"{site}/index.html", "bendlab")
    assert any(u.endswith("figures/fig1-pointwise.png") for u in fetched), fetched
    fetched += open_page(browser, f"{site}/notebooks/02_figure1_pointwise.html", "Figure 1")
    outside = [u for u in fetched if not u.startswith((site, "data:", "blob:"))]
    assert not outside, f"fetched from outside the site: {outside}"
    console = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not console, console
