"""The shared training loop (helpers.models.training) and the Estimator's seeding helpers."""

import math

import numpy as np
import pytest
import torch

from helpers.env import torch_generator
from helpers.models.base import Estimator, TrainingDivergedError
from helpers.models.training import History, run_epochs


def _line_problem(seed=0, n=64):
    """y = 3 x - 2 plus small noise: a linear model can learn it exactly."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, generator=g)
    y = 3 * x - 2 + 0.01 * torch.randn(n, 1, generator=g)
    return x, y


def _train(seed=0, epochs=20, lr=0.1, validate=None, patience=None, data=None, **kw):
    x, y = data if data is not None else _line_problem()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(module.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(x)

    def epoch_batches(epoch):
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, 16):
            idx = order[s:s + 16]
            yield (x[idx], y[idx]), len(idx) / n

    def batch_loss(batch):
        xb, yb = batch
        err = module(xb) - yb
        return torch.mean(err**2), {"abs": float(err.detach().abs().mean())}

    hist = run_epochs(module=module, optimizer=opt, epoch_batches=epoch_batches,
                      batch_loss=batch_loss, epochs=epochs, desc="test", progress=False,
                      validate=validate and (lambda: validate(module)), patience=patience, **kw)
    return module, hist


def test_loop_learns_a_line_and_records_every_epoch():
    module, hist = _train(epochs=30)
    assert isinstance(hist, History)
    assert hist.epochs_run == 30 and len(hist["loss"]) == 30 and len(hist.seconds) == 30
    assert len(hist["abs"]) == 30 and "val_loss" not in hist
    assert hist.loss[-1] < 0.01 * hist.loss[0]
    assert module.weight.item() == pytest.approx(3.0, abs=0.05)
    assert module.bias.item() == pytest.approx(-2.0, abs=0.05)
    assert not module.training  # left in eval mode


def test_epoch_loss_is_the_weighted_mean_of_batch_losses():
    """One epoch at lr=0: the weights never move, so the epoch loss is the full-data MSE."""
    x, y = _line_problem(n=50)  # batches of 16, 16, 16 and 2: weights matter
    module, hist = _train(epochs=1, lr=0.0, data=(x, y))
    with torch.no_grad():
        full = float(torch.mean((module(x) - y) ** 2))
    assert hist.loss[0] == pytest.approx(full, rel=1e-5)


def test_history_mapping_and_attribute_access():
    _, hist = _train(epochs=3)
    assert hist["loss"] is hist.loss
    assert set(hist) == {"loss", "abs", "seconds"} and len(hist) == 3
    assert dict(hist)["abs"] == hist.abs
    assert hist.best_epoch is None and hist.stopped_early is False
    with pytest.raises(AttributeError, match="no record 'val_loss'"):
        hist.val_loss  # noqa: B018
    with pytest.raises(KeyError):
        hist["val_loss"]


def test_early_stopping_stops_and_restores_the_best_weights():
    """A validation score that is best at epoch 3 and worse after: training stops after
    `patience` worse epochs and the weights are those at the end of epoch 3."""
    seen = []

    def validate(module):
        seen.append((module.weight.item(), module.bias.item()))
        return [5.0, 4.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0][len(seen) - 1]

    module, hist = _train(epochs=8, validate=validate, patience=2)
    assert hist.val_loss == [5.0, 4.0, 1.0, 2.0, 3.0]
    assert hist.stopped_early and hist.epochs_run == 5 and len(hist.loss) == 5
    assert hist.best_epoch == 3
    assert (module.weight.item(), module.bias.item()) == seen[2]
    assert seen[2] != seen[4]  # the weights did move after the best epoch


def test_validation_without_patience_keeps_the_last_weights():
    seen = []

    def validate(module):
        seen.append(module.weight.item())
        return [1.0, 2.0, 3.0][len(seen) - 1]

    module, hist = _train(epochs=3, validate=validate)
    assert hist.best_epoch == 1 and not hist.stopped_early and hist.epochs_run == 3
    assert module.weight.item() == seen[-1]


def test_validate_every_and_min_delta():
    calls = []

    def validate(module):
        calls.append(1)
        return 1.0 - 1e-6 * len(calls)  # improves, but by less than min_delta

    _, hist = _train(epochs=7, validate=validate, patience=2, validate_every=3, min_delta=1e-4)
    # validations after epochs 3 and 6; the second is not a real improvement, then the
    # last epoch (7) is validated too and stops the run
    assert len(hist.val_loss) == 3 and hist.best_epoch == 3
    assert hist.stopped_early and hist.epochs_run == 7


@pytest.mark.parametrize("lr", [1e3, math.nan])
def test_divergence_raises_naming_the_epoch(lr):
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+.*learning rate"):
        _train(epochs=5, lr=lr)


def test_divergence_names_the_epoch_counted_from_start_epoch():
    with pytest.raises(TrainingDivergedError, match="epoch 11"):
        _train(epochs=5, lr=math.nan, start_epoch=11)


def test_after_step_runs_once_per_step_and_epoch_end_is_recorded():
    steps = []
    _, hist = _train(epochs=2, after_step=lambda: steps.append(1),
                     epoch_end=lambda: {"n_steps": len(steps)})
    assert len(steps) == 2 * 4  # 64 samples in batches of 16
    assert hist["n_steps"] == [4.0, 8.0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="patience needs validate"):
        _train(epochs=2, patience=3)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        _train(epochs=0)


def test_same_seed_same_numbers():
    m1, h1 = _train(seed=4, epochs=5)
    m2, h2 = _train(seed=4, epochs=5)
    m3, h3 = _train(seed=5, epochs=5)
    assert h1.loss == h2.loss and h1.abs == h2.abs
    assert torch.equal(m1.weight, m2.weight)
    assert h1.loss != h3.loss


# -- the Estimator's seeding helpers ----------------------------------------------------------
class _Tiny(Estimator):
    def __init__(self, width=3, seed=0, device="auto"):
        super().__init__(seed=seed, device=device, width=width)
        self._build_module(lambda: torch.nn.Linear(2, self.config["width"]))


def test_fit_seeds_count_fits():
    m = _Tiny(seed=7, device="cpu")
    assert [m._fit_seed() for _ in range(3)] == [7, 1007, 2007]


def test_module_initialised_from_the_seed_without_touching_global_state():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = _Tiny(seed=1, device="cpu"), _Tiny(seed=1, device="cpu"), _Tiny(seed=2)
    assert torch.equal(torch.rand(3), before)  # global stream untouched by building models
    assert torch.equal(a.module.weight, b.module.weight)
    assert not torch.equal(a.module.weight.cpu(), c.module.weight.cpu())
    assert str(a.module.weight.device) == "cpu"


def test_generators_are_seeded_and_local():
    m = _Tiny(device="cpu")
    g1, g2 = m._generator(5), torch_generator(5)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    assert not torch.equal(torch.rand(4, generator=torch_generator(6)),
                           torch.rand(4, generator=torch_generator(5)))


def test_save_returns_the_path_and_load_round_trips(tmp_path):
    m = _Tiny(seed=3, device="cpu")
    path = m.save(tmp_path / "tiny.pt")
    assert path == tmp_path / "tiny.pt" and path.exists()
    back = _Tiny.load(path, device="cpu")
    assert torch.equal(back.module.weight, m.module.weight) and back._fitted
    assert not back.module.training
    np.testing.assert_array_equal(back.module.bias.detach().numpy(),
                                  m.module.bias.detach().numpy())
