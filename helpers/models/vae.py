"""The invariant VAE family: ``VAE``, ``RVAE`` (rotation, optional translation and scale),
``JRVAE`` (joint continuous + categorical latents) and the conditional option
(``condition_dim``), sharing ``fit``, ``encode``, ``decode``, ``manifold``, ``save`` and
``Class.load``. One network class, ``network.InvariantNet``, serves them all; which pose it
infers is its ``invariances`` set (``VAE``: none, ``RVAE``: rotation plus optional
translation and scale).

"The reference implementations" below are those of the papers the notebooks reconstruct:
pyroVED (rVAE, jrVAE) and AtomAI.

Generative model (images ``x`` of shape ``(H, W)``, normalised by the training mean/std)::

    z ~ N(0, I_d)                         content latents
    c ~ Uniform{1..C}                     class (JRVAE only)
    angle, offset, scale                  pose (RVAE/JRVAE): angle in radians, offset in
                                          pixels (row, col), scale = exp(scale_prior * s)
    x = render(g(z, c, y), pose) + noise  g: decoder of a canonical image, y: condition

Angle convention: counter-clockwise *as displayed* (``imshow``, origin upper left); an input
turned anticlockwise on screen by ``t`` encodes to an angle larger by ``t`` (modulo
``2 pi / symmetry``). ``helpers.models.pose`` implements it.

Pose inference over the full circle (``pose="enumerate"``, the default): the encoder proposes,
for each of K angle hypotheses ``2 pi k / (K n)`` (``n = symmetry``), a bounded angle
refinement, an offset and a scale; the content latents are pooled over the hypotheses and so
cannot encode the angle (``helpers.models.network`` says how). The decoder draws one
canonical image per sample (per class for JRVAE) and the K posed images are resamplings of
it. The posterior over the discrete hypotheses (K angles x C classes) is computed exactly
from their reconstruction errors,

    q(c, k | x) = softmax_{c,k}( -(err_ck + KL_pose_k) ),

and the negative ELBO per image is::

    -ELBO(x) = -log( 1/(K C) sum_{k,c} exp(-err_kc - KL_pose_k) ) + KL(q(z|x) || N(0, I))

with ``err = 0.5 sum_p w_p (x_p - x_hat_p)^2`` on normalised images (a unit-variance Gaussian
likelihood up to a constant) over the compared pixels ``p`` (see "What is modelled"). An
exact posterior follows the decoder without lag, which lets a model leave the symmetric
"average shape" it starts from and makes JRVAE's classes a mixture of canonical images.

Priors: the angle prior penalises only the spread of the angle (``angle_prior`` radians), as
in the reference implementations; offsets have a
``N(0, (translation_prior * max(H, W) / 2)^2)`` prior in pixels; the scale latent a standard
normal. ``pose="regress"`` is the reference implementations' design (one encoder pass, angle
regressed directly), kept for comparison: it does not learn full-circle rotations. ``beta``
weights the KL terms; ``capacity=(z_max, gamma, steps)`` replaces ``beta * KL_z`` by
``gamma * |KL_z - C(t)|``, ``C`` growing linearly from 0 to ``z_max`` nats over ``steps``
optimiser steps (the reference implementations' capacity annealing). JRVAE adds
``class_balance * KL(q(c) || uniform)`` per batch, ``q(c)`` the batch mean of the class
posteriors: it holds the aggregate posterior to the uniform class prior the ELBO already
assumes, which keeps every class in use (see ``JRVAE``).

Defaults (chosen on full-circle rotated test objects; ``benchmarks/rvae_speed.py`` measures
speed and quality): Adam ``lr=1e-3`` (the reference implementations' 1e-4 leaves the angle
unused on full-circle rotations), batch 32, K = 12 angle hypotheses of which the best-ranked
one is decoded with gradient (JRVAE: 16 hypotheses, the 4 best decoded), MLP
encoder/decoder 2 x 128 tanh, resample decoder, images larger than 32 pixels area-averaged to
32 for the encoder only.

What is modelled: with angle hypotheses (RVAE), the largest centred disk of the image, the
part the encoder sees and every rotation keeps in view; the likelihood compares only it
(``w_p`` 1 inside, a soft 1-pixel edge), and ``decode``/``manifold`` show it (the corners at
the training mean). So the canonical canvas only needs to cover that disk plus the offsets,
and rotation never brings empty corners into the comparison. JRVAE and models without
rotation model the whole square (``w_p = 1``; JRVAE's canvas covers every rotation of it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .base import Estimator, as_float_array, mean_std, not_fitted
from .network import InvariantNet
from .pose import rotate_vectors
from .training import History, run_epochs

__all__ = ["Encoding", "LatentGrid", "VAE", "RVAE", "JRVAE"]

# the pose arguments of RVAE and JRVAE, with RVAE's defaults; a plain VAE refuses them
POSE_DEFAULTS = dict(translation=True, scale=False, pose="enumerate", n_rotations=12,
                     symmetry=1, angle_prior=0.1, translation_prior=0.1, scale_prior=0.1,
                     top_hypotheses=1)
# the loss parts every history records (0 where a model has no such term)
LOSS_PARTS = ("recon", "kl_z", "kl_pose", "kl_class", "class_balance")


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


# -- the constructor arguments, in groups -------------------------------------------------------
def _as_shape(image_shape) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (H, W), got {image_shape!r}") from None
    if h < 4 or w < 4:
        raise ValueError(f"image_shape must be at least 4 x 4 pixels, got {(h, w)}")
    return h, w


def _pose_settings(options: dict, **defaults) -> dict:
    """Take the pose arguments (``POSE_DEFAULTS``' names) out of ``options``, with the
    class's ``defaults`` where it differs from RVAE's, checked and as stored in the config."""
    given = {name: options.pop(name, default)
             for name, default in {**POSE_DEFAULTS, **defaults}.items()}
    if given["pose"] not in ("enumerate", "regress"):
        raise ValueError(f"pose must be 'enumerate' or 'regress', got {given['pose']!r}")
    if int(given["n_rotations"]) < 1 or int(given["symmetry"]) < 1:
        raise ValueError("n_rotations and symmetry must be positive integers")
    priors = ("angle_prior", "translation_prior", "scale_prior")
    if min(given[name] for name in priors) <= 0:
        raise ValueError("angle_prior, translation_prior and scale_prior must be > 0")
    if int(given["top_hypotheses"]) < 1:
        raise ValueError(f"top_hypotheses must be >= 1, got {given['top_hypotheses']}")
    out = dict(given, translation=bool(given["translation"]), scale=bool(given["scale"]))
    for name in ("n_rotations", "symmetry", "top_hypotheses"):
        out[name] = int(given[name])
    for name in priors:
        out[name] = float(given[name])
    return out


def _refuse(options: dict, names, model: str, fix: str) -> None:
    """Raise ``TypeError`` naming ``fix`` when ``options`` holds any of ``names``."""
    given = sorted(set(options) & set(names))
    if given:
        raise TypeError(f"{model} takes no {', '.join(given)}: {fix}")


class LatentGrid(np.ndarray):
    """Decoded images on a grid of latent values, ``(rows, cols, H, W)``, that know their values.

    A plain ``ndarray`` in every computation; ``x_values`` ``(cols,)`` holds the latent value of
    each column (left to right), ``y_values`` ``(rows,)`` that of each row (top to bottom), and
    ``dims`` the two latents (0-based), so a figure can put latent values on its axes.
    """

    x_values: np.ndarray
    y_values: np.ndarray
    dims: tuple[int, ...]

    @classmethod
    def wrap(cls, images: np.ndarray, x_values, y_values, dims) -> LatentGrid:
        grid = np.asarray(images).view(cls)
        grid.x_values = np.asarray(x_values, dtype=float)
        grid.y_values = np.asarray(y_values, dtype=float)
        grid.dims = tuple(int(d) for d in dims)
        return grid

    def __array_finalize__(self, obj) -> None:
        self.x_values = getattr(obj, "x_values", None)
        self.y_values = getattr(obj, "y_values", None)
        self.dims = getattr(obj, "dims", None)

    def __array_wrap__(self, obj, context=None, return_scalar=False):
        # a reduction (grid.max(), np.abs(grid - x).mean()) gives a plain number, not a 0-d grid
        if obj.ndim == 0:
            return obj.view(np.ndarray)[()]
        return super().__array_wrap__(obj, context, return_scalar)


class _VAEFamily(Estimator):
    """Shared implementation; use ``VAE``, ``RVAE`` or ``JRVAE``.

    The arguments come in groups: the data (``image_shape``, ``latent_dim``,
    ``condition_dim``), the architecture (``encoder``, ``decoder``, ``hidden``,
    ``encoder_size``), the objective (``beta``, ``capacity``), then what the subclass adds:
    ``pose_settings`` (RVAE/JRVAE: the checked pose arguments, ``_pose_settings``) and
    ``class_settings`` (JRVAE: ``n_classes``, ``class_balance``). The config keeps exactly
    the subclass's own arguments, so that ``Class.load`` rebuilds it.
    """

    def __init__(
        self,
        image_shape,
        latent_dim: int = 2,
        *,
        condition_dim: int = 0,
        encoder: str = "mlp",
        decoder: str = "resample",
        hidden=(128, 128),
        encoder_size: int = 32,
        beta: float = 1.0,
        capacity: tuple | list | None = None,
        pose_settings: dict | None = None,
        class_settings: dict | None = None,
        seed: int = 0,
        device: str = "auto",
    ):
        image_shape = _as_shape(image_shape)
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if int(condition_dim) < 0:
            raise ValueError(f"condition_dim must be >= 0, got {condition_dim}")
        if encoder not in ("mlp", "conv"):
            raise ValueError(f"encoder must be 'mlp' or 'conv', got {encoder!r}")
        if decoder not in ("resample", "coordinate"):
            raise ValueError(f"decoder must be 'resample' or 'coordinate', got {decoder!r}")
        hidden = [int(v) for v in hidden]
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden must be one or more positive layer widths, got {hidden}")
        if capacity is not None and len(capacity) != 3:
            raise ValueError("capacity must be (z_max, gamma, steps) or None")
        pose_settings = dict(pose_settings or {})
        class_settings = dict(class_settings or {})
        super().__init__(
            seed=seed, device=device, image_shape=list(image_shape), latent_dim=int(latent_dim),
            condition_dim=int(condition_dim), encoder=encoder, decoder=decoder, hidden=hidden,
            encoder_size=int(encoder_size), beta=float(beta),
            capacity=None if capacity is None else [float(v) for v in capacity],
            **pose_settings, **class_settings,
        )
        self.image_shape = image_shape
        self.top_hypotheses = pose_settings.get("top_hypotheses", 1)
        invariances = set()
        if pose_settings:
            invariances = {"rotation"} | {name for name in ("translation", "scale")
                                          if pose_settings[name]}
        network_pose = {name: pose_settings[name] for name in (
            "pose", "n_rotations", "symmetry", "angle_prior", "translation_prior",
            "scale_prior") if name in pose_settings}
        self._build_module(lambda: InvariantNet(
            image_shape, int(latent_dim), invariances, condition_dim=int(condition_dim),
            encoder=encoder, decoder=decoder, hidden=hidden, encoder_size=int(encoder_size),
            **network_pose, **class_settings))
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
        """Images standardised by the training mean and std (``ValueError`` on overflow)."""
        return self.module.standardize.checked(torch.as_tensor(X, device=self.device), name)

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise not_fitted(type(self).__name__)

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
        patience: int | None = None,
    ) -> History:
        """Train on images ``X`` ``(N, H, W)`` (any units; normalised internally by the mean
        and standard deviation of the first ``fit``'s data, kept in the checkpoint).

        Returns the ``History``: per-epoch lists ``loss`` (negative ELBO per image, nats,
        plus JRVAE's class-balance term), ``recon``, ``kl_z``, ``kl_pose``, ``kl_class``,
        ``class_balance`` (the batch class marginal's KL from uniform, nats; 0 without
        classes), ``seconds`` and, with ``validation`` images, ``val_loss`` (every
        hypothesis scored exactly). Calling ``fit`` again continues training (same
        optimiser state unless ``lr`` changes; the shuffling seed moves on).

        ``patience`` (with ``validation``): stop after that many epochs in a row whose
        ``val_loss`` does not improve and keep the weights of the best epoch
        (``history.best_epoch``, ``history.stopped_early``); None (the default) trains every
        epoch.

        Raises ``TrainingDivergedError`` (a ``FloatingPointError``) naming the epoch when a
        batch loss is NaN/inf or exceeds 1e3 times the first batch's loss (at least
        0.5 nat per pixel): the learning rate is too large (see ``DivergenceGuard``).
        """
        X = self._images(X)
        if int(epochs) < 1 or int(batch_size) < 1 or not lr > 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        if patience is not None and (validation is None or int(patience) < 1):
            raise ValueError(f"patience={patience!r} needs validation images and must be >= 1: "
                             "pass validation=X_val, or patience=None to train every epoch")
        cond = self._condition(condition, len(X))
        m = self.module
        if not self._fitted:
            m.standardize.set_statistics(*mean_std(X, "X"))
        data = self._normalise(X)
        inputs = m.training_inputs(data)  # what the loss reads, once per fit (not per batch)
        val = None
        if validation is not None:
            V = self._images(validation, "validation")
            val = (m.training_inputs(self._normalise(V, "validation")),
                   self._condition(validation_condition, len(V)))
        # the fit's random streams: shuffling (on the CPU: the same order on any device),
        # reparametrisation noise, validation noise
        seed = self._fit_seed()
        g_perm = torch.Generator().manual_seed(seed)
        g_noise = self._generator(seed + 1)
        g_val = self._generator(seed + 2)
        validate = None if val is None else (lambda: self._eval_loss(*val, g_val, batch_size))
        if self._optimizer is None or self._optimizer.param_groups[0]["lr"] != lr:
            self._optimizer = torch.optim.Adam(m.parameters(), lr=lr)
        n = len(data)

        def epoch_batches(epoch):
            perm = torch.randperm(n, generator=g_perm).to(self.device)
            for start in range(0, n, batch_size):
                idx = perm[start:start + batch_size]
                yield idx, len(idx) / n

        def batch_loss(idx):
            loss, parts = m.loss(m.batch(inputs, idx), None if cond is None else cond[idx],
                                 g_noise, self.config["beta"], self._capacity(),
                                 self.top_hypotheses)
            return loss, {name: parts.get(name, 0.0) for name in LOSS_PARTS}

        def count_step():
            self._step += 1

        h, w = self.image_shape
        # the divergence floor: the loss of standardised images reconstructed by their mean,
        # 0.5 nat per pixel
        history = run_epochs(
            module=m, optimizer=self._optimizer, epoch_batches=epoch_batches,
            batch_loss=batch_loss, epochs=int(epochs), desc=type(self).__name__,
            progress=progress, guard_floor=0.5 * h * w, validate=validate,
            patience=None if patience is None else int(patience), after_step=count_step)
        self._fitted = True
        if m.translation:
            self._set_origin(data, cond)
        return history

    def _safe_batch(self, batch_size: int) -> int:
        """Cap a batch so the coordinate decoder's per-pixel activations stay near 100 MB."""
        cfg = self.config
        if cfg["decoder"] != "coordinate":
            return int(batch_size)
        h, w = self.image_shape
        per_image = max(self.module.n_classes, 1) * self.module.n_angles * h * w * cfg["hidden"][0]
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
                                       top=None)
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
            out.append(m.standardize.inverse(x).float().cpu().numpy())
        return np.concatenate(out)

    def _class_onehot(self, classes, n: int) -> torch.Tensor | None:
        c = self.module.n_classes
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
                 condition=None, quantile: float = 0.05, limits=None,
                 axes=None) -> LatentGrid:
        """Decoded traversal of two content latents at pose zero, the others at 0.

        Returns a :class:`LatentGrid` ``(n, n, H, W)`` (an ndarray that also carries the
        latent values of its columns and rows): ``grid[i, j]`` has latent ``dims[0]`` at its
        j-th value and latent ``dims[1]`` at its (n-1-i)-th (a mosaic shows ``dims[0]``
        increasing to the right and ``dims[1]`` upwards). The values are ``n`` standard-normal
        quantiles from ``quantile`` to ``1 - quantile`` (the prior), or ``n`` evenly spaced
        values within ``limits = ((lo0, hi0), (lo1, hi1))`` (e.g. the range of the encoded
        data). With ``latent_dim == 1`` the shape is ``(1, n, H, W)``. JRVAE: ``classes``
        picks the class. ``axes``: a ``(d, d)`` orthonormal matrix whose columns are rotated
        latent axes (e.g. :func:`helpers.analysis.orient_latents`); ``dims`` and the values
        then refer to the coordinates ``z @ axes``.
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
        if axes is not None:
            rot = np.asarray(axes, dtype=float)
            if rot.shape != (d, d) or not np.allclose(rot.T @ rot, np.eye(d), atol=1e-6):
                raise ValueError(f"axes must be an orthonormal ({d}, {d}) matrix (columns: the "
                                 f"rotated axes, e.g. from orient_latents), got shape {rot.shape}")
            z = z @ rot.T  # coordinates along the rotated axes -> the model's own latents
        if classes is not None and np.ndim(classes) == 0:
            classes = np.full(len(z), int(classes))
        if condition is not None and np.ndim(condition) == 1:
            condition = np.tile(np.asarray(condition, dtype=np.float32), (len(z), 1))
        imgs = self.decode(z, classes=classes, condition=condition)
        grid = imgs.reshape(rows, cols, *self.image_shape)
        if d == 1:
            return LatentGrid.wrap(grid, vals[0], [], (0,))
        return LatentGrid.wrap(grid, vals[0], vals[1][::-1], (i, j))


class VAE(_VAEFamily):
    """Plain VAE (no pose): ``VAE(image_shape, latent_dim=2, *, condition_dim=0,
    encoder="mlp", decoder="resample", hidden=(128, 128), encoder_size=32, beta=1.0,
    capacity=None, seed=0, device="auto")``.

    The baseline that shows why invariance is needed: on rotated objects its latents encode
    the rotation. ``encode`` returns ``angle=None, offset=None``. Pose arguments
    (``translation``, ``n_rotations``, ...) and classes raise ``TypeError``: use ``RVAE`` or
    ``JRVAE``.
    """

    def __init__(self, image_shape, latent_dim: int = 2, **options):
        _refuse(options, POSE_DEFAULTS, "VAE", "it has no pose; use RVAE for a model that "
                "infers rotation (translation=, scale= add offsets and a scale)")
        _refuse(options, ("n_classes", "class_balance"), "VAE", "it has no classes; use JRVAE")
        super().__init__(image_shape, latent_dim, **options)


class RVAE(_VAEFamily):
    """Rotation-invariant VAE; ``translation=True`` adds offsets, ``scale=True`` a scale.

    ``RVAE(image_shape, latent_dim=2, *, translation=True, scale=False, pose="enumerate",
    n_rotations=12, symmetry=1, angle_prior=0.1, translation_prior=0.1, scale_prior=0.1,
    top_hypotheses=1, condition_dim=0, encoder="mlp", decoder="resample", hidden=(128, 128),
    encoder_size=32, beta=1.0, capacity=None, seed=0, device="auto")``

    - ``n_rotations``: K angle hypotheses enumerated exactly (``pose="enumerate"``), each
      refined by up to 1.5 half-steps; ``pose="regress"`` regresses the angle directly (the
      reference implementations' design, for comparison). 12 by default (JRVAE: 16): as
      accurate as 16 on full-circle rotations, and cheaper.
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
      with gradient (RVAE: 1, the posterior being nearly one-hot once trained; JRVAE keeps 4
      of its class x angle hypotheses). ``encode`` always scores every hypothesis exactly.

    Classes (``n_classes``, ``class_balance``) raise ``TypeError``: use ``JRVAE``.
    """

    def __init__(self, image_shape, latent_dim: int = 2, **options):
        _refuse(options, ("n_classes", "class_balance"), "RVAE",
                "it has no classes; use JRVAE(image_shape, latent_dim, n_classes)")
        pose_settings = _pose_settings(options)
        super().__init__(image_shape, latent_dim, pose_settings=pose_settings, **options)


class JRVAE(_VAEFamily):
    """Joint rotation-invariant VAE: content latents plus one categorical latent of
    ``n_classes`` (one canonical image per class), with rotation and optional translation.

    ``JRVAE(image_shape, latent_dim=2, n_classes=4, *, class_balance=10.0, ...)`` plus every
    ``RVAE`` argument (``n_rotations=16``, ``top_hypotheses=4`` by default).

    The class is enumerated exactly together with the K angle hypotheses: its posterior is
    computed from the reconstruction errors of every (class, angle) pair, so no relaxation
    (Gumbel-softmax) is needed and no classifier has to catch up with the decoders.
    ``capacity = (z_max, gamma, steps)`` anneals the continuous KL as the reference
    implementations do: the term ``beta * KL_z`` becomes ``gamma * |KL_z - C(t)|`` with ``C``
    growing linearly from 0 to ``z_max`` nats over ``steps`` optimiser steps, so that the
    classes form before the continuous latents can absorb the differences between them (the
    reference implementations used ``(5.0, 30.0, 25000)``). The default, ``capacity=None``,
    trains the plain ELBO: with the exact class posterior the classes need no head start, and
    the discrete KL needs no annealing, it is part of the mixture likelihood.

    ``class_balance`` weighs ``KL(q(c) || uniform)``, ``q(c)`` the mean class posterior over
    each training batch (of the hypotheses decoded with gradient), added to the loss. The
    ELBO's class prior is uniform already; this holds the aggregate posterior to it. Without
    it, two similar classes can end up sharing one class while another class stays empty or
    splits one; a much larger weight balances faster but splits classes in longer training.
    Lower it, or set 0, for classes of very unequal size.
    """

    def __init__(self, image_shape, latent_dim: int = 2, n_classes: int = 4, *,
                 class_balance: float = 10.0, **options):
        if int(n_classes) < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        if not float(class_balance) >= 0:
            raise ValueError(f"class_balance must be >= 0, got {class_balance}")
        pose_settings = _pose_settings(options, n_rotations=16, top_hypotheses=4)
        super().__init__(image_shape, latent_dim, pose_settings=pose_settings,
                         class_settings=dict(n_classes=int(n_classes),
                                             class_balance=float(class_balance)),
                         **options)
