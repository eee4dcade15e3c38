"""The teaching edition (helpers.teach): exercise markup in the solution notebooks, the student
and instructor editions, the student notebooks stopping at their first stub, and the check
cells telling a wrong answer what is wrong.

The solution notebooks themselves (every check passing on the solutions) run at smoke scale in
tests/test_notebooks_smoke.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest

from helpers.teach import (
    MarkupError,
    build,
    instructor_notebook,
    parse_exercises,
    strip_solutions,
    student_notebook,
)

ROOT = Path(__file__).resolve().parent.parent
TEACHING = ["00_invariant_vae_basics", "01_graphene_si_dynamics", "03_batio3_phase_transition",
            "05_im2spec_spec2im", "08_divide"]
REGION = re.compile(r"^[ \t]*#+ *BEGIN SOLUTION *\n(.*?)^[ \t]*#+ *END SOLUTION *$",
                    re.MULTILINE | re.DOTALL)


def _nb(name):
    return nbformat.read(str(ROOT / "notebooks" / f"{name}.ipynb"), as_version=4)


def _exercise(name, ex_id):
    nb = _nb(name)
    ex = next(e for e in parse_exercises(nb, name) if e.id == ex_id)
    return nb, ex


def _solution_ns(name, ex_id, **given):
    """Namespace after running exercise ``ex_id``'s solution cells on ``given`` names."""
    nb, ex = _exercise(name, ex_id)
    ns = {"np": np, **given}
    for i in ex.solution_cells:
        exec(compile(nb.cells[i].source, f"{name} cell {i}", "exec"), ns)
    return ns


def _check(name, ex_id, ns):
    """Run exercise ``ex_id``'s check cells in ``ns``."""
    nb, ex = _exercise(name, ex_id)
    for i in ex.check_cells:
        exec(compile(nb.cells[i].source, f"{name} cell {i}", "exec"), ns)


def _toy(cells):
    """A notebook from (kind, source) pairs."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(s) if k == "md" else nbformat.v4.new_code_cell(s)
                for k, s in cells]
    return nb


GOOD = [
    ("md", "# Title"),
    ("md", "### Exercise 7.1: double it\n\nHint: multiply."),
    ("code", "x = 3\n\n\ndef double(v):\n    ### BEGIN SOLUTION\n    return 2 * v\n"
             "    ### END SOLUTION\n\n\ny = double(x)"),
    ("code", "# Check exercise 7.1\nassert y == 6, 'y must be twice x'"),
]


# ------------------------------------------------------------------------------------------
# markup
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TEACHING)
def test_notebook_has_three_checked_exercises(name):
    exercises = parse_exercises(_nb(name), name)  # raises on unbalanced markers
    assert len(exercises) >= 3, f"{name} has {len(exercises)} exercises, the course needs 3"
    number = int(name[:2])
    for k, ex in enumerate(exercises, 1):
        assert ex.id == f"{number}.{k}"
        assert ex.solution_cells and ex.check_cells
        assert ex.task_cell < ex.solution_cells[0] < ex.check_cells[0]


@pytest.mark.parametrize("name", TEACHING)
def test_solution_names_are_not_used_outside_their_exercise(name):
    """A student who has not solved an exercise must not break the notebook's own cells: the
    names a solution region defines are neither used nor defined by any non-exercise cell."""
    nb = _nb(name)
    exercises = parse_exercises(nb, name)
    in_exercise = set()
    for ex in exercises:
        end = ex.check_cells[-1]
        in_exercise.update(range(ex.task_cell, end + 1))
    defined = set()
    for ex in exercises:
        for i in ex.solution_cells:
            tree = ast.parse(_cell_python(REGION.sub(_unindented_region, nb.cells[i].source)))
            defined |= _module_names(tree)
    defined = {n for n in defined if not n.startswith("_")}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or i in in_exercise:
            continue
        names = {n.id for n in ast.walk(ast.parse(_cell_python(cell.source)))
                 if isinstance(n, ast.Name)}
        assert not names & defined, f"{name} cell {i} uses exercise names {names & defined}"


def _unindented_region(match):
    """A solution region at the top level of its cell, without its markers (regions inside a
    function body only define locals: they are dropped with the markers)."""
    return match.group(1) if not match.group(0)[0].isspace() else "    pass\n"


def _module_names(tree):
    """Names a parsed cell binds at module level (assignments, loops, defs, imports)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
            for target in filter(None, targets):
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def _cell_python(source):
    """Cell source without IPython magics (``%pip``), parseable by ``ast``."""
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass"
                     if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def test_parse_finds_the_parts_of_an_exercise():
    (ex,) = parse_exercises(_toy(GOOD), "07_toy")
    assert (ex.id, ex.title, ex.task_cell, ex.solution_cells, ex.check_cells, ex.has_hint) == \
        ("7.1", "double it", 1, [2], [3], True)


@pytest.mark.parametrize("cells, expected", [
    ([GOOD[1], ("code", "def f():\n    ### BEGIN SOLUTION\n    return 1\n"), GOOD[3]],
     r"07_toy, cell 1 .*'### BEGIN SOLUTION' on line 2 is never closed"),
    ([GOOD[1], ("code", "x = 1\n### END SOLUTION"), GOOD[3]],
     r"07_toy, cell 1 .*'### END SOLUTION' on line 2 without a '### BEGIN SOLUTION'"),
    ([GOOD[1], ("code", "### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
      GOOD[3]], r"cell 1 .*inside the region opened on line 1"),
    ([GOOD[1], ("code", "### BEGIN SOLUTION\n### END SOLUTION"), GOOD[3]],
     r"cell 1 .*is empty"),
    ([("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION")],
     r"cell 0 .*before any exercise"),
    ([GOOD[1], GOOD[2]], r"exercise 7.1 has no check cell"),
    ([GOOD[1], GOOD[3]], r"cell 1 .*check of exercise 7.1 comes before its solution"),
    ([GOOD[1], GOOD[2], ("code", "# Check exercise 7.2\nassert True")],
     r"cell 2 .*check of exercise 7.2 inside exercise 7.1"),
    ([("md", "### Exercise 7.2: skipped one"), GOOD[2], GOOD[3]], r"out of sequence"),
    ([("md", "### Exercise 3.1: wrong notebook"), GOOD[2], GOOD[3]],
     r"numbered for notebook 3"),
    ([GOOD[1], ("md", "text\n### BEGIN SOLUTION\nx\n### END SOLUTION"), GOOD[2], GOOD[3]],
     r"cell 1 .*markdown"),
    ([GOOD[1], ("code", "x = 1  # BEGIN SOLUTION here"), GOOD[2], GOOD[3]],
     r"not a marker line"),
])
def test_broken_markup_names_notebook_and_cell(cells, expected):
    with pytest.raises(MarkupError, match=expected):
        parse_exercises(_toy(cells), "07_toy")


def test_strip_keeps_code_around_the_region_and_the_indentation():
    source = GOOD[2][1]
    stripped = strip_solutions(source, "Exercise 7.1: double it")
    assert "return 2 * v" not in stripped and "SOLUTION" not in stripped
    assert "x = 3" in stripped and "def double(v):" in stripped and "y = double(x)" in stripped
    assert '    raise NotImplementedError("Exercise 7.1: double it")' in stripped
    with pytest.raises(NotImplementedError, match=r"^Exercise 7\.1: double it$"):
        exec(stripped, {})
    # a message with quotes and backslashes stays one valid string literal
    odd = strip_solutions(source, 'Exercise 7.1: the "odd" \\ title')
    with pytest.raises(NotImplementedError) as info:
        exec(odd, {})
    assert str(info.value) == 'Exercise 7.1: the "odd" \\ title'


# ------------------------------------------------------------------------------------------
# the editions
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("teaching")
    found = build(out, log=lambda *_: None)
    return out, found


def test_build_writes_both_editions_and_the_index(built):
    out, found = built
    assert set(TEACHING) <= set(found)
    index = (out / "INDEX.md").read_text()
    for name in found:
        for edition in ("student", "instructor"):
            nb = nbformat.read(str(out / edition / f"{name}.ipynb"), as_version=4)
            nbformat.validate(nb)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    assert cell.outputs == [] and cell.execution_count is None
            assert f"Teaching edition, {edition}" in nb.cells[0].source
        assert f"## {name}" in index and f"student/{name}.ipynb" in index
        for ex in found[name]:
            assert f"| {ex.id} | {ex.title} |" in index
    assert not list(out.glob("**/.*.tmp")) and not list(out.glob("**/.*.ipynb"))


@pytest.mark.parametrize("name", TEACHING)
def test_student_edition_has_stubs_and_no_solution_text(built, name):
    out, found = built
    source_nb = _nb(name)
    student = nbformat.read(str(out / "student" / f"{name}.ipynb"), as_version=4)
    instructor = nbformat.read(str(out / "instructor" / f"{name}.ipynb"), as_version=4)
    student_text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in student_text and "END SOLUTION" not in student_text
    outside = "\n".join(REGION.sub("", c.source) for c in source_nb.cells)
    for ex in found[name]:
        assert f'raise NotImplementedError("Exercise {ex.id}: ' in student_text
        for i in ex.solution_cells:
            for region in REGION.findall(source_nb.cells[i].source):
                for line in region.splitlines():
                    if line.strip() and line.strip() not in outside:
                        assert line.strip() not in student_text, (name, ex.id, line)
        # hints, tasks and checks stay for the student
        assert student.cells[ex.task_cell].source == source_nb.cells[ex.task_cell].source
        for i in ex.check_cells:
            assert student.cells[i].source == source_nb.cells[i].source
    # the instructor edition is the solution notebook (first cell: the edition note added)
    assert [c.source for c in instructor.cells[1:]] == [c.source for c in source_nb.cells[1:]]


def test_student_and_instructor_functions_match_the_build(built):
    out, _ = built
    nb = _nb("05_im2spec_spec2im")
    on_disk = nbformat.read(str(out / "student" / "05_im2spec_spec2im.ipynb"), as_version=4)
    assert student_notebook(nb, "05_im2spec_spec2im") == on_disk
    assert instructor_notebook(nb, "05_im2spec_spec2im").cells[3] == nb.cells[3]


def test_broken_markup_writes_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(_toy(GOOD), str(src / "07_good.ipynb"))
    broken = _toy([("md", "### Exercise 9.1: unclosed"), ("code", "### BEGIN SOLUTION\nx = 1"),
                   ("code", "# Check exercise 9.1\nassert x == 1")])
    nbformat.write(broken, str(src / "09_broken.ipynb"))
    with pytest.raises(MarkupError, match=r"09_broken, cell 1 .*never closed"):
        build(tmp_path / "out", src, log=lambda *_: None)
    assert not (tmp_path / "out").exists()


def test_rebuild_removes_editions_of_notebooks_without_exercises(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(_toy(GOOD), str(src / "07_good.ipynb"))
    nbformat.write(_toy(GOOD), str(src / "09_later.ipynb"))
    with pytest.raises(MarkupError, match="numbered for notebook 7"):
        build(tmp_path / "out", src, log=lambda *_: None)
    nbformat.write(_toy(GOOD[:1]), str(src / "09_later.ipynb"))
    build(tmp_path / "out", src, log=lambda *_: None)
    (tmp_path / "out" / "student" / "09_later.ipynb").write_text("{}")  # an earlier build's
    found = build(tmp_path / "out", src, log=lambda *_: None)
    assert list(found) == ["07_good"]
    assert sorted(p.name for p in (tmp_path / "out" / "student").iterdir()) == ["07_good.ipynb"]


def test_cli_reports_broken_markup(tmp_path, capsys):
    from helpers.teach.__main__ import main

    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(_toy([GOOD[1], ("code", "x = 1\n### END SOLUTION"), GOOD[3]]),
                   str(src / "07_toy.ipynb"))
    assert main(["build", "--out", str(tmp_path / "out"), "--notebooks", str(src)]) == 2
    assert "07_toy, cell 1" in capsys.readouterr().err
    assert main(["build", "--out", str(tmp_path / "out2"), "--notebooks",
                 str(tmp_path / "empty")]) == 2


# ------------------------------------------------------------------------------------------
# the check cells: right answers pass, wrong answers get the intended message
# ------------------------------------------------------------------------------------------
def test_kl_check_passes_the_solution_and_names_a_wrong_sign():
    ns = _solution_ns("00_invariant_vae_basics", "0.2")
    _check("00_invariant_vae_basics", "0.2", dict(ns))
    ns["my_kl"] = -ns["my_kl"]
    with pytest.raises(AssertionError, match="the KL term has the wrong sign: it must be >= 0"):
        _check("00_invariant_vae_basics", "0.2", ns)
    ns = _solution_ns("00_invariant_vae_basics", "0.2")
    mu, logvar = ns["mu_ex"], ns["logvar_ex"]  # sigma taken for sigma^2: >= 0 here, still wrong
    ns["my_kl"] = 0.5 * np.sum(mu**2 + np.exp(0.5 * logvar) - 1 - logvar, -1)
    assert np.all(ns["my_kl"] >= 0)
    with pytest.raises(AssertionError, match="logvar is log sigma"):
        _check("00_invariant_vae_basics", "0.2", ns)


def test_reparameterisation_check_names_the_variance_and_a_lost_gradient():
    import torch

    ns = _solution_ns("00_invariant_vae_basics", "0.3")
    _check("00_invariant_vae_basics", "0.3", dict(ns))
    # run again on the same z_ex, as a student re-running the check cell alone: it must not
    # rely on z_ex's graph, which the first run's autograd.grad has freed
    _check("00_invariant_vae_basics", "0.3", ns)
    ns["z_ex"] = ns["mu_t"] + torch.exp(ns["logvar_t"]) * ns["eps_ex"]
    with pytest.raises(AssertionError, match="exp\\(logvar\\), the variance"):
        _check("00_invariant_vae_basics", "0.3", ns)
    ns["z_ex"] = (ns["mu_t"] + torch.exp(0.5 * ns["logvar_t"]) * ns["eps_ex"]).detach()
    with pytest.raises(AssertionError, match="z carries no gradient"):
        _check("00_invariant_vae_basics", "0.3", ns)


def test_concentration_check_rejects_averaging_the_angles():
    rng = np.random.default_rng(1)
    angle = rng.uniform(0, 2 * np.pi, 300)
    labels = rng.integers(0, 4, 300)
    ns = _solution_ns("00_invariant_vae_basics", "0.1", data=SimpleNamespace(angle=angle),
                      labels=labels, N_GMM=5)
    ns["gmm_angle_concentration"] = float(np.mean(
        [np.abs(np.mean(np.exp(1j * angle[labels == k]))) for k in range(4)]))
    _check("00_invariant_vae_basics", "0.1", dict(ns))
    ns["mean_resultant_length"] = lambda a: float(np.abs(np.mean(np.asarray(a))))
    with pytest.raises(AssertionError, match="all point the same way must give R = 1"):
        _check("00_invariant_vae_basics", "0.1", ns)


def test_patch_check_names_an_off_centre_window_and_a_wrong_count():
    import helpers.features as feat

    rng = np.random.default_rng(2)
    atoms = np.c_[rng.uniform(-3, 42, (30, 2)), np.zeros(30)]  # some windows cross the border
    given = dict(feat=feat, WINDOW=8, frames=rng.random((1, 40, 40)).astype(np.float32),
                 HAS_TRUTH=True, movie=SimpleNamespace(atoms=[atoms]))
    ns = _solution_ns("01_graphene_si_dynamics", "1.1", **given)
    _check("01_graphene_si_dynamics", "1.1", dict(ns))
    image = ns["image_ex"]
    ref = feat.extract_patches(image, ns["positions_ex"], 8)
    assert 0 < ref.n_dropped < 30
    padded = np.pad(image, 1)  # the window one pixel down and right of the atom
    ns["my_patches"] = np.array([padded[r - 4 + 2:r + 4 + 2, c - 4 + 2:c + 4 + 2]
                                 for r, c in ref.centers])
    with pytest.raises(AssertionError, match="index \\(window // 2, window // 2\\)"):
        _check("01_graphene_si_dynamics", "1.1", ns)
    ns["my_patches"] = ref.patches[1:]
    with pytest.raises(AssertionError, match="windows fit inside the frame"):
        _check("01_graphene_si_dynamics", "1.1", ns)


def test_separation_check_names_an_unwrapped_difference():
    mu = np.array([3.0, -2.9])  # 5.9 rad apart as numbers, 0.38 rad on the circle
    ns = _solution_ns("01_graphene_si_dynamics", "1.2", mu=mu)
    ns["separation"] = ns["my_separation"]
    _check("01_graphene_si_dynamics", "1.2", dict(ns))
    ns["my_separation"] = float(np.degrees(abs(mu[0] - mu[1])) / 3)
    with pytest.raises(AssertionError, match="wrap the difference"):
        _check("01_graphene_si_dynamics", "1.2", ns)
    # wrapped but not divided by 3: modes opposite in phi = 3 theta give 180 deg
    mu = np.array([0.1, 0.1 + np.pi])
    ns = _solution_ns("01_graphene_si_dynamics", "1.2", mu=mu)
    ns["separation"] = ns["my_separation"]
    ns["my_separation"] = float(np.degrees(abs(np.angle(np.exp(1j * (mu[0] - mu[1]))))))
    with pytest.raises(AssertionError, match="divide by 3 \\(phi = 3 theta\\)"):
        _check("01_graphene_si_dynamics", "1.2", ns)


def test_fraction_and_transition_checks_name_their_mistakes():
    from helpers.analysis import class_fractions, locate_transition

    rng = np.random.default_rng(3)
    labels, group = rng.integers(0, 3, 200), np.repeat(np.arange(4), 50)
    ns = _solution_ns("03_batio3_phase_transition", "3.1", labels=labels, group=group,
                      N_CLASSES=3, n_t=4, temps=np.arange(4.0))
    ns["fractions"] = class_fractions(labels, group, 3, 4)
    _check("03_batio3_phase_transition", "3.1", dict(ns))
    counts = np.zeros((4, 3))
    np.add.at(counts, (group, labels), 1.0)
    ns["my_fractions"] = counts / counts.sum()
    with pytest.raises(AssertionError, match="every row must sum to 1"):
        _check("03_batio3_phase_transition", "3.1", ns)

    def first_crossing(temps, abundance, level=0.5):
        i = int(np.flatnonzero(np.asarray(abundance) >= level)[0]) - 1
        a0, a1 = abundance[i], abundance[i + 1]
        return float(temps[i] + (level - a0) / (a1 - a0) * (temps[i + 1] - temps[i]))

    ns = {"np": np, "locate_transition": locate_transition,
          "transition_temperature": first_crossing}
    with pytest.raises(AssertionError, match="crosses 1/2 early at 310 K"):
        _check("03_batio3_phase_transition", "3.3", ns)


def test_split_check_finds_overlapping_patches():
    from helpers.analysis import patch_loop_pairs, spatial_split

    rng = np.random.default_rng(4)
    pairs = patch_loop_pairs(rng.random((20, 24)), rng.random((20, 24, 5)), 8)
    split = spatial_split(pairs, 0.5)
    ns = _solution_ns("05_im2spec_spec2im", "5.2", pairs=pairs, split=split)
    _check("05_im2spec_spec2im", "5.2", dict(ns))
    ns["my_train"], ns["my_test"] = pairs.cols < split.boundary, pairs.cols >= split.boundary
    with pytest.raises(AssertionError, match="a test patch overlaps a training patch"):
        _check("05_im2spec_spec2im", "5.2", ns)


def test_r2_check_names_the_mean_loop():
    rng = np.random.default_rng(5)
    loops = rng.random((30, 6)) + np.linspace(0, 3, 6)
    preds = {("im2spec", ld): loops + 0.1 * rng.standard_normal(loops.shape) for ld in (2, 10)}
    from helpers.analysis import r2_score

    ns = _solution_ns("05_im2spec_spec2im", "5.3", preds=preds, LATENTS=(2, 10),
                      test=SimpleNamespace(loops=loops))
    ns["r2"] = {ld: r2_score(loops, preds[("im2spec", ld)]) for ld in (2, 10)}
    _check("05_im2spec_spec2im", "5.3", dict(ns))
    ns["pooled_r2"] = lambda t, p: float(1 - np.sum((p - t) ** 2) / np.sum((t - t.mean()) ** 2))
    with pytest.raises(AssertionError, match="mean over sites at each voltage step"):
        _check("05_im2spec_spec2im", "5.3", ns)


def test_kernel_check_compares_with_gpytorch():
    import torch

    ns = _solution_ns("08_divide", "8.1", torch=torch)
    _check("08_divide", "8.1", dict(ns))
    ns["my_K"] = ns["SCALES_EX"][0] * np.exp(
        -((ns["z_ex"][:, None, :] - ns["z_ex"][None]) ** 2).sum(-1) / 2.0) + ns["SCALES_EX"][1]
    with pytest.raises(AssertionError, match="differs from gpytorch"):
        _check("08_divide", "8.1", ns)


def test_interval_check_names_the_missing_noise():
    from helpers.models.divide import DividePrediction

    rng = np.random.default_rng(6)
    pred = DividePrediction(mean=rng.standard_normal(50), variance=rng.uniform(0.01, 0.1, 50),
                            noise_variance=0.05)
    y = pred.mean + rng.standard_normal(50) * 0.3
    low, high = pred.interval(0.95)
    given = {"NOISES": (0.05,), "bench": {("additive", 0.05): {
        "pred": pred, "test": SimpleNamespace(y=y),
        "coverage": float(np.mean((y >= low) & (y <= high)))}}}
    ns = _solution_ns("08_divide", "8.2", **given)
    _check("08_divide", "8.2", dict(ns))
    ns["my_low"], ns["my_high"] = pred.interval(0.95, observed=False)
    with pytest.raises(AssertionError, match="too narrow: .*adds the noise variance"):
        _check("08_divide", "8.2", ns)


def test_acquisition_checks_against_the_integral_and_the_limits():
    from helpers.models.divide import DividePrediction

    rng = np.random.default_rng(7)
    pred = DividePrediction(mean=rng.standard_normal(40), variance=rng.uniform(0.01, 1, 40),
                            noise_variance=0.01)
    best = {"pred": pred, "train": SimpleNamespace(y=rng.standard_normal(20))}
    ns = _solution_ns("08_divide", "8.3", best=best)
    _check("08_divide", "8.3", dict(ns))
    from scipy.stats import norm

    def no_exploration(mean, sd, best_f):  # drops the s * phi(u) term, clipped at 0
        u = (mean - best_f) / sd
        return np.maximum(sd * u * norm.cdf(u), 0.0)

    ns["expected_improvement"] = no_exploration
    ns["ei_ex"] = no_exploration(ns["mean_ex"], ns["sd_ex"], ns["best_f_ex"])
    with pytest.raises(AssertionError, match="numerical integral"):
        _check("08_divide", "8.3", ns)

    ns = _solution_ns("08_divide", "8.3", best=best)
    ns.update(_solution_ns("08_divide", "8.4", **ns))
    _check("08_divide", "8.4", dict(ns))
    ns["upper_confidence_bound"] = lambda m, s, beta: m + beta * s
    with pytest.raises(AssertionError, match="adds two standard deviations, not four"):
        _check("08_divide", "8.4", ns)


# ------------------------------------------------------------------------------------------
# the student notebooks, executed at smoke scale, stop at their first stub
# ------------------------------------------------------------------------------------------
@pytest.mark.notebooks
@pytest.mark.parametrize("name", TEACHING)
def test_student_notebook_stops_at_its_first_exercise(built, name, tmp_path, monkeypatch):
    from helpers.run import run_notebook

    out, found = built
    # no downloads, an empty private cache, one thread: as the smoke run of the solutions
    monkeypatch.setenv("MICROSCOPY_OFFLINE", "1")
    monkeypatch.setenv("MICROSCOPY_DATA_DIR", str(tmp_path / "cache"))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    first = found[name][0]
    run = run_notebook(out / "student" / f"{name}.ipynb", tmp_path / "run", smoke=True,
                       kernel_retries=2)
    assert run.status == "failed"
    assert run.error.startswith(f"NotImplementedError: Exercise {first.id}: "), run.error
    assert run.failed_cell == first.solution_cells[0] + 1  # counted from 1
