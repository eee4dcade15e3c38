"""Exercise markup in a solution notebook: finding the exercises, checking the markers, and
turning the notebook into its student or instructor edition (in memory; see ``build``)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field

BEGIN = "BEGIN SOLUTION"
END = "END SOLUTION"
CHECK_PREFIX = "# Check exercise"
# a task cell starts with "### Exercise 3.2: the title" (2-4 hashes; ":" or "." after the id)
_HEADING = re.compile(r"^#{2,4}\s+Exercise\s+(\d+)\.(\d+)\s*[:.]?\s*(.*?)\s*$")
_MARKER = re.compile(r"^(\s*)#+\s*(BEGIN|END) SOLUTION\s*$")
_CHECK = re.compile(r"^#\s*Check exercise\s+(\d+)\.(\d+)\b")
_HINT = re.compile(r"\bhints?\b", re.IGNORECASE)


class MarkupError(ValueError):
    """The exercise markup of a notebook is broken; the message names the notebook and cell."""


@dataclass
class Exercise:
    """One exercise of a notebook.

    Attributes:
        notebook: the notebook's stem (``00_invariant_vae_basics``).
        id: ``"N.k"`` (notebook number, exercise number).
        title: the heading's text after the id.
        task_cell: index of the markdown task cell in the notebook (from 0).
        solution_cells: indices of the code cells holding solution regions.
        check_cells: indices of the check cells.
        has_hint: whether the task cell gives a hint.
    """

    notebook: str
    id: str
    title: str
    task_cell: int
    solution_cells: list[int] = field(default_factory=list)
    check_cells: list[int] = field(default_factory=list)
    has_hint: bool = False

    @property
    def stub_message(self) -> str:
        """The message of the stub's ``NotImplementedError``."""
        return f"Exercise {self.id}: {self.title} (replace this with your solution)"


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _where(name: str, index: int, cell) -> str:
    cid = cell.get("id")
    return f"{name}, cell {index}" + (f" (id {cid})" if cid else "")


def _notebook_number(name: str) -> int | None:
    m = re.match(r"^(\d+)_", name)
    return int(m.group(1)) if m else None


def _regions(source: str, where: str) -> list[tuple[int, int, str]]:
    """The solution regions of a cell's source: (line of BEGIN, line of END, indentation)."""
    regions, start, indent = [], None, ""
    for i, line in enumerate(source.splitlines()):
        m = _MARKER.match(line)
        if m is None:
            if BEGIN in line or END in line:
                raise MarkupError(f"{where}: line {i + 1} mentions {BEGIN!r} or {END!r} but is "
                                  f"not a marker line; a marker is a comment alone on its line, "
                                  f"e.g. '### {BEGIN}'")
            continue
        if m.group(2) == "BEGIN":
            if start is not None:
                raise MarkupError(f"{where}: '### {BEGIN}' on line {i + 1} inside the region "
                                  f"opened on line {start + 1}; close it with '### {END}' first")
            start, indent = i, m.group(1)
        else:
            if start is None:
                raise MarkupError(f"{where}: '### {END}' on line {i + 1} without a "
                                  f"'### {BEGIN}' before it; add the BEGIN marker or remove it")
            if not any(s.strip() for s in source.splitlines()[start + 1:i]):
                raise MarkupError(f"{where}: the solution region on lines {start + 1}-{i + 1} is "
                                  f"empty; put the solution between the markers")
            regions.append((start, i, indent))
            start = None
    if start is not None:
        raise MarkupError(f"{where}: '### {BEGIN}' on line {start + 1} is never closed; add "
                          f"'### {END}' in the same cell")
    return regions


def parse_exercises(nb, name: str = "notebook") -> list[Exercise]:
    """The exercises of a solution notebook, after checking its markup.

    Args:
        nb: a notebook (``nbformat`` node or the parsed JSON dict).
        name: the notebook's stem, used in messages and to check the exercise numbers
            (``N`` of ``Exercise N.k`` must be the number the name starts with).

    Returns:
        The exercises in notebook order (an empty list for a notebook without any).

    Raises:
        MarkupError: unbalanced or nested markers, a solution region or check cell outside an
            exercise or naming another one, an exercise without a solution region or without a
            check cell, numbers out of sequence or of another notebook, markers in markdown.
    """
    number = _notebook_number(name)
    exercises: list[Exercise] = []
    current: Exercise | None = None

    def close(ex: Exercise | None, where: str) -> None:
        if ex is None:
            return
        if not ex.solution_cells:
            raise MarkupError(f"{where}: exercise {ex.id} has no solution region; add a code cell "
                              f"with '### {BEGIN}' ... '### {END}' after its task cell")
        if not ex.check_cells:
            raise MarkupError(f"{where}: exercise {ex.id} has no check cell; add a code cell "
                              f"starting with '{CHECK_PREFIX} {ex.id}' after its solution")

    for i, cell in enumerate(nb["cells"]):
        src = _source(cell)
        where = _where(name, i, cell)
        lines = src.splitlines()
        first = lines[0] if lines else ""
        if cell["cell_type"] == "markdown":
            if BEGIN in src or END in src:
                raise MarkupError(f"{where}: solution markers in a markdown cell; only code "
                                  f"cells hold solution regions")
            m = _HEADING.match(first)
            if m is None:
                if any(_HEADING.match(line) for line in lines[1:]):
                    raise MarkupError(f"{where}: an 'Exercise N.k' heading must be the first "
                                      f"line of its own markdown cell")
                continue
            close(current, where)
            nb_no, k, title = int(m.group(1)), int(m.group(2)), m.group(3)
            ex_id = f"{nb_no}.{k}"
            if number is not None and nb_no != number:
                raise MarkupError(f"{where}: exercise {ex_id} is numbered for notebook "
                                  f"{nb_no}; exercises of {name} are {number}.1, {number}.2, ...")
            if k != len(exercises) + 1:
                raise MarkupError(f"{where}: exercise {ex_id} is out of sequence; expected "
                                  f"{nb_no}.{len(exercises) + 1} (number them 1, 2, ... in order)")
            if not title:
                raise MarkupError(f"{where}: exercise {ex_id} has no title after its number")
            current = Exercise(name, ex_id, title, i, has_hint=bool(_HINT.search(src)))
            exercises.append(current)
            continue
        if cell["cell_type"] != "code":
            continue
        regions = _regions(src, where)
        check = _CHECK.match(first)
        if regions:
            if current is None:
                raise MarkupError(f"{where}: a solution region before any exercise; put an "
                                  f"'### Exercise N.k: title' markdown cell before it")
            if current.check_cells:
                raise MarkupError(f"{where}: a solution region of exercise {current.id} after "
                                  f"its check cell; checks come after every solution cell")
            if check:
                raise MarkupError(f"{where}: a check cell holds a solution region; keep the "
                                  f"solution and its check in separate cells")
            current.solution_cells.append(i)
        elif check:
            ex_id = f"{int(check.group(1))}.{int(check.group(2))}"
            if current is None or ex_id != current.id:
                inside = f"inside exercise {current.id}" if current else "before any exercise"
                raise MarkupError(f"{where}: a check of exercise {ex_id} {inside}; it must "
                                  f"follow exercise {ex_id}'s solution cells")
            if not current.solution_cells:
                raise MarkupError(f"{where}: the check of exercise {ex_id} comes before its "
                                  f"solution cell")
            current.check_cells.append(i)
    close(current, f"{name}, end of notebook")
    return exercises


def strip_solutions(source: str, message: str, where: str = "cell") -> str:
    """``source`` with every solution region (markers included) replaced by a stub.

    The stub, indented like the BEGIN marker, is ``# YOUR CODE HERE`` and
    ``raise NotImplementedError(message)``; code outside the regions is kept.
    """
    lines = source.splitlines()
    regions = _regions(source, where)
    out, pos = [], 0
    literal = json.dumps(message, ensure_ascii=False)  # a JSON string is a Python literal
    for start, end, indent in regions:
        out.extend(lines[pos:start])
        out.append(f"{indent}# YOUR CODE HERE")
        out.append(f"{indent}raise NotImplementedError({literal})")
        pos = end + 1
    out.extend(lines[pos:])
    return "\n".join(out)


def _clean(nb, note: str):
    """A copy without outputs or execution counts, with ``note`` added to the first markdown
    cell (the title cell)."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = cell["source"].rstrip("\n") + "\n\n" + note
            break
    return nb


def _note(edition: str, name: str, exercises: list[Exercise]) -> str:
    ids = ", ".join(ex.id for ex in exercises)
    what = ("Each exercise stops the notebook with `NotImplementedError` until you replace its "
            "stub with your solution; the cell after it checks your answer."
            if edition == "student" else "Solutions included.")
    return (f"> **Teaching edition, {edition}.** Exercises {ids}. {what} Generated from "
            f"`notebooks/{name}.ipynb` by `python -m helpers.teach build`; edit that notebook, "
            f"not this copy.")


def student_notebook(nb, name: str = "notebook"):
    """The student edition: solution regions replaced by stubs, outputs cleared."""
    exercises = parse_exercises(nb, name)
    out = _clean(nb, _note("student", name, exercises))
    for ex in exercises:
        for i in ex.solution_cells:
            cell = out["cells"][i]
            cell["source"] = strip_solutions(cell["source"], ex.stub_message,
                                             _where(name, i, cell))
    return out


def instructor_notebook(nb, name: str = "notebook"):
    """The instructor edition: the solution notebook with its outputs cleared."""
    return _clean(nb, _note("instructor", name, parse_exercises(nb, name)))
