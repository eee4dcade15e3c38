"""The invariant VAE family: ``VAE``, ``RVAE`` (rotation, optional translation and scale),
``JRVAE`` (joint continuous + categorical latents) and the conditional option
(``condition_dim``), all one network class with switches, sharing ``fit``, ``encode``,
``decode``, ``manifold``, ``save`` and ``Class.load``.

Generative model (images ``x`` of shape ``(H, W)``, normalised by the training mean/std)::

    z ~ N(0, I_d)                         content latents
    c ~ Uniform{1..C}                     class (JRVAE only)
    angle, offset, scale                  pose (RVAE/JRVAE): angle in radians, offset in
                                          pixels (row, col), scale = exp(scale_prior * s)
    x = render(g(z, c, y), pose) + noise  g: decoder of a canonical image, y: condition

Angle convention: counter-clockwise *as displayed* (``imshow``, origin upper left); an input
turned anticlockwise on screen by ``t`` encodes to an angle larger by ``t`` (modulo
``2 pi / symmetry``). ``helpers.models.pose`` implements it.

Pose inference over the full circle (``pose="enumerate"``, the default; details in
``helpers.models.network``): one encoder trunk sees K copies of the input turned by
``-2 pi k / (K n)`` (``n = symmetry``); each copy proposes a bounded angle refinement, an
offset and a scale, while content (and, for JRVAE, nothing else: the class is enumerated)
is averaged over the copies and so cannot encode the angle. The default MLP trunk computes
its first layer for all K copies in one pass, from polar-Fourier coefficients (a turn of the
input is a phase shift there; ``helpers.models.polar``). The decoder draws one canonical
image per sample (per class for JRVAE) and the K posed images are resamplings of it. The
posterior over the discrete hypotheses (K angles x C classes) is computed exactly from their
reconstruction errors, and the negative ELBO is::

    -ELBO(x) = -log( 1/(K C) sum_{k,c} exp(-err_kc - KL_pose_k) ) + KL(q(z|x) || N(0, I))

with ``err = 0.5 ||x - x_hat||^2`` on normalised images (a unit-variance Gaussian likelihood up
to a constant). The angle prior penalises only the spread of the angle (``angle_prior``
radians), as in the anchors; offsets have a ``N(0, (translation_prior * max(H, W) / 2)^2)``
prior in pixels; the scale latent a standard normal. ``pose="regress"`` is the anchors'
design (one encoder pass, angle regressed directly), kept for comparison: it does not learn
full-circle rotations. ``beta`` weights the KL terms; ``capacity=(z_max, gamma, steps)``
replaces ``beta * KL_z`` by ``gamma * |KL_z - C(t)|``, ``C`` growing linearly from 0 to
``z_max`` nats over ``steps`` optimiser steps (the anchors' capacity annealing). JRVAE adds
``class_balance * KL(q(c) || uniform)`` per batch, ``q(c)`` the batch mean of the class
posteriors: it holds the aggregate posterior to the uniform class prior the ELBO already
assumes, which keeps every class in use (see ``JRVAE``).

Defaults (chosen on full-circle rotated test objects, see ``tests/test_vae.py`` and
``benchmarks/rvae_speed.py``): Adam ``lr=1e-3`` (the anchors' 1e-4 leaves the angle
unused), batch 32, K = 12 angle hypotheses of which the best-ranked one is decoded with
gradient (JRVAE: 16 hypotheses, the 4 best decoded), MLP encoder/decoder 2 x 128 tanh,
resample decoder, images larger than 32 pixels area-averaged to 32 for the encoder only.

What is modelled: with angle hypotheses (RVAE), the largest centred disk of the image, the
part the encoder sees and every rotation keeps in view; the likelihood compares only it, and
``decode``/``manifold`` show it (the corners at the training mean). So the canonical canvas
only needs to cover that disk plus the offsets, and rotation never brings empty corners into
the comparison. JRVAE and models without rotation model the whole square (JRVAE's canvas
covers every rotation of it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .base import DivergenceGuard, Estimator, as_float_array, mean_std, not_fitted
from .network import InvariantNet
from .pose import rotate_vectors

__all__ = ["Encoding", "VAE", "RVAE", "JRVAE"]


@dataclass
class Encoding:
    """What ``encode`` returns (numpy arrays, ``N`` = number of images).

    angle: ``(N,)`` radians in ``[0, 2 pi / symmetry)``, anticlockwise as displayed; None
        for a plain VAE.
    offset: ``(N, 2)`` pixels (row, col) by which the object is shifted; None without
        translation.
    z: ``(N, latent_dim)`` posterior means of the content latents.
    z_std: ``(N, latent_dim)`` posterior standard deviations (not log).
    class_probs: ``(N, n_classes)`` (JRVAE only).
    scale: ``(N,)`` scale factor (``scale=True`` only).
    angle_probs: ``(N, K)`` posterior over the K angle hypotheses (``pose="enumerate"``).
    """

    angle: np.ndarray | None
    offset: np.ndarray | None
    z: np.ndarray
    z_std: np.ndarray
    class_probs: np.ndarray | None = None
    scale: np.ndarray | None = None
    angle_probs: np.ndarray | None = None

    @property
    def classes(self) -> np.ndarray | None:
        """``(N,)`` most probable class (JRVAE only)."""
        return None if self.class_probs is None else self.class_probs.argmax(1)


# -- the estimators ---------------------------------------------------------------------------
def _as_shape(image_shape) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (H, W), got {image_shape!r}") from None
    if h < 4 or w < 4:
        raise ValueError(f"image_shape must be at least 4 x 4 pixels, got {(h, w)}")
    return h, w


class _VAEFamily(Estimator):
    """Shared implementation; use ``VAE``, ``RVAE`` or ``JRVAE``."""

    _rotation = False

    def __init__(
        self,
        image_shape,
        latent_dim: int = 2,
        *,
        translation: bool = False,
        scale: bool = False,
        n_classes: int = 0,
        condition_dim: int = 0,
        encoder: str = "mlp",
        decoder: str = "resample",
        hidden=(128, 128),
        pose: str = "enumerate",
        n_rotations: int = 16,
        symmetry: int = 1,
        angle_prior: float = 0.1,
        translation_prior: float = 0.1,
        scale_prior: float = 0.1,
        encoder_size: int = 32,
        top_hypotheses: int = 4,
        beta: float = 1.0,
        capacity: tuple | list | None = None,
        class_balance: float = 0.0,
        seed: int = 0,
        device: str = "auto",
    ):
        image_shape = _as_shape(image_shape)
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if encoder not in ("mlp", "conv"):
            raise ValueError(f"encoder must be 'mlp' or 'conv', got {encoder!r}")
        if decoder not in ("resample", "coordinate"):
            raise ValueError(f"decoder must be 'resample' or 'coordinate', got {decoder!r}")
        if pose not in ("enumerate", "regress"):
            raise ValueError(f"pose must be 'enumerate' or 'regress', got {pose!r}")
        if int(n_rotations) < 1 or int(symmetry) < 1:
            raise ValueError("n_rotations and symmetry must be positive integers")
        if min(angle_prior, translation_prior, scale_prior) <= 0:
            raise ValueError("angle_prior, translation_prior and scale_prior must be > 0")
        if int(n_classes) < 0 or int(condition_dim) < 0:
            raise ValueError("n_classes and condition_dim must be >= 0")
        if capacity is not None and len(capacity) != 3:
            raise ValueError("capacity must be (z_max, gamma, steps) or None")
        if int(top_hypotheses) < 1:
            raise ValueError(f"top_hypotheses must be >= 1, got {top_hypotheses}")
        if not float(class_balance) >= 0:
            raise ValueError(f"class_balance must be >= 0, got {class_balance}")
        if class_balance and not int(n_classes):
            raise ValueError("class_balance weighs the class posteriors; only JRVAE has classes")
        hidden = [int(v) for v in hidden]
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden must be one or more positive layer widths, got {hidden}")
        super().__init__(
            seed=seed, device=device, image_shape=list(image_shape), latent_dim=int(latent_dim),
            translation=bool(translation), scale=bool(scale), n_classes=int(n_classes),
            condition_dim=int(condition_dim), encoder=encoder, decoder=decoder, hidden=hidden,
            pose=pose, n_rotations=int(n_rotations), symmetry=int(symmetry),
            angle_prior=float(angle_prior), translation_prior=float(translation_prior),
            scale_prior=float(scale_prior), encoder_size=int(encoder_size),
            top_hypotheses=int(top_hypotheses), beta=float(beta),
            capacity=None if capacity is None else [float(v) for v in capacity],
            class_balance=float(class_balance),
        )
        self.image_shape = image_shape
        net_cfg = dict(self.config, rotation=self._rotation, image_shape=image_shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.module = InvariantNet(net_cfg).to(self.device)
        self._fitted = False
        self._n_fits = 0
        self._step = 0
        self._optimizer = None

    # -- input checks ----------------------------------------------------------------------
    def _images(self, X, name="X") -> np.ndarray:
        return as_float_array(X, name, ndim=3, shape_tail=self.image_shape)

    def _condition(self, condition, n: int, name="condition") -> torch.Tensor | None:
        cdim = self.config["condition_dim"]
        if cdim == 0:
            if condition is not None:
                raise ValueError(f"this model has no condition (condition_dim=0); drop {name}")
            return None
        if condition is None:
            raise ValueError(f"this model needs {name} of shape (N, {cdim})")
        c = as_float_array(condition, name, ndim=2, shape_tail=(cdim,))
        if c.shape[0] != n:
            raise ValueError(f"{name} has {c.shape[0]} rows but there are {n} images")
        return torch.as_tensor(c, device=self.device)

    def _normalise(self, X: np.ndarray, name: str = "X") -> torch.Tensor:
        m = self.module
        out = (torch.as_tensor(X, device=self.device) - m.x_mean) / m.x_std
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"{name} overflows float32 once standardised by the training mean "
                             f"{float(m.x_mean):.3g} and std {float(m.x_std):.3g}; rescale it")
        return out

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise not_fitted(type(self).__name__)

    def _generator(self, seed: int) -> torch.Generator:
        try:
            g = torch.Generator(device=self.device)
        except RuntimeError:  # a backend without device generators
            g = torch.Generator()
        g.manual_seed(seed)
        return g

    # -- training --------------------------------------------------------------------------
    def fit(
        self,
        X,
        epochs: int = 30,
        batch_size: int = 32,
        lr: float = 1e-3,
        progress: bool = True,
        *,
        condition=None,
        validation=None,
        validation_condition=None,
    ) -> dict:
        """Train on images ``X`` ``(N, H, W)`` (any units; normalised internally by the mean
        and standard deviation of the first ``fit``'s data, kept in the checkpoint).

        Returns the history: a dict of per-epoch lists ``loss`` (negative ELBO per image,
        nats, plus JRVAE's class-balance term), ``recon``, ``kl_z``, ``kl_pose``,
        ``kl_class``, ``class_balance`` (the batch class marginal's KL from uniform, nats;
        0 without classes), ``seconds`` and, with ``validation`` images, ``val_loss``.
        Calling ``fit`` again continues training (same optimiser state unless ``lr``
        changes; the shuffling seed moves on).

        Raises ``TrainingDivergedError`` (a ``FloatingPointError``) naming the epoch when a
        batch loss is NaN/inf or exceeds 1e3 times the first batch's loss (at least
        0.5 nat per pixel): the learning rate is too large (see ``DivergenceGuard``).
        """
        X = self._images(X)
        if int(epochs) < 1 or int(batch_size) < 1 or not lr > 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        cond = self._condition(condition, len(X))
        m = self.module
        if not self._fitted:
            mean, std = mean_std(X, "X")
            m.x_mean.fill_(mean)
            m.x_std.fill_(std if std > 0 else 1.0)
        data = self._normalise(X)
        inputs = m.training_inputs(data)  # what the loss reads, once per fit (not per batch)
        val = None
        if validation is not None:
            V = self._images(validation, "validation")
            val = (m.training_inputs(self._normalise(V, "validation")),
                   self._condition(validation_condition, len(V)))
        seed = self.seed + 1000 * self._n_fits
        self._n_fits += 1
        g_perm = torch.Generator().manual_seed(seed)
        g_noise = self._generator(seed + 1)
        g_val = self._generator(seed + 2)
        if self._optimizer is None or self._optimizer.param_groups[0]["lr"] != lr:
            self._optimizer = torch.optim.Adam(m.parameters(), lr=lr)
        opt = self._optimizer  # kept across fit calls, so training continues smoothly
        beta = self.config["beta"]
        keys = ("loss", "recon", "kl_z", "kl_pose", "kl_class", "class_balance")
        history: dict[str, list] = {k: [] for k in (*keys, "seconds")}
        if val is not None:
            history["val_loss"] = []
        from tqdm.auto import tqdm

        n = len(data)
        # stops a NaN/inf or exploding loss; the floor is the loss of standardised images
        # reconstructed by their mean, 0.5 nat per pixel
        h, w = self.image_shape
        guard = DivergenceGuard(floor=0.5 * h * w)
        bar = tqdm(range(1, int(epochs) + 1), disable=not progress, desc=type(self).__name__)
        for epoch in bar:
            t0 = time.perf_counter()
            m.train()
            perm = torch.randperm(n, generator=g_perm).to(self.device)
            sums = dict.fromkeys(keys, 0.0)
            for start in range(0, n, batch_size):
                idx = perm[start:start + batch_size]
                batch = m.batch(inputs, idx)
                loss, parts = m.loss(batch, None if cond is None else cond[idx], g_noise,
                                     beta, self._capacity(), self.config["top_hypotheses"])
                value = float(loss.detach())
                guard.check(value, epoch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self._step += 1
                w = len(idx) / n
                sums["loss"] += value * w
                for k, v in parts.items():
                    sums[k] += v * w
            for k in keys:
                history[k].append(sums[k])
            history["seconds"].append(time.perf_counter() - t0)
            if val is not None:
                history["val_loss"].append(self._eval_loss(*val, g_val, batch_size))
            bar.set_postfix(loss=f"{sums['loss']:.1f}")
        self._fitted = True
        m.eval()
        if m.translation:
            self._set_origin(data, cond)
        return history

    def _safe_batch(self, batch_size: int) -> int:
        """Cap a batch so the coordinate decoder's per-pixel activations stay near 100 MB."""
        cfg = self.config
        if cfg["decoder"] != "coordinate":
            return int(batch_size)
        h, w = self.image_shape
        per_image = max(cfg["n_classes"], 1) * self.module.k * h * w * cfg["hidden"][0]
        return int(max(1, min(batch_size, 25_000_000 // per_image)))

    @torch.inference_mode()
    def _set_origin(self, data: torch.Tensor, cond, batch_size: int = 512) -> None:
        """Fix the gauge of the canonical frame: put its origin at the mean object position,
        ``origin = mean_i R(-angle_i) offset_i`` over the training images (raw network
        outputs), so that reported offsets average to zero in the object's own frame. It
        changes no likelihood: ``encode`` subtracts ``R(angle) origin`` from the offsets and
        ``decode`` adds it back."""
        m = self.module
        batch_size = self._safe_batch(batch_size)
        total = torch.zeros(2, device=data.device)
        for s in range(0, len(data), batch_size):
            c = None if cond is None else cond[s:s + batch_size]
            total += m.infer(data[s:s + batch_size], c)["offset_raw_object_frame"].sum(0)
        m.origin.copy_(total / len(data))

    def _capacity(self):
        """(target KL_z in nats at this step, gamma) or None."""
        cap = self.config["capacity"]
        if cap is None:
            return None
        z_max, gamma, steps = cap
        return (z_max * min(1.0, self._step / max(steps, 1.0)), gamma)

    @torch.no_grad()
    def _eval_loss(self, inputs: dict, cond, gen, batch_size) -> float:
        """Negative ELBO per image of ``training_inputs`` rows, every hypothesis exact."""
        self.module.eval()
        total, n = 0.0, len(inputs["target"])
        for s in range(0, n, batch_size):
            c = None if cond is None else cond[s:s + batch_size]
            batch = self.module.batch(inputs, torch.arange(s, min(s + batch_size, n),
                                                           device=self.device))
            loss, _ = self.module.loss(batch, c, gen, self.config["beta"], self._capacity(),
                                       None)
            total += float(loss) * len(batch["target"])
        return total / n

    # -- inference -------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, X, condition=None, batch_size: int = 512) -> Encoding:
        """Posterior means for images ``X`` ``(N, H, W)``; see ``Encoding`` for the fields.

        The most probable (class and) angle hypothesis is chosen by decoding every one of them
        (exact posterior), so encoding costs about one training forward pass per image.
        A model that was neither fitted nor loaded raises ``NotFittedError`` (a ValueError).
        """
        X = self._images(X)
        cond = self._condition(condition, len(X))
        self._check_fitted()
        m = self.module
        m.eval()
        batch_size = self._safe_batch(batch_size)
        out: dict[str, list] = {}
        for s in range(0, len(X), batch_size):
            x = self._normalise(X[s:s + batch_size])
            c = None if cond is None else cond[s:s + batch_size]
            for k, v in m.infer(x, c).items():
                out.setdefault(k, []).append(v.float().cpu().numpy())
        res = {k: np.concatenate(v) for k, v in out.items()}
        return Encoding(
            angle=res.get("angle"), offset=res.get("offset"), z=res["z"], z_std=res["z_std"],
            class_probs=res.get("class_probs"), scale=res.get("scale"),
            angle_probs=res.get("angle_probs"),
        )

    @torch.inference_mode()
    def decode(self, z, angle=None, offset=None, *, scale=None, classes=None,
               condition=None, batch_size: int = 512) -> np.ndarray:
        """Images ``(N, H, W)`` (data units) for latents ``z`` ``(N, latent_dim)``.

        Pose is optional: ``angle`` ``(N,)`` or scalar radians (anticlockwise as displayed),
        ``offset`` ``(N, 2)`` or ``(2,)`` pixels (row, col), ``scale`` ``(N,)`` or scalar; a
        missing pose is the canonical one (0, (0, 0), 1). JRVAE: ``classes`` ``(N,)`` integer
        labels or ``(N, n_classes)`` probabilities/one-hot (default class 0). A plain VAE
        accepts no pose. Like ``encode``, it needs a fitted or loaded model.
        """
        d = self.config["latent_dim"]
        z = as_float_array(z, "z", ndim=(1, 2))
        z = z.reshape(1, -1) if z.ndim == 1 else z
        if z.shape[1] != d:
            raise ValueError(f"z must have {d} columns (latent_dim), got shape {z.shape}")
        n = len(z)
        m = self.module
        if not (m.rotation or m.translation or m.use_scale) and any(
            v is not None for v in (angle, offset, scale)
        ):
            raise ValueError(f"{type(self).__name__} has no pose; call decode(z) without one")
        if angle is not None and not m.rotation:
            raise ValueError("this model has no rotation; drop angle")
        if offset is not None and not m.translation:
            raise ValueError("this model has no translation; drop offset")
        if scale is not None and not m.use_scale:
            raise ValueError("this model has no scale latent; drop scale")

        def per_sample(v, name, tail=()):
            if v is None:
                return None
            a = as_float_array(v, name)
            try:
                return np.array(np.broadcast_to(a, (n, *tail)), dtype=np.float32)
            except ValueError:
                raise ValueError(f"{name} of shape {a.shape} does not fit {n} latents") from None

        angle = per_sample(angle, "angle")
        offset = per_sample(offset, "offset", (2,))
        scale = per_sample(scale, "scale")
        if scale is not None and (scale <= 0).any():
            raise ValueError("scale must be > 0")
        onehot = self._class_onehot(classes, n)
        cond = self._condition(condition, n)
        self._check_fitted()
        posed = m.rotation or m.translation or m.use_scale
        dev = self.device
        out = []
        m.eval()
        for s in range(0, n, batch_size):
            sl = slice(s, s + batch_size)
            zt = torch.as_tensor(z[sl], device=dev)
            b = len(zt)
            a = o = sc = None
            if posed:
                a = (torch.as_tensor(angle[sl], device=dev) if angle is not None
                     else zt.new_zeros(b)).view(b, 1)
                if m.translation:
                    o = rotate_vectors(m.origin.expand(b, 1, 2), a)
                    if offset is not None:
                        o = o + torch.as_tensor(offset[sl], device=dev).view(b, 1, 2)
                if scale is not None:
                    sc = torch.as_tensor(scale[sl], device=dev).view(b, 1)
            oh = None if onehot is None else onehot[sl]
            cc = None if cond is None else cond[sl]
            x = m.decode(zt, a, o, sc, oh, cc)[:, 0]
            out.append((x * m.x_std + m.x_mean).float().cpu().numpy())
        return np.concatenate(out)

    def _class_onehot(self, classes, n: int) -> torch.Tensor | None:
        c = self.config["n_classes"]
        if c == 0:
            if classes is not None:
                raise ValueError("this model has no classes (n_classes=0); drop classes")
            return None
        if classes is None:
            classes = np.zeros(n, dtype=int)
        arr = as_float_array(classes, "classes", ndim=(0, 1, 2))
        if arr.ndim == 2:
            if arr.shape != (n, c):
                raise ValueError(f"classes must be (N,) labels or ({n}, {c}), got {arr.shape}")
            return torch.as_tensor(arr, device=self.device)
        lab = np.broadcast_to(arr, (n,)).astype(int)
        if (lab < 0).any() or (lab >= c).any() or not np.allclose(lab, np.broadcast_to(arr, (n,))):
            raise ValueError(f"class labels must be integers in [0, {c - 1}]")
        return torch.eye(c, device=self.device)[torch.as_tensor(lab, device=self.device)]

    def manifold(self, n: int = 9, dims: tuple[int, int] = (0, 1), *, classes=None,
                 condition=None, quantile: float = 0.05, limits=None) -> np.ndarray:
        """Decoded traversal of two content latents at pose zero, the others at 0.

        Returns ``(n, n, H, W)``: ``grid[i, j]`` has latent ``dims[0]`` at its j-th value and
        latent ``dims[1]`` at its (n-1-i)-th (a mosaic shows ``dims[0]`` increasing to the
        right and ``dims[1]`` upwards). The values are ``n`` standard-normal quantiles from
        ``quantile`` to ``1 - quantile`` (the prior), or ``n`` evenly spaced values within
        ``limits = ((lo0, hi0), (lo1, hi1))`` (e.g. the range of the encoded data). With
        ``latent_dim == 1`` the shape is ``(1, n, H, W)``. JRVAE: ``classes`` picks the class.
        """
        from scipy.stats import norm

        d = self.config["latent_dim"]
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if limits is None:
            vals = [norm.ppf(np.linspace(quantile, 1 - quantile, n))] * 2
        else:
            lim = np.asarray(limits, dtype=float).reshape(-1, 2)
            if len(lim) == 1:
                lim = np.repeat(lim, 2, axis=0)
            vals = [np.linspace(lo, hi, n) for lo, hi in lim[:2]]
        if d == 1:
            z = vals[0].reshape(-1, 1)
            rows, cols = 1, n
        else:
            i, j = (int(v) for v in dims)
            if not (0 <= i < d and 0 <= j < d and i != j):
                raise ValueError(f"dims must be two different latents in [0, {d - 1}]")
            z = np.zeros((n * n, d))
            jj, ii = np.meshgrid(np.arange(n), np.arange(n))
            z[:, i] = vals[0][jj.ravel()]
            z[:, j] = vals[1][::-1][ii.ravel()]
            rows, cols = n, n
        if classes is not None and np.ndim(classes) == 0:
            classes = np.full(len(z), int(classes))
        if condition is not None and np.ndim(condition) == 1:
            condition = np.tile(np.asarray(condition, dtype=np.float32), (len(z), 1))
        imgs = self.decode(z, classes=classes, condition=condition)
        return imgs.reshape(rows, cols, *self.image_shape)


class VAE(_VAEFamily):
    """Plain VAE (no pose): ``VAE(image_shape, latent_dim=2, condition_dim=0, encoder="mlp",
    decoder="resample", hidden=(128, 128), beta=1.0, seed=0, device="auto")``.

    The baseline that shows why invariance is needed: on rotated objects its latents encode
    the rotation. ``encode`` returns ``angle=None, offset=None``.
    """

    def __init__(self, image_shape, latent_dim: int = 2, **kwargs):
        for name in ("translation", "scale", "n_classes"):
            if kwargs.pop(name, False):
                raise ValueError(f"VAE has no pose or classes; use RVAE/JRVAE for {name}=")
        super().__init__(image_shape, latent_dim, **kwargs)


class RVAE(_VAEFamily):
    """Rotation-invariant VAE; ``translation=True`` adds offsets, ``scale=True`` a scale.

    ``RVAE(image_shape, latent_dim=2, *, translation=True, scale=False, condition_dim=0,
    encoder="mlp", decoder="resample", hidden=(128, 128), pose="enumerate", n_rotations=12,
    symmetry=1, angle_prior=0.1, translation_prior=0.1, scale_prior=0.1, encoder_size=32,
    top_hypotheses=1, beta=1.0, capacity=None, seed=0, device="auto")``

    - ``n_rotations``: K angle hypotheses enumerated exactly (``pose="enumerate"``), each
      refined by up to 1.5 half-steps; ``pose="regress"`` regresses the angle directly (the
      anchors' design, for comparison). 12 by default (JRVAE: 16): on the test objects
      (seeds 0-3, 3 epochs) K = 12 and K = 16 reached the same angle (0.998-0.999), offset
      (0.979-0.982 against 0.978-0.983) and shape (0.984-0.988 against 0.987-0.988)
      correlations, and K = 12 trains 2-3 % faster.
    - ``symmetry``: n-fold symmetric objects (graphene: 3, rods: 2) put all K hypotheses in
      ``[0, 2 pi / n)`` and encode angles modulo ``2 pi / n``; 1 (the default) assumes
      nothing.
    - priors: ``angle_prior`` (radians) is the spread of the angle posterior the KL aims at
      (the mean is free); offsets have a ``N(0, (translation_prior * max(H, W) / 2)^2)``
      prior in pixels; scale is ``exp(scale_prior * s)`` with ``s ~ N(0, 1)``.
    - ``encoder_size``: images larger than this (pixels per side) are area-averaged down to it
      before encoding (the decoder still works at full size).
    - ``encoder="mlp"`` (default) evaluates the MLP on all K turned copies in about one pass:
      its first layer reads the polar-Fourier coefficients of the input's disk and is
      rotation-equivariant by construction (``helpers.models.polar``); the pose heads read
      each copy's features, the content latents their mean over the copies (invariant).
      ``encoder="conv"`` runs a small CNN on each explicit copy.
    - ``top_hypotheses``: training ranks every angle hypothesis without gradient (on half the
      pixels of 2x-binned images) and decodes only this many most probable ones per image
      with gradient (1 by default for RVAE: on the test objects, seeds 0-3, 1 and 2 reached
      the same angle, offset and shape correlations after 3 epochs, and 1 is cheaper; JRVAE
      keeps 4 of its class x angle hypotheses). ``encode`` always scores every hypothesis exactly.
    """

    _rotation = True

    def __init__(self, image_shape, latent_dim: int = 2, *, translation: bool = True,
                 n_rotations: int = 12, top_hypotheses: int = 1, **kwargs):
        kwargs.pop("n_classes", None)
        super().__init__(image_shape, latent_dim, translation=translation,
                         n_rotations=n_rotations, top_hypotheses=top_hypotheses, **kwargs)


class JRVAE(_VAEFamily):
    """Joint rotation-invariant VAE: content latents plus one categorical latent of
    ``n_classes`` (one canonical image per class), with rotation and optional translation.

    ``JRVAE(image_shape, latent_dim=2, n_classes=4, *, translation=True, capacity=None,
    class_balance=10.0, ...)`` plus every ``RVAE`` argument (``n_rotations=16``,
    ``top_hypotheses=4`` by default).

    The class is enumerated exactly together with the K angle hypotheses: its posterior is
    computed from the reconstruction errors of every (class, angle) pair, so no relaxation
    (Gumbel-softmax) is needed and no classifier has to catch up with the decoders.
    ``capacity = (z_max, gamma, steps)`` anneals the continuous KL as in the anchors: the
    term ``beta * KL_z`` becomes ``gamma * |KL_z - C(t)|`` with ``C`` growing linearly from 0
    to ``z_max`` nats over ``steps`` optimiser steps, so that the classes form before the
    continuous latents can absorb the differences between them (the anchors used
    ``(5.0, 30.0, 25000)``). The default, ``capacity=None``, trains the plain ELBO, which with
    the exact class posterior separated the four card glyphs fastest (see ``tests``); the
    discrete KL needs no annealing here, it is part of the mixture likelihood.

    ``class_balance`` weighs ``KL(q(c) || uniform)``, ``q(c)`` the mean class posterior over
    each training batch (of the hypotheses decoded with gradient), added to the loss. The
    ELBO's class prior is uniform already; this holds the aggregate posterior to it. Without
    it, two card glyphs often shared one class while another class stayed empty or split a
    glyph: 2000 easiest cards, 3 epochs, model seeds 0-11, 5 of 12 runs ended at 0.72-0.75
    class accuracy, against 1 of 12 (0.75) with 10, the other 11 at 1.00; on difficulty
    level 2 (seeds 0-3) the accuracy went from 0.63-1.00 (mean 0.81) to 0.85-1.00 (mean
    0.95). 30 balanced faster but split glyphs after 6 epochs (0.77, 0.80 on 2 of 6 seeds).
    Lower it, or set 0, for classes of very unequal size.
    """

    _rotation = True

    def __init__(self, image_shape, latent_dim: int = 2, n_classes: int = 4, *,
                 translation: bool = True, capacity=None, class_balance: float = 10.0,
                 **kwargs):
        if int(n_classes) < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        super().__init__(image_shape, latent_dim, translation=translation,
                         n_classes=n_classes, capacity=capacity, class_balance=class_balance,
                         **kwargs)
