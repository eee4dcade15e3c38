"""The one training loop of the suite's models and the ``History`` every ``fit`` returns.

A model describes its training by three small callables and hands them to :func:`run_epochs`:

- ``epoch_batches(epoch)`` yields ``(batch, weight)`` pairs for one epoch (drawing the model's
  shuffling, crops and augmentation from its own generators), ``weight`` being the batch's
  share of the epoch (``len(batch) / n``), so the recorded epoch loss is a weighted mean;
- ``batch_loss(batch)`` returns ``(loss, parts)``: the scalar tensor to minimise and a dict of
  plain floats recorded beside it (e.g. ``{"recon": ..., "kl_z": ...}``);
- ``validate()`` (optional) returns a float scored on held-out data, lower is better.

The loop owns what every model needs the same way: the optimiser step, the divergence check
(:class:`DivergenceGuard`), the per-epoch records, early stopping with the best weights kept,
and the progress bar.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch

from .._checks import DivergenceGuard
from ..env import progress as progress_bar

__all__ = ["History", "run_epochs"]


class History(Mapping):
    """Per-epoch records of one ``fit``.

    ``history["loss"]`` and ``history.loss`` both give a ``list[float]`` with one value per
    epoch (the weighted mean of the batch losses, in the model's loss units). Other keys:
    ``"seconds"`` (training time of each epoch, s), ``"val_loss"`` when validation data were
    given (one value per validation, lower is better), and any model-specific parts
    (``"recon"``, ``"kl_z"``, ...). Attributes: ``best_epoch`` (the epoch with the lowest
    ``val_loss``, None without validation), ``stopped_early`` (bool) and ``epochs_run`` (int).
    """

    def __init__(self) -> None:
        self._records: dict[str, list[float]] = {}
        self.best_epoch: int | None = None
        self.stopped_early = False
        self.epochs_run = 0

    def append(self, key: str, value: float) -> None:
        """Add one value to the record ``key`` (created on first use)."""
        self._records.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self._records[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __getattr__(self, name: str) -> list[float]:
        # only called when normal lookup fails: expose the records as attributes
        records = self.__dict__.get("_records", {})
        if name in records:
            return records[name]
        raise AttributeError(f"History has no record {name!r}; it holds {sorted(records)}")

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self._records.items() if v)
        return (f"History(epochs_run={self.epochs_run}, best_epoch={self.best_epoch}, "
                f"stopped_early={self.stopped_early}, last: {last})")


def run_epochs(
    *,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch_batches: Callable[[int], Iterable[tuple[Any, float]]],
    batch_loss: Callable[[Any], tuple[torch.Tensor, Mapping[str, float]]],
    epochs: int,
    desc: str,
    progress: bool = True,
    guard_floor: float = 1.0,
    validate: Callable[[], float] | None = None,
    patience: int | None = None,
    start_epoch: int = 1,
    after_step: Callable[[], None] | None = None,
    validate_every: int = 1,
    min_delta: float = 0.0,
    epoch_end: Callable[[], Mapping[str, float]] | None = None,
) -> History:
    """Train ``module`` for up to ``epochs`` epochs and return its :class:`History`.

    Each step: ``loss, parts = batch_loss(batch)``; the loss value goes through a
    ``DivergenceGuard(floor=guard_floor)`` (``TrainingDivergedError`` naming the epoch when it
    is NaN/inf or explodes; ``guard_floor`` is the loss's natural size, e.g. 1 for a mean
    squared error on standardised targets); then ``zero_grad``, ``backward``, ``step`` and
    ``after_step()`` (e.g. a learning-rate schedule).

    Args:
        epochs: number of epochs to run; they are numbered ``start_epoch, start_epoch + 1, ...``
            in records and error messages.
        validate: scored after every ``validate_every``-th epoch and after the last one,
            recorded as ``"val_loss"``.
        patience: with ``validate``, stop after ``patience`` validations in a row that do not
            beat the best ``val_loss`` by more than ``min_delta``; the weights of the best
            validation are restored at the end. None trains every epoch.
        epoch_end: called after each epoch's last step; returns extra values to record
            (e.g. a fitted noise level).
        desc, progress: label and switch of the progress bar (:func:`helpers.env.progress`).

    The module is left in ``eval()`` mode.
    """
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if patience is not None and validate is None:
        raise ValueError("patience needs validate: early stopping watches the validation loss")
    if int(validate_every) < 1:
        raise ValueError(f"validate_every must be >= 1, got {validate_every}")
    history = History()
    guard = DivergenceGuard(floor=guard_floor)
    last = start_epoch + int(epochs) - 1
    best, best_state, bad = math.inf, None, 0
    bar = progress_bar(range(start_epoch, last + 1), desc=desc, disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        module.train()
        sums: dict[str, float] = {"loss": 0.0}
        for batch, weight in epoch_batches(epoch):
            loss, parts = batch_loss(batch)
            value = float(loss.detach())
            guard.check(value, epoch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            sums["loss"] += value * weight
            for key, part in parts.items():
                sums[key] = sums.get(key, 0.0) + float(part) * weight
        for key, total in sums.items():
            history.append(key, total)
        history.append("seconds", time.perf_counter() - t0)
        if epoch_end is not None:
            for key, extra in epoch_end().items():
                history.append(key, extra)
        history.epochs_run += 1
        postfix = {"loss": f"{sums['loss']:.4g}"}
        if validate is not None and ((epoch - start_epoch + 1) % validate_every == 0
                                     or epoch == last):
            val = float(validate())
            history.append("val_loss", val)
            postfix["val_loss"] = f"{val:.4g}"
            if val < best - min_delta:
                best, bad, history.best_epoch = val, 0, epoch
                if patience is not None:
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            else:
                bad += 1
                if patience is not None and bad >= patience:
                    history.stopped_early = True
                    bar.set_postfix(postfix)
                    break
        bar.set_postfix(postfix)
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history
