"""The teaching edition: student and instructor notebooks generated from the solution notebooks.

The suite's notebooks are the solutions. An exercise is marked up in them with three kinds of
cells (see ``CONTRIBUTING.md``, "How to add an exercise"):

- a markdown **task** cell whose first line is a heading ``### Exercise N.k: title`` (``N`` the
  notebook's number, ``k`` counting from 1), with the task and optional hints;
- one or more code **solution** cells holding a region between nbgrader's markers
  ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (code outside the region, e.g. the given
  inputs or a function signature, is kept for the student);
- one or more code **check** cells whose first line is ``# Check exercise N.k``: they assert on
  the student's result with a message that says what is wrong.

``python -m helpers.teach build [--out DIR]`` (``make teaching``) writes ``DIR/student/`` (each
solution region replaced by a stub that raises ``NotImplementedError("Exercise N.k: ...")``),
``DIR/instructor/`` (solutions kept) and ``DIR/INDEX.md`` (the exercises per notebook), all
without outputs.

Why not nbgrader's ``ClearSolutions`` preprocessor: it does the region replacement offline, but
importing it pulls in nbgrader's whole application (Jupyter Notebook 7 server, SQLAlchemy,
Alembic, RapidFuzz) for a few lines of text processing, and its stub is one fixed text per
language, while our stubs name their exercise so that a student sees which task stopped the
run. The markers are nbgrader's, so a course that uses nbgrader can still process these
notebooks with it (``enforce_metadata=False``).
"""

from .build import DEFAULT_OUT, build
from .markup import (
    CHECK_PREFIX,
    Exercise,
    MarkupError,
    instructor_notebook,
    parse_exercises,
    strip_solutions,
    student_notebook,
)

__all__ = [
    "CHECK_PREFIX",
    "DEFAULT_OUT",
    "Exercise",
    "MarkupError",
    "build",
    "instructor_notebook",
    "parse_exercises",
    "strip_solutions",
    "student_notebook",
]
