"""Seeding, device choice and progress bars."""

import io

import numpy as np
import pytest
import torch

from helpers.env import (
    PROGRESS_VARIABLE,
    get_device,
    in_colab,
    progress,
    seed_everything,
    torch_generator,
)


def test_same_seed_same_numbers():
    seed_everything(3)
    a = (np.random.rand(3), torch.rand(3))  # noqa: NPY002
    seed_everything(3)
    b = (np.random.rand(3), torch.rand(3))  # noqa: NPY002
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])
    assert seed_everything(5).random() == seed_everything(5).random()


def test_bad_seed_rejected():
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(-1)


def test_auto_device_is_available_and_cpu_always_works():
    assert get_device("auto") in {"cpu", "cuda", "mps"}
    assert get_device("cpu") == "cpu"


def test_unavailable_device_names_the_fix():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='auto'"):
            get_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        get_device("tpu")


def test_torch_generator_is_seeded_and_falls_back_to_the_cpu():
    a, b = torch_generator(4), torch_generator(4)
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))
    # the meta device has no generator of its own: a CPU generator with the same seed
    g = torch_generator(4, "meta")
    assert g.device.type == "cpu"
    assert torch.equal(torch.rand(5, generator=g), torch.rand(5, generator=torch_generator(4)))


def test_not_in_colab_here():
    assert in_colab() is False


def test_text_progress_prints_one_line_with_the_final_state(monkeypatch):
    # a saved notebook must show where a loop ended, not a redraw per step or a frozen 0 %
    monkeypatch.setenv(PROGRESS_VARIABLE, "text")
    out = io.StringIO()
    bar = progress(range(50), desc="train", stream=out)
    for i in bar:
        bar.set_postfix(loss=i)  # forces a redraw on every step
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("train: 100%") and "50/50" in lines[0] and "loss=49" in lines[0]
    assert "\r" not in out.getvalue()


def test_text_progress_reports_again_after_its_interval(monkeypatch):
    monkeypatch.setenv(PROGRESS_VARIABLE, "text")
    out = io.StringIO()
    bar = progress(range(3), desc="slow", stream=out, interval=0.0)
    for _ in bar:
        pass
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and lines[-1].startswith("slow: 100%"), lines


def test_live_progress_is_tqdm_auto_and_bad_modes_are_named(monkeypatch):
    from tqdm.auto import tqdm as auto_tqdm

    monkeypatch.delenv(PROGRESS_VARIABLE, raising=False)
    assert isinstance(progress(range(2), disable=True), auto_tqdm)
    monkeypatch.setenv(PROGRESS_VARIABLE, "widgets")
    with pytest.raises(ValueError, match="'text'"):
        progress(range(2))
