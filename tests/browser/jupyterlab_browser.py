"""The notebooks in a real JupyterLab, driven by headless Chromium through Playwright.

Run by ``make test-browser`` (``pytest tests/browser/jupyterlab_browser.py``); the file name does
not match ``test_*.py`` so that ``make test`` does not collect it. What it checks:

- every notebook executed at smoke scale by the runner (``helpers.run``) opens in JupyterLab
  with no error dialog and no browser console error; its images load and the LaTeX of its
  markdown renders (MathJax);
- notebook 00 runs live from the UI at smoke scale (Run All on a copy whose parameters cell
  says ``SMOKE = True``): every cell ends with an execution count, no error output, the kernel
  idle; then the latent explorer's ``z1`` slider is dragged and the decoded image must change,
  and the ``angle`` slider is dragged and the image must change again (it turns);
- the latent-map explorer of ``helpers.widgets`` (used by notebooks 01, 02 and 04) is built on
  synthetic data in a small generated notebook, run from the UI, and its ``x`` slider dragged:
  the panels and the list of nearest patches must change.

One screenshot per notebook lands in ``runs/browser/``. The Jupyter server (127.0.0.1, a free
port, a generated token) and the browser are stopped at the end whatever happens, and the test
fails if any process started under its temporary folder is still alive.

Environment:
    CHROMIUM_PATH: the browser to drive (default ``/usr/bin/chromium``, Debian's package;
        Playwright's own browser downloads are never used).
    BROWSER_TEST_EXECUTED: a folder of notebooks already executed by ``helpers.run --smoke``
        to reuse (e.g. the output of ``make test``'s smoke run); by default they are executed
        afresh into ``runs/browser/executed``.
    BROWSER_TEST_BREAK_CALLBACKS=1: the explorers' slider callbacks are disconnected in the
        live copies, to show that the test then fails.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
LIVE = "00_invariant_vae_basics"  # run from the UI; the others are opened executed
OUT = ROOT / "runs" / "browser"
BIN = Path(sys.executable).parent  # the environment running the tests (the suite's .venv)
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
BREAK = os.environ.get("BROWSER_TEST_BREAK_CALLBACKS") == "1"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LIVE_TIMEOUT_S = 420  # notebook 00 at smoke scale takes about a minute on 2 cores
WIDGET_TIMEOUT_S = 30  # a slider move to a redrawn image

# Browser console errors that are not the notebooks' fault. Each pattern (on the message text)
# with why it is benign; everything else of type "error" fails the test.
BENIGN_CONSOLE = [
    # The first markdown cell of every notebook shows the Colab and Binder badges, images on
    # colab.research.google.com and mybinder.org. Tests never use the network, so the test
    # aborts every request that is not to its own server; only those aborted URLs are ignored
    # (matched on the message's location, see `console_errors`).
]


# -- processes -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Terminate a process started with ``start_new_session=True`` and all of its group
    (the Jupyter server and its kernels), killing what is left after ``grace_s``."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:  # kernels in the group outlive a server that exited on its own
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(grace_s)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (a unique temporary path)."""
    found = subprocess.run(["pgrep", "-af", re.escape(text)], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


# -- notebooks -------------------------------------------------------------------------------
def image_outputs(nb) -> int:
    """Top-level image outputs of an executed notebook (those inside widgets not counted)."""
    kinds = ("image/png", "image/jpeg", "image/svg+xml")
    return sum(1 for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
               if out.get("output_type") in ("display_data", "execute_result")
               and any(k in out.get("data", {}) for k in kinds))


MATH = re.compile(r"\$[^$\n]+\$|\$\$.+?\$\$", re.S)


def markdown_math_cells(nb) -> list[int]:
    """Positions (from 0) of the markdown cells that hold ``$...$`` or ``$$...$$`` maths."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
            and MATH.search(re.sub(r"`[^`]*`", "", c.source))]


def live_copy(src: Path, dst: Path) -> None:
    """Notebook 00 with ``SMOKE = True`` in its parameters cell (and, when BREAK, the latent
    explorer's slider callbacks disconnected)."""
    nb = nbformat.read(src, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{src.name}: expected one cell tagged parameters"
    new, n = re.subn(r"^SMOKE = False\b", "SMOKE = True", params[0].source, flags=re.M)
    assert n == 1, f"{src.name}: the parameters cell has no line `SMOKE = False`"
    params[0].source = new
    if BREAK:
        cell = next(c for c in nb.cells if c.cell_type == "code"
                    and c.source.strip() == "latent_explorer(rvae)")
        cell.source = ("_ex = latent_explorer(rvae)\n"
                       "for _c in _ex.children[0].children[0].children:  # broken on purpose\n"
                       "    _c.unobserve_all('value')\n_ex")
    nbformat.write(nb, dst)


EXPLORER_DEMO = '''\
import numpy as np

from helpers.widgets import latent_map_explorer

# four clusters in the latent plane; cluster c sits on frame c as a bright disc
rng = np.random.default_rng(0)
centres = np.array([[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]])
cluster = np.repeat(np.arange(4), 25)
z = centres[cluster] + 0.3 * rng.standard_normal((100, 2))
positions = rng.uniform(12, 52, (100, 2))
rr, cc = np.mgrid[:64, :64]
frames = np.zeros((4, 64, 64))
for c, (r, col) in zip(cluster, positions):
    frames[c] += np.exp(-((rr - r) ** 2 + (cc - col) ** 2) / (2 * (1 + c) ** 2))
patches = np.stack([frames[c, int(r) - 6:int(r) + 6, int(col) - 6:int(col) + 6]
                    for c, (r, col) in zip(cluster, positions)])
ex = latent_map_explorer(z, patches, frames, positions, cluster, n_neighbours=6)
'''


def demo_notebook(dst: Path) -> None:
    """A small notebook that builds the latent-map explorer on synthetic data."""
    show = ("ex.update = lambda: None  # broken on purpose\nex" if BREAK else "ex")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# The latent-map explorer on synthetic clusters"),
        nbformat.v4.new_code_cell(EXPLORER_DEMO),
        nbformat.v4.new_code_cell(show),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}})
    nbformat.write(nb, dst)


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def executed() -> Path:
    """Notebooks executed at smoke scale by the runner (all but the live one)."""
    given = os.environ.get("BROWSER_TEST_EXECUTED")
    names = [p.stem for p in NOTEBOOKS if p.stem != LIVE]
    if given:
        out = Path(given)
    else:
        out = OUT / "executed"
        shutil.rmtree(out, ignore_errors=True)  # never reuse a stale run silently
        cache = Path(tempfile.mkdtemp(prefix="browser-data-"))
        env = dict(os.environ, MICROSCOPY_OFFLINE="1", MICROSCOPY_DATA_DIR=str(cache))
        try:
            subprocess.run([sys.executable, "-m", "helpers.run", "--smoke", "--jobs", "2",
                            "--out", str(out), *names], cwd=ROOT, env=env, check=False)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    missing = [n for n in names if not (out / f"{n}.ipynb").is_file()]
    assert not missing, f"no executed notebook in {out} for {missing}"
    summary = out / "summary.json"
    if summary.is_file():
        failed = {r["name"]: r["error"] for r in json.loads(summary.read_text())["notebooks"]
                  if r["status"] != "ok" and r["name"] in names}
        assert not failed, f"the smoke run failed: {failed}"
    return out


def prepare(tmp: Path, executed: Path) -> tuple[Path, dict]:
    """Fill ``tmp``: the server's root (the executed notebooks, the live copies), its
    settings and config; returns the root and the server's environment."""
    root = tmp / "root"
    (root / "executed").mkdir(parents=True)
    (root / "live").mkdir()
    for p in NOTEBOOKS:
        if p.stem != LIVE:
            shutil.copy(executed / f"{p.stem}.ipynb", root / "executed" / p.name)
    live_copy(ROOT / "notebooks" / f"{LIVE}.ipynb", root / "live" / f"{LIVE}.ipynb")
    demo_notebook(root / "live" / "explorer_demo.ipynb")
    settings = tmp / "settings"
    for plugin, values in {
        # every cell in the DOM (no virtual scrolling), so all outputs can be checked
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        # no news or update checks (they would try the network)
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                         "checkForUpdates": False},
    }.items():
        f = settings / f"{plugin}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(values))
    # no news feed, update check or extension manager: each would try the network
    (tmp / "config").mkdir()
    (tmp / "config" / "jupyter_server_config.json").write_text(json.dumps({"LabApp": {
        "news_url": None, "extension_manager": "readonly",
        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"),
               JUPYTER_DATA_DIR=str(tmp / "data"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), IPYTHONDIR=str(tmp / "ipython"),
               MICROSCOPY_OFFLINE="1", MICROSCOPY_DATA_DIR=str(tmp / "data_cache"))
    env.pop("MPLBACKEND", None)  # the kernels keep the inline backend
    return root, env


def wait_for_server(proc: subprocess.Popen, url: str, log: Path, timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the Jupyter server exited at start:\n" + log.read_text()[-3000:])
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Jupyter server did not answer within {timeout_s} s "
                                   f"(log: {log.read_text()[-2000:]})") from None
            time.sleep(0.5)


@pytest.fixture(scope="session")
def server(executed):
    """A JupyterLab on 127.0.0.1 (free port, generated token) over a temporary root holding
    the executed notebooks and the live copies; stopped, and checked gone, at the end."""
    tmp = Path(tempfile.mkdtemp(prefix="jupyterlab-browser-"))
    proc = None
    log_path = tmp / "server.log"
    try:
        root, env = prepare(tmp, executed)
        token, port = secrets.token_hex(24), free_port()
        cmd = [str(BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        wait_for_server(proc, f"{base}/api/status?token={token}", log_path)
        yield dict(base=base, token=token, root=root, tmp=tmp)
    finally:
        if proc is not None:
            stop_group(proc)
        left = processes_mentioning(str(tmp))
        for line in left:  # make sure, then report
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        OUT.mkdir(parents=True, exist_ok=True)
        if log_path.is_file():
            shutil.copy(log_path, OUT / "server.log")
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"processes still running after the browser test: {left}"


@pytest.fixture(scope="session")
def browser(server):
    """Chromium (CHROMIUM_PATH or Debian's) through Playwright, closed at the end."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no browser at {CHROMIUM}: install Debian's chromium (make test-browser "
                    "does) or set CHROMIUM_PATH")
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    profile = server["tmp"] / "chromium-profile"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()


class Page:
    """One JupyterLab tab on one notebook, with its console errors and aborted requests."""

    def __init__(self, context, server, path: str, name: str):
        self.server, self.name = server, name
        self.page = context.new_page()
        self.errors: list[str] = []
        self.blocked: set[str] = set()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.route("**/*", self._route)
        url = (f"{server['base']}/lab/workspaces/{re.sub(r'[^a-z0-9]', '', name.lower())}"
               f"/tree/{path}?token={server['token']}")
        self.page.goto(url)
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=90_000)

    def _route(self, route):
        if route.request.url.startswith(self.server["base"]) or route.request.url.startswith(
                ("data:", "blob:")):
            route.continue_()
        else:  # tests never use the network
            self.blocked.add(route.request.url)
            route.abort()

    def _console(self, msg):
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        if where in self.blocked and "Failed to load resource" in msg.text:
            return  # a request this test aborted (see BENIGN_CONSOLE)
        if any(re.search(p, msg.text) for p, _why in BENIGN_CONSOLE):
            return
        self.errors.append(f"console error: {msg.text} (at {where})")

    def fail(self, what: str, element=None):
        """Screenshot (the offending element in view) and fail naming the notebook."""
        if element is not None:
            try:
                element.first.scroll_into_view_if_needed(timeout=5000)
            except Exception:  # noqa: BLE001 (the screenshot is taken wherever the page is)
                pass
        self.shot()
        pytest.fail(f"{self.name}: {what} (screenshot runs/browser/{self.name}.png)")

    def shot(self):
        self.page.screenshot(path=str(OUT / f"{self.name}.png"))

    def shot_first_figure(self):
        """The screenshot with the notebook scrolled to its first figure."""
        figure = self.page.locator(".jp-NotebookPanel .jp-RenderedImage img")
        if figure.count():
            figure.first.scroll_into_view_if_needed()
        self.shot()

    def close(self):
        """Shut the notebook's kernel down (once it has started: a shutdown during the start
        makes the server log errors), then close the tab."""
        try:
            self.page.wait_for_function("""() => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const k = w && w.sessionContext && w.sessionContext.session
                    && w.sessionContext.session.kernel;
                return !k || ['idle', 'busy', 'dead'].includes(k.status)
                    && k.connectionStatus === 'connected'; }""", timeout=30_000)
            self.page.evaluate("""async () => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                if (w && w.sessionContext) { await w.sessionContext.shutdown(); } }""")
        finally:
            self.page.close()

    # -- checks common to every notebook ---------------------------------------------------
    def wait_rendered(self, nb, timeout_s: float = 60.0) -> dict:
        """Wait until every cell is in the DOM, images have loaded and MathJax has typeset
        the maths; returns what the page shows."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.page.evaluate("""() => {
                const cells = [...document.querySelectorAll(
                    '.jp-NotebookPanel .jp-Notebook .jp-Cell')];
                const imgs = [...document.querySelectorAll(
                    '.jp-NotebookPanel .jp-OutputArea-output img')]
                    .filter(i => !i.closest('.jupyter-widgets'));
                return {
                    n_cells: cells.length,
                    math: cells.map(c => c.querySelectorAll('mjx-container').length),
                    math_errors: document.querySelectorAll('.jp-NotebookPanel mjx-merror').length,
                    images: imgs.map(i => [i.complete, i.naturalWidth]),
                    dialogs: document.querySelectorAll('.jp-Dialog').length,
                };
            }""")
            math_cells = markdown_math_cells(nb)
            done = (state["n_cells"] == len(nb.cells)
                    and all(ok for ok, _ in state["images"])
                    and all(state["math"][i] > 0 for i in math_cells if i < state["n_cells"]))
            if done or time.monotonic() > deadline:
                return state
            time.sleep(0.5)

    def check_rendered(self, nb, n_images: int):
        state = self.wait_rendered(nb)
        if state["dialogs"]:
            self.fail(f"{state['dialogs']} dialog(s) open: "
                      + self.page.locator(".jp-Dialog").first.inner_text()[:500],
                      self.page.locator(".jp-Dialog").first)
        if state["n_cells"] != len(nb.cells):
            self.fail(f"{state['n_cells']} cells shown of {len(nb.cells)}")
        broken = [i for i, (_, width) in enumerate(state["images"]) if width == 0]
        if len(state["images"]) != n_images or broken:
            self.fail(f"{len(state['images'])} output images shown for {n_images} in the "
                      f"notebook; images {broken} did not load (naturalWidth 0)")
        no_math = [i + 1 for i in markdown_math_cells(nb) if state["math"][i] == 0]
        if no_math:
            cell = self.page.locator(".jp-NotebookPanel .jp-Cell").nth(no_math[0] - 1)
            self.fail(f"the LaTeX of markdown cell(s) {no_math} did not render (no MathJax "
                      "output)", cell)
        if state["math_errors"]:
            self.fail(f"{state['math_errors']} MathJax error(s) in the maths",
                      self.page.locator("mjx-merror").first)
        if self.errors:
            self.fail("browser console errors:\n  " + "\n  ".join(self.errors[:20]))

    # -- live runs ---------------------------------------------------------------------------
    def kernel_state(self) -> dict:
        return self.page.evaluate("""() => {
            const w = window.jupyterapp.shell.currentWidget;
            const k = w && w.sessionContext.session && w.sessionContext.session.kernel;
            const cells = [];
            const model = w.content.model;
            for (let i = 0; i < model.cells.length; i++) {
                const c = model.cells.get(i);
                if (c.type !== 'code') continue;
                cells.push({index: i, count: c.executionCount,
                            errors: c.outputs.toJSON().filter(o => o.output_type === 'error')
                                .map(o => o.ename + ': ' + o.evalue)});
            }
            const running = [...document.querySelectorAll('.jp-InputPrompt')]
                .filter(p => p.textContent.includes('*')).length;
            return {status: k ? k.status : 'none', cells, running};
        }""")

    def run_all(self, timeout_s: float):
        """Run All from the Run menu, wait until the kernel is idle with no cell pending, and
        fail on any error output or cell left unexecuted."""
        deadline = time.monotonic() + 120
        while self.kernel_state()["status"] != "idle":
            if time.monotonic() > deadline:
                self.fail("the kernel did not start (not idle within 120 s)")
            time.sleep(0.5)
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        deadline = time.monotonic() + timeout_s
        started = False
        idle_polls = 0
        while True:
            state = self.kernel_state()
            started = started or state["running"] > 0 or any(c["count"] for c in state["cells"])
            idle = state["status"] == "idle" and state["running"] == 0
            idle_polls = idle_polls + 1 if (started and idle) else 0
            if idle_polls >= 3:
                break
            if time.monotonic() > deadline:
                self.fail(f"Run All did not finish within {timeout_s:.0f} s "
                          f"(kernel {state['status']})")
            time.sleep(1.0)
        errors = [f"cell {c['index'] + 1}: {e}" for c in state["cells"] for e in c["errors"]]
        if errors:
            self.fail("error output after Run All: " + "; ".join(errors),
                      self.page.locator(".jp-OutputArea-output[data-mime-type="
                                        "'application/vnd.jupyter.stderr']").first)
        not_run = [c["index"] + 1 for c in state["cells"] if not c["count"]]
        if not_run:
            self.fail(f"cells {not_run} were not executed by Run All")

    def drag(self, slider, dx: float):
        """Drag a slider's handle by ``dx`` pixels, as a user would."""
        handle = slider.locator(".noUi-handle")
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        self.page.mouse.move(x + dx, y, steps=10)
        self.page.mouse.up()

    def wait_change(self, read, before, timeout_s: float = WIDGET_TIMEOUT_S):
        """Poll ``read()`` until it differs from ``before`` (and is not empty)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = read()
            if now and now != before:
                return now
            time.sleep(0.3)
        return None


def slider(scope, label: str):
    """The ipywidgets slider whose description is ``label``, inside ``scope`` (a Playwright
    page or locator)."""
    page = getattr(scope, "page", scope)
    return scope.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$")))


# -- tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [p.stem for p in NOTEBOOKS if p.stem != LIVE])
def test_executed_notebook_opens_clean(browser, server, executed, name):
    nb = nbformat.read(executed / f"{name}.ipynb", as_version=4)
    page = Page(browser, server, f"executed/{name}.ipynb", name)
    try:
        page.check_rendered(nb, image_outputs(nb))
        page.shot_first_figure()
    finally:
        page.close()


def test_notebook_00_runs_live_and_its_explorer_follows_the_sliders(browser, server):
    nb = nbformat.read(server["root"] / "live" / f"{LIVE}.ipynb", as_version=4)
    page = Page(browser, server, f"live/{LIVE}.ipynb", LIVE)
    try:
        page.run_all(LIVE_TIMEOUT_S)
        # after the run: the same rendering checks as the executed notebooks
        results = server["root"] / "live" / "results" / f"{LIVE}.json"
        if not results.is_file():
            page.fail(f"Run All finished but wrote no results ({results.name})")
        # the figures of the run (the explorer's image, inside a widget, is checked below)
        executed_images = page.page.evaluate("""() => [...document.querySelectorAll(
            '.jp-NotebookPanel .jp-OutputArea-output img')]
            .filter(i => !i.closest('.jupyter-widgets')).length""")
        if not executed_images:
            page.fail("no figure shown after Run All")
        explorer = page.page.locator(".jp-CodeCell").filter(has=slider(page.page, "z1"))
        image = explorer.locator(".widget-output img")
        z1, angle = slider(explorer, "z1"), slider(explorer, "angle (deg)")
        if not z1.count() or not angle.count():
            page.fail("the latent explorer's z1 and angle sliders are not shown")

        def src():
            return image.first.get_attribute("src") if image.count() else None

        first = page.wait_change(src, None)
        if first is None:
            page.fail("the latent explorer shows no decoded image", explorer)
        readout = z1.locator(".widget-readout").inner_text()
        page.drag(z1, 80)
        after_z1 = page.wait_change(src, first)
        moved = z1.locator(".widget-readout").inner_text()
        if moved == readout:
            page.fail(f"dragging the z1 slider did not move it (readout {readout})", z1)
        if after_z1 is None:
            page.fail(f"the z1 slider moved ({readout} -> {moved}) but the decoded image did "
                      f"not change within {WIDGET_TIMEOUT_S} s: the explorer's callback does "
                      "not redraw", explorer)
        page.drag(angle, 60)
        after_angle = page.wait_change(src, after_z1)
        if after_angle is None:
            page.fail(f"the angle slider moved (readout "
                      f"{angle.locator('.widget-readout').inner_text()}) but the decoded "
                      f"image did not turn within {WIDGET_TIMEOUT_S} s", explorer)
        page.check_rendered(nb, executed_images)
        explorer.scroll_into_view_if_needed()
        page.shot()
    finally:
        page.close()


def test_latent_map_explorer_follows_its_slider(browser, server):
    name = "explorer_demo"
    nb = nbformat.read(server["root"] / "live" / f"{name}.ipynb", as_version=4)
    page = Page(browser, server, f"live/{name}.ipynb", name)
    try:
        page.run_all(120)
        cell = page.page.locator(".jp-CodeCell").filter(has=slider(page.page, "x"))
        image = cell.locator("img.widget-image")
        summary = cell.locator(".widget-html-content")
        if not image.count():
            page.fail("the latent-map explorer shows no image")
        loaded = image.first.evaluate("i => i.complete && i.naturalWidth > 0")
        if not loaded:
            page.fail("the latent-map explorer's image did not load", cell)
        before_src, before_text = image.first.get_attribute("src"), summary.inner_text()
        page.drag(slider(cell, "x"), 150)
        after = page.wait_change(summary.inner_text, before_text)
        if after is None:
            page.fail("the x slider was dragged but the nearest patches did not change "
                      f"within {WIDGET_TIMEOUT_S} s: the explorer's callback does not update",
                      cell)
        if page.wait_change(lambda: image.first.get_attribute("src"), before_src) is None:
            page.fail("the nearest patches changed but the explorer's image did not", cell)
        if not image.first.evaluate("i => i.complete && i.naturalWidth > 0"):
            page.fail("the explorer's redrawn image did not load", cell)
        page.check_rendered(nb, 0)
        page.shot()
    finally:
        page.close()
