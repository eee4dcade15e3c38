"""The papermill runner: statuses, failing cell, summaries, headless widgets/tqdm,
and the regression comparison against a baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from helpers import run

ROOT = Path(__file__).resolve().parent.parent


def make_notebook(path, body_cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell(
        'SMOKE = False\nSEED = 0\nDATA_SOURCE = "simulated"\nRESULTS_PATH = ""\nDEVICE = "cpu"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), params]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in body_cells]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Two notebooks, one good (tqdm.auto + an ipywidgets slider), one failing, run 2 at once."""
    root = tmp_path_factory.mktemp("nbs")
    make_notebook(root / "01_good.ipynb", [
        "from tqdm.auto import tqdm\nimport ipywidgets as w\n"
        "total = sum(i for i in tqdm(range(1000)))\nw.IntSlider(value=3)",
        "import matplotlib.pyplot as plt\nimport numpy as np\n"
        "plt.imshow(np.random.default_rng(0).normal(size=(300, 300)))\nplt.show()\n"
        "plt.plot([0, 1], [0, 1])\nplt.show()",
        "from helpers.run import save_results\n"
        "save_results({'total': total, 'smoke': SMOKE, 'share': 0.1249, 'runtime_s': 0.1}, "
        "RESULTS_PATH)",
    ])
    typed = nbformat.read(root / "01_good.ipynb", as_version=4)  # a result typed into prose
    typed.cells.append(nbformat.v4.new_markdown_cell("The share is 0.125."))
    nbformat.write(typed, root / "01_good.ipynb")
    make_notebook(root / "02_bad.ipynb", ["x = 1", "raise RuntimeError('boom in cell')"])
    out = root / "out"
    paths = run.find_notebooks(None, notebook_dir=root)
    runs = run.run_notebooks(paths, out, jobs=2, smoke=True, log=lambda *_: None)
    run.write_summary(runs, out, "smoke")
    return root, out, runs


def test_statuses_results_and_failing_cell(executed):
    _, _, runs = executed
    good, bad = runs
    assert (good.name, good.status) == ("01_good", "ok")
    assert good.results == {"total": 499500, "smoke": True, "share": 0.1249, "runtime_s": 0.1}
    assert bad.status == "failed"
    # 4th cell of the source notebook (papermill's injected cell is not counted)
    assert bad.failed_cell == 4 and "boom in cell" in bad.error
    assert bad.failed_source == "raise RuntimeError('boom in cell')"


def test_saved_image_figures_are_jpeg_and_line_plots_png(executed):
    _, out, _ = executed
    saved = nbformat.read(out / "01_good.ipynb", as_version=4)
    kinds = [sorted(k for k in o.get("data", {}) if k.startswith("image/"))
             for cell in saved.cells for o in cell.get("outputs", [])]
    assert [k for k in kinds if k] == [["image/jpeg"], ["image/png"]]


def test_summary_files(executed):
    _, out, _ = executed
    summary = json.loads((out / "summary.json").read_text())
    assert [n["name"] for n in summary["notebooks"]] == ["01_good", "02_bad"]
    assert [n["status"] for n in summary["notebooks"]] == ["ok", "failed"]
    assert summary["all_ok"] is False
    assert all(n["wall_s"] > 0 for n in summary["notebooks"])
    md = (out / "SUMMARY.md").read_text()
    assert "boom in cell" in md and "cell 4" in md and "| total | 499500 |" in md
    assert "Results typed into the prose" in md and "'0.125' = share" in md


def test_find_notebooks_by_prefix_and_unknown(executed):
    root, _, _ = executed
    assert [p.stem for p in run.find_notebooks(["02"], notebook_dir=root)] == ["02_bad"]
    with pytest.raises(ValueError, match="available: 01_good, 02_bad"):
        run.find_notebooks(["07"], notebook_dir=root)


def test_save_results_is_atomic_and_plain(tmp_path):
    import numpy as np

    path = run.save_results({"a": np.float32(1.5), "b": np.arange(3), "c": {"d": np.bool_(True)}},
                            tmp_path / "sub" / "r.json")
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": {"d": True}}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]
    with pytest.raises(ValueError, match="results must hold"):
        run.save_results({"x": object()}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.float32("nan")])
def test_save_results_refuses_non_finite_numbers_naming_the_key(tmp_path, bad):
    with pytest.raises(ValueError, match=r"results\['scores'\]\[1\] is (nan|inf)"):
        run.save_results({"ok": 1.0, "scores": [0.5, bad]}, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    run.save_results({"failed_quantity": None}, tmp_path / "r.json")  # None is the way
    assert json.loads((tmp_path / "r.json").read_text()) == {"failed_quantity": None}


def run_cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "helpers.run", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_a_notebook_that_wrote_results_then_failed_leaves_no_results(tmp_path):
    make_notebook(tmp_path / "01_late_failure.ipynb", [
        "from helpers.run import save_results\nsave_results({'r': 0.9}, RESULTS_PATH)",
        "raise RuntimeError('after the results')",
    ])
    out = tmp_path / "out"
    (bad,) = run.run_notebooks([tmp_path / "01_late_failure.ipynb"], out, log=lambda *_: None)
    assert bad.status == "failed" and bad.results == {}
    assert not (out / "01_late_failure.results.json").exists()
    assert (out / "01_late_failure.ipynb").is_file()  # the executed notebook, with traceback
    assert not list(out.glob(".*partial*"))


def test_kernel_start_failures_are_retried_and_recorded(tmp_path, monkeypatch):
    from helpers.run import execute

    make_notebook(tmp_path / "01_ok.ipynb", [
        "from helpers.run import save_results\nsave_results({'r': 1.0}, RESULTS_PATH)"])
    real = execute._execute_once
    failures = ["ZMQError: Address already in use (addr='tcp://127.0.0.1:5555')",
                "RuntimeError: Kernel didn't respond in 60 seconds"]

    def flaky(*args):
        if failures:
            return {"error": failures.pop(0), "failed_cell": None, "failed_source": None,
                    "kernel_start": True}
        return real(*args)

    monkeypatch.setattr(execute, "_execute_once", flaky)
    result = execute.run_notebook(tmp_path / "01_ok.ipynb", tmp_path / "out", smoke=True)
    assert (result.status, result.attempts, result.results) == ("ok", 3, {"r": 1.0})
    assert "Address already in use" in result.retried[0] and len(result.retried) == 2


def test_kernel_start_error_patterns():
    from helpers.run.execute import KERNEL_START_ERRORS

    assert KERNEL_START_ERRORS.search("zmq.error.ZMQError: Address already in use")
    assert KERNEL_START_ERRORS.search("RuntimeError: Kernel didn't respond in 60 seconds")
    assert not KERNEL_START_ERRORS.search("ValueError: image must be 2-D")


def test_bad_arguments_exit_2_with_a_clear_message():
    for args, expected in [
        (["--jobs", "0"], "--jobs: must be a whole number >= 1, got '0'"),
        (["00", "--param", "N_EPOCHS=3"], "N_EPOCHS: not a parameter of 00_invariant_vae_basics"),
        (["00", "--param", "SEED=3"], "SEED is set by the runner's own option"),
        (["--seeds", "3-1"], "seeds take non-negative integers"),
        (["99"], "no notebook matches '99'"),
        (["--cpu-kernels", "fast"], "unknown setting(s) ['fast']"),
    ]:
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert expected in proc.stderr, (args, proc.stderr)


def test_parse_seeds():
    assert run.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert run.parse_seeds("0,2,7") == [0, 2, 7]
    assert run.parse_seeds("1-2,5,2") == [1, 2, 5]


@pytest.mark.parametrize("how, stop", [([], "SIGINT"),
                                       (["--seeds", "0-1", "--jobs", "2"], "SIGINT"),
                                       ([], "SIGTERM")],
                         ids=["in-turn", "dask-sweep", "in-turn-sigterm"])
def test_ctrl_c_marks_the_summary_interrupted_and_stops_the_notebook(tmp_path, how, stop):
    """SIGINT to the runner while a notebook runs: exit 130, the earlier `all_ok: true`
    summary replaced by one marked interrupted, unfinished notebooks marked, no process left."""
    import signal

    kernels = tmp_path / "kernels"  # each kernel of 01_slow leaves a file named by its pid
    kernels.mkdir()
    make_notebook(tmp_path / "01_slow.ipynb", [
        f"import os, time\nopen(os.path.join({str(kernels)!r}, str(os.getpid())), 'w').close()"
        "\ntime.sleep(120)"])
    make_notebook(tmp_path / "02_next.ipynb", ["x = 1"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({"all_ok": True, "notebooks": []}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.run", str(tmp_path / "01_slow.ipynb"),
         str(tmp_path / "02_next.ipynb"), "--out", str(out), *how],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not any(kernels.iterdir()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert any(kernels.iterdir()), proc.communicate()
    proc.send_signal(getattr(signal, stop))
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["all_ok"] is False
    statuses = [n["status"] for n in summary["notebooks"]]
    assert statuses[0] == "interrupted", statuses
    if not how:
        assert statuses == ["interrupted", "not run"]
    assert "INTERRUPTED" in (out / "SUMMARY.md").read_text()
    folder = out / "seed-0" if how else out
    assert not (folder / "01_slow.results.json").exists()
    assert not (folder / "01_slow.ipynb").exists() and not list(folder.glob(".*partial*"))
    pids = [int(p.name) for p in kernels.iterdir()]
    for _ in range(100):  # the kernels notice their parents are gone and exit
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            break
        time.sleep(0.1)
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert not alive, f"notebook kernels still running: {alive}"
    left = subprocess.run(["pgrep", "-f", f"helpers.run.task.*{tmp_path}"],
                          capture_output=True, text=True).stdout
    assert not left.strip(), f"task processes left running: {left}"


def test_an_unbounded_wait_picks_up_a_message_that_arrives_later():
    """The kernel client's unbounded get_msg is a loop of bounded polls (nbclient#312)."""
    import asyncio
    from queue import Empty

    import zmq
    import zmq.asyncio
    from jupyter_client.session import Session

    from helpers.run.kernel_client import POLL_S, PollingChannel

    async def scenario():
        ctx = zmq.asyncio.Context()
        receiver, sender = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        port = receiver.bind_to_random_port("tcp://127.0.0.1")
        sender.connect(f"tcp://127.0.0.1:{port}")
        session = Session()
        channel = PollingChannel(receiver, session)

        async def send_later():
            await asyncio.sleep(1.5 * POLL_S)  # after the first bounded poll has given up
            session.send(sender, "execute_reply", {"status": "ok"})

        sending = asyncio.ensure_future(send_later())
        msg = await asyncio.wait_for(channel.get_msg(timeout=None), 10)
        await sending
        with pytest.raises(Empty):
            await channel.get_msg(timeout=0.05)  # a bounded wait still times out
        receiver.close(linger=0)
        sender.close(linger=0)
        ctx.term()
        return msg

    msg = asyncio.run(scenario())
    assert msg["msg_type"] == "execute_reply" and msg["content"] == {"status": "ok"}


def test_notebooks_run_with_the_polling_kernel_client(tmp_path, monkeypatch):
    from helpers.run import execute, kernel_client

    seen = []
    original = kernel_client.PollingChannel.get_msg

    async def recording(self, timeout=None):
        seen.append(timeout)
        return await original(self, timeout)

    monkeypatch.setattr(kernel_client.PollingChannel, "get_msg", recording)
    make_notebook(tmp_path / "01_ok.ipynb", ["x = 1"])
    info = execute._execute_once(tmp_path / "01_ok.ipynb", tmp_path / "out.ipynb", {}, None)
    assert info["error"] is None and seen, "papermill did not use the polling kernel client"


def test_ctrl_c_works_where_sigint_came_in_ignored(tmp_path):
    """A runner started in the background by a non-interactive shell inherits SIGINT ignored;
    it still stops on Ctrl-C (it installs Python's handler itself)."""
    import signal

    make_notebook(tmp_path / "01_slow.ipynb", [
        f"open({str(tmp_path / 'started')!r}, 'w').close()\nimport time\ntime.sleep(120)"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.run", str(tmp_path / "01_slow.ipynb"),
         "--out", str(tmp_path / "out")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.time() + 120
    while not (tmp_path / "started").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert not list((tmp_path / "out").glob(".*partial*"))


def test_task_environment_drops_dasks_malloc_setting_only_in_a_dask_worker(monkeypatch):
    from helpers.run.schedule import Task, _in_dask_worker, task_process_environment

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # what Dask's nanny sets
    monkeypatch.setenv("MPLBACKEND", "Agg")
    task = Task(notebook="x.ipynb", out_dir="out", environment={"OMP_NUM_THREADS": 1})
    in_worker = task_process_environment(task, in_dask_worker=True)
    assert "MALLOC_TRIM_THRESHOLD_" not in in_worker and "MPLBACKEND" not in in_worker
    assert in_worker["OMP_NUM_THREADS"] == "1"
    # outside a worker the variable is the user's own: kept
    assert task_process_environment(task, in_dask_worker=False)["MALLOC_TRIM_THRESHOLD_"] == "65536"
    # a value the task itself asks for is kept
    asked = Task(notebook="x.ipynb", out_dir="out",
                 environment={"MALLOC_TRIM_THRESHOLD_": "1000000"})
    assert task_process_environment(asked, in_dask_worker=True)["MALLOC_TRIM_THRESHOLD_"] == \
        "1000000"
    assert _in_dask_worker() is False  # this test process is no Dask worker
