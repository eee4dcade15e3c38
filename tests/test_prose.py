"""Typed results: a markdown number equal to a value the notebook writes to its results must be
found (it should have been printed from the results), and ordinary prose numbers must not."""

from __future__ import annotations

import json

import pytest

from helpers.run.prose import typed_results, typed_results_in


def md(text):
    return {"cell_type": "markdown", "source": text}


def code(text):
    return {"cell_type": "code", "source": text, "outputs": []}


RESULTS = {"latent_r": 0.93412, "coverage_95": 0.9512, "fit_s": 2.51,
           "seconds_per_epoch": 0.127,
           "per_seed": {"gain": [0.0123, -0.004]}, "n_atoms": 412}


@pytest.mark.parametrize("sentence, key", [
    ("The latent tracks the order to r = 0.934.", "latent_r"),
    ("The latent tracks the order to r = 0.93, well above the baseline.", "latent_r"),
    ("About 93.4 % of the variance.", "latent_r"),
    ("The gain is 0.012 (nested results count too).", "per_seed.gain.0"),
    ("A change of \u22120.0040, written with a minus sign.", "per_seed.gain.1"),
])
def test_a_typed_result_is_found(sentence, key):
    found = typed_results([md("# Title"), md(sentence)], RESULTS)
    assert [(f.cell, f.key) for f in found] == [(1, key)]


@pytest.mark.parametrize("sentence", [
    "Results are printed above.",                     # no number at all
    "The bar is coverage >= 0.95.",                   # the bar is in the code too
    "Rods 2.5 nm tall.",                              # equals a timing (fit_s) only
    "Sampled at 0.127 angstrom per pixel.",           # equals seconds_per_epoch only
    "About 0.9 and 5 % (one significant digit).",     # too coarse to be told from chance
    "We find 412 atoms.",                             # whole numbers are not checked
    "The quantile $t_{0.93, K}$.",                    # a subscript
    "Version 0.934.1 of a package.",                  # part of a longer token
])
def test_prose_that_is_not_a_typed_result_passes(sentence):
    cells = [code("BAR = 0.95\nresults = {}"), md(sentence)]
    assert typed_results(cells, RESULTS) == []


def test_code_cells_and_outputs_are_not_prose():
    cells = [code("print(0.934)"), md("Printed from the results.")]
    assert typed_results(cells, RESULTS) == []


def test_reads_a_notebook_and_results_file(tmp_path):
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [md("r = 0.934")], "metadata": {}, "nbformat": 4,
                              "nbformat_minor": 5}))
    res = tmp_path / "nb.results.json"
    res.write_text(json.dumps(RESULTS))
    assert [f.key for f in typed_results_in(nb, res)] == ["latent_r"]
    with pytest.raises(TypeError, match="results mapping"):
        typed_results([md("x")], [0.934])
