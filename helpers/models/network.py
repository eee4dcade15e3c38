"""The torch network behind ``VAE``, ``RVAE`` and ``JRVAE``: ``InvariantNet``.

The generative model, the exact posterior over the angle (and class) hypotheses and the
negative ELBO are written out once, in ``helpers.models.vae``'s module docstring; this module
computes them. The invariances are one constructor argument, a set of ``"rotation"``,
``"translation"`` and ``"scale"`` (pyroVED's ``invariances``); the empty set is a plain VAE.

How the encoder sees K angle hypotheses: one trunk looks at K copies of the input turned by
``-2 pi k / (K n)`` (``n`` = symmetry), each through the same centred disk, and predicts from
each copy a bounded angle refinement, an offset (in the copy's frame, turned back) and a
scale. The content latents come from features averaged over the copies, so they cannot
encode the angle. The default MLP trunk never builds the copies: its first layer is
evaluated for all of them at once from the polar-Fourier coefficients of the disk
(``polar.py``); the pose heads read each copy's first-layer features and the content branch
their mean. The conv trunk, and JRVAE, run the trunk on each explicit copy. The decoder draws
one canonical image per sample (per class for JRVAE); the posed images are resamplings of it.

Training cost: every hypothesis is scored without gradient (for RVAE on a checkerboard half
of the pixels of 2x-binned images), then the ``top`` most probable ones are decoded at full
resolution with gradient; they carry nearly all the posterior mass, so the loss is the mixture
likelihood restricted to them (an upper bound of the full negative ELBO, tight once the
posterior is peaked). ``infer`` scores every hypothesis exactly at full resolution. The data
side (the encoder's polar-Fourier input, the compared pixels) is computed once per ``fit``
(``training_inputs``), the poses and KL of all hypotheses in one hand-differentiated step
(``pose_sample.PoseSampler``), and the decoded hypotheses' rendering and error in another
(``decoder.point_errors``): at a batch of 32 on a CPU a step's cost is mostly the number of
small operations, not their arithmetic. Only the compared pixels are rendered: for RVAE the
centred disk the encoder sees (weights 1 inside, a soft 1-pixel edge), otherwise all pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .decoders import canvas_shape, make_decoder
from .encoders import PolarMLPEncoder, make_encoder
from .polar import PolarFourier
from .pose import (
    disk_mask,
    homogeneous,
    pixel_points,
    pose_matrices,
    rotate_vectors,
    sample_points,
    squared_error,
)
from .pose_sample import LOG_STD_MAX, LOG_STD_MIN, PoseSampler
from .standardize import Standardize

__all__ = ["INVARIANCES", "InvariantNet", "class_posteriors", "class_marginal_kl"]

INVARIANCES = ("rotation", "translation", "scale")


def class_posteriors(q: torch.Tensor, classes: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-image class posteriors ``(B, C)`` from the posterior probabilities ``q`` ``(B, M)``
    of M hypotheses per image and their class indices ``classes`` ``(B, M)``."""
    per_image = torch.zeros(q.shape[0], n_classes, device=q.device, dtype=q.dtype)
    return per_image.scatter_add(1, classes, q)


def class_marginal_kl(class_probs: torch.Tensor) -> torch.Tensor:
    """``KL(q(c) || uniform)`` in nats (a scalar tensor, differentiable), ``q(c)`` the batch
    mean of the per-image class posteriors ``class_probs`` ``(B, C)``."""
    marginal = class_probs.mean(0)
    return (marginal * (marginal * class_probs.shape[1]).clamp_min(1e-12).log()).sum()


def _std(raw: torch.Tensor) -> torch.Tensor:
    return raw.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()


class InvariantNet(nn.Module):
    """Encoder trunk + heads + decoder of the VAE family; the training data's mean and
    standard deviation (``standardize``) and the canonical frame's origin live in buffers
    (saved with the weights).

    ``InvariantNet(image_shape, latent_dim, invariances, **options)``:

    - ``image_shape``: ``(H, W)`` pixels; ``latent_dim``: number of content latents ``d``.
    - ``invariances``: a set (or any iterable) of ``"rotation"``, ``"translation"`` and
      ``"scale"`` (pyroVED's ``invariances=["r", "t", "s"]``), the pose the encoder infers and
      the decoder applies; empty for a plain VAE. ``RVAE`` builds ``{"rotation",
      "translation"}`` by default, ``VAE`` the empty set.
    - ``n_classes``: ``C`` categorical classes (JRVAE; 0 without); ``condition_dim``: width of a
      known condition given to encoder and decoder (0 without).
    - architecture: ``encoder`` (``"mlp"`` or ``"conv"``), ``decoder`` (``"resample"`` or
      ``"coordinate"``), ``hidden`` layer widths, ``encoder_size`` (the encoder reads images
      area-averaged to at most this many pixels per side).
    - the pose model (used only with rotation, translation or scale): ``pose``
      (``"enumerate"``: K angle hypotheses, or ``"regress"``: one regressed angle),
      ``n_rotations`` (K), ``symmetry`` (n-fold objects), the prior spreads ``angle_prior``
      (radians), ``translation_prior`` (fraction of half the image side) and
      ``scale_prior`` (``scale = exp(scale_prior * s)``).
    - ``class_balance``: weight of ``KL(q(c) || uniform)`` in the loss (JRVAE).

    Everything else follows from these (see ``__init__``): whether the angle is enumerated,
    whether the MLP trunk runs on polar-Fourier coefficients, which pixels the likelihood
    compares and whether training ranks hypotheses on binned images.
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        latent_dim: int,
        invariances=(),
        *,
        n_classes: int = 0,
        condition_dim: int = 0,
        encoder: str = "mlp",
        decoder: str = "resample",
        hidden: tuple[int, ...] = (128, 128),
        encoder_size: int = 32,
        pose: str = "enumerate",
        n_rotations: int = 16,
        symmetry: int = 1,
        angle_prior: float = 0.1,
        translation_prior: float = 0.1,
        scale_prior: float = 0.1,
        class_balance: float = 0.0,
    ):
        super().__init__()
        if isinstance(invariances, str):
            raise ValueError(f"invariances must be a set of names such as {{{invariances!r}}}, "
                             f"not the string {invariances!r}")
        invariances = frozenset(invariances)
        unknown = invariances - set(INVARIANCES)
        if unknown:
            raise ValueError(f"unknown invariances {sorted(unknown)}; choose from {INVARIANCES}")
        h, w = image_shape
        hidden = tuple(hidden)
        self.image_shape = (h, w)
        self.invariances = invariances
        self.rotation = "rotation" in invariances
        self.translation = "translation" in invariances
        self.use_scale = "scale" in invariances
        self.posed = bool(invariances)
        self.latent_dim = latent_dim
        self.n_classes = n_classes
        self.condition_dim = condition_dim
        self.class_balance = class_balance
        self.symmetry = symmetry
        # K angle hypotheses enumerated over [0, 2 pi / symmetry) (1: no enumeration)
        self.enumerate = self.rotation and pose == "enumerate"
        self.n_angles = n_rotations if self.enumerate else 1
        self.angle_prior = angle_prior
        self.scale_prior = scale_prior
        self.offset_prior = translation_prior * max(h, w) / 2.0  # pixels
        # encoder input: the image brought to at most `encoder_size` pixels per side
        f = min(1.0, encoder_size / max(h, w))
        self.enc_shape = (max(4, round(h * f)), max(4, round(w * f)))
        period = 2 * math.pi / self.symmetry
        self.register_buffer("hyp", torch.arange(self.n_angles, dtype=torch.float32) * period
                             / self.n_angles)
        # The MLP trunk on K turned copies is evaluated in one pass from the polar-Fourier
        # coefficients of the input's disk (polar.py). Other trunks, and JRVAE, see the
        # copies themselves: the band-limited polar input separated JRVAE's classes less
        # reliably than the copies' pixels.
        self.polar_trunk = self.enumerate and encoder == "mlp" and not n_classes
        if self.polar_trunk:
            # angular frequencies up to pi R / 3 (a 6-pixel wavelength on the outer ring),
            # sampled at 3 angles per period of the highest: finer detail than the pose
            # needs costs time per step without improving the latents
            rings = min(self.enc_shape) // 2
            n_freq = math.ceil(math.pi * rings / 3) + 1
            self.polar = PolarFourier(self.enc_shape, n_angles=4 * math.ceil(3 * n_freq / 4),
                                      n_freq=n_freq)
            self.trunk = PolarMLPEncoder(self.polar, self.hyp, hidden)
        else:
            self.trunk = make_encoder(encoder, self.enc_shape, hidden)
        # the pose variables, each with a Gaussian posterior: the heads output all their means,
        # then all their log standard deviations (then, without the polar trunk, the content)
        names = (["angle"] if self.rotation else []) + (
            ["offset_row", "offset_col"] if self.translation else []) + (
            ["scale"] if self.use_scale else [])
        self.n_pose = n_pose = len(names)
        if self.polar_trunk:  # pose from the per-copy features, content from their mean
            self.pose_head = nn.Linear(self.trunk.copy_features + condition_dim, 2 * n_pose)
            self.z_head = nn.Linear(self.trunk.out_features + condition_dim, 2 * latent_dim)
            angle_bias = self.pose_head.bias
        else:
            self.head = nn.Linear(self.trunk.out_features + condition_dim,
                                  2 * n_pose + 2 * latent_dim)
            angle_bias = self.head.bias
        if self.rotation:  # start the angle's posterior spread at the prior's, not at 1 rad
            with torch.no_grad():
                angle_bias[n_pose + names.index("angle")] = math.log(self.angle_prior)
        margin = 2 * self.offset_prior if self.translation else 0.0
        # the likelihood compares the pixels the encoder sees: with angle hypotheses, the
        # centred disk (every rotation keeps it in view, so the canvas needs no corners);
        # JRVAE keeps the whole square, whose corners help tell its classes apart
        self.disk = self.enumerate and not n_classes
        canvas = canvas_shape((h, w), margin, self.disk) if self.posed else (h, w)
        decoder_in = latent_dim + n_classes + condition_dim
        self.decoder = make_decoder(decoder, (h, w), decoder_in, hidden, canvas)
        self.refine = 1.5 * period / (2 * self.n_angles)  # half a bin, with some overlap
        if n_pose:  # pose matrices and KL of every hypothesis (no saved state)
            prior = {"angle": self.angle_prior, "offset_row": self.offset_prior,
                     "offset_col": self.offset_prior, "scale": 1.0}
            self.pose_sampler = PoseSampler(names, self.hyp, self.refine if self.enumerate
                                            else None, prior, self.scale_prior,
                                            self.decoder.canvas)
        if self.enumerate and not self.polar_trunk:  # (the polar samples cover the disk)
            self.register_buffer("mask", disk_mask(self.enc_shape))
            # fixed sampling grid of the K copies turned by -hyp (not saved: rebuilt here)
            theta = pose_matrices(self.enc_shape, self.enc_shape, -self.hyp.view(1, -1))[0]
            grid = F.affine_grid(theta, [self.n_angles, 1, *self.enc_shape],
                                 align_corners=False)
            self.register_buffer("copy_grid", grid.reshape(1, self.n_angles * self.enc_shape[0],
                                                           self.enc_shape[1], 2),
                                 persistent=False)
        # training ranks the angle hypotheses on 2x-binned images, at half of their pixels (a
        # checkerboard), then decodes the best few at full resolution: resample decoder, even
        # sizes, no classes (a coarse ranking slowed the discovery of classes). The ranking
        # only picks hypotheses; the loss of the kept ones is computed at full resolution.
        even = h % 2 == 0 and w % 2 == 0 and canvas[0] % 2 == 0 and canvas[1] % 2 == 0
        resample = decoder == "resample" and self.posed and not n_classes
        self.coarse = 2 if (resample and even and min(h, w) >= 16) else 1
        if self.posed:  # the compared pixels (not saved: rebuilt here)
            self._register_pixels("lik", (h, w))
            if self.coarse > 1:  # binned pixels, their centres in full-resolution pixels
                self._register_pixels("coarse", (h // self.coarse, w // self.coarse),
                                      self.coarse, checkerboard=True)
            if self.disk:
                self.register_buffer("view_mask", disk_mask((h, w)), persistent=False)
        # origin of the canonical frame (pixels, object frame), set after fit so that offsets
        # average to zero in the object's frame; encode/decode apply it (a gauge, no effect
        # on the likelihood)
        self.register_buffer("origin", torch.zeros(2))
        # the training images' mean and standard deviation (set by the first fit)
        self.standardize = Standardize()

    def _register_pixels(self, name: str, shape: tuple[int, int], pixel_size: int = 1,
                         checkerboard: bool = False) -> None:
        """Buffers of the pixels the likelihood compares on an ``(H, W)`` grid (the centred
        disk if ``self.disk``, else all): ``{name}_index`` flat indices, ``{name}_xy1``
        (``pose.homogeneous`` of (row, col) from the centre, in pixels of size ``1 /
        pixel_size``) and ``{name}_half_weight``, half the weight of each squared error
        (the soft disk edge) times ``pixel_size^2`` (the pixels a binned one stands for).
        ``checkerboard``: only the pixels with an even row + col, each weighing for two."""
        index, weight, points = pixel_points(shape, self.disk)
        half = torch.full_like(points[:, 0], 0.5) if weight is None else 0.5 * weight
        if checkerboard:
            keep = (index // shape[1] + index % shape[1]) % 2 == 0
            index, half, points = index[keep], 2 * half[keep], points[keep]
        self.register_buffer(f"{name}_index", index, persistent=False)
        self.register_buffer(f"{name}_xy1", homogeneous(points * pixel_size), persistent=False)
        self.register_buffer(f"{name}_half_weight", half * pixel_size**2, persistent=False)

    # encoder -----------------------------------------------------------------------------
    @torch.no_grad()
    def encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the encoder trunk reads of normalised images ``x`` ``(B, H, W)`` (the data
        side, no gradient): for the polar trunk, the rows ``(B, F, 2, 2R)`` of their
        polar-Fourier coefficients that its first layer multiplies
        (``EquivariantDense.data_rows``), else the images brought to the encoder's size
        ``(B, 1, h, w)``."""
        xin = x.unsqueeze(1)
        if self.enc_shape != self.image_shape:
            xin = F.interpolate(xin, size=self.enc_shape, mode="area")
        if self.polar_trunk:
            return self.trunk.first.data_rows(self.polar(xin[:, 0]))
        return xin

    @torch.no_grad()
    def training_inputs(self, x: torch.Tensor) -> dict:
        """Everything ``loss`` reads of normalised images ``x`` ``(N, H, W)``, computed once
        per ``fit`` instead of once per batch (``batch`` picks images from it): ``input``
        (``encoder_input``), ``target`` ``(N, P)`` the compared pixels and, with the coarse
        ranking, ``target_low`` ``(N, P_low)`` the binned ones. Without pose they are views
        of ``x``."""
        out = {"input": self.encoder_input(x), "target": self._target(x)}
        if self.coarse > 1:
            low = F.avg_pool2d(x.unsqueeze(1), self.coarse).reshape(x.shape[0], -1)
            out["target_low"] = low[:, self.coarse_index]
        return out

    def batch(self, inputs: dict, idx: torch.Tensor) -> dict:
        """The images ``idx`` (1-d index tensor) of ``training_inputs`` (the polar trunk's
        ``input`` has its images on axis 2)."""
        return {k: v.index_select(2 if k == "input" and self.polar_trunk else 0, idx)
                for k, v in inputs.items()}

    def _target(self, x: torch.Tensor) -> torch.Tensor:
        """The compared pixels of images ``(B, H, W)``: ``(B, P)``."""
        flat = x.reshape(x.shape[0], -1)
        return flat[:, self.lik_index] if self.posed else flat

    def encode(self, x: torch.Tensor, cond: torch.Tensor | None) -> dict:
        """Posterior parameters for normalised images ``x`` ``(B, H, W)``; see
        ``encode_input``."""
        return self.encode_input(self.encoder_input(x), cond)

    def encode_input(self, xin: torch.Tensor, cond: torch.Tensor | None) -> dict:
        """Posterior parameters from the encoder's input ``xin`` (``encoder_input``).

        ``pose_out`` ``(K, B, 2n)``, hypothesis first: for the ``n`` pose variables (angle
        refinement, offset row and col in pixels in the copy's frame, scale, those the model
        has) the means, then the raw log standard deviations (``PoseSampler``). Pooled over
        the copies: ``z``, ``z_std``, ``z_log_std`` ``(B, d)``.
        """
        n, d = self.n_pose, self.latent_dim
        if self.polar_trunk:
            per_copy, pooled = self.trunk(xin)  # (K, B, F0), (B, F)
            b = pooled.shape[0]
            if self.condition_dim:
                per_copy = torch.cat([per_copy, cond.unsqueeze(0).expand(self.n_angles, b, -1)], 2)
                pooled = torch.cat([pooled, cond], dim=1)
            pose_out = self.pose_head(per_copy)  # (K, B, 2n)
            z_out = self.z_head(pooled)  # (B, 2d): invariant already
            z_log_std = z_out[:, d:].clamp(LOG_STD_MIN, LOG_STD_MAX)
            enc = {"z": z_out[:, :d], "z_std": z_log_std.exp(), "z_log_std": z_log_std}
        else:
            b = xin.shape[0]
            if self.n_angles > 1:
                grid = self.copy_grid.expand(b, -1, -1, -1)
                copies = F.grid_sample(xin, grid, mode="bilinear", padding_mode="zeros",
                                       align_corners=False).view(b, self.n_angles, *self.enc_shape)
            else:
                copies = xin
            if self.enumerate:  # the disk every turn keeps in view
                copies = copies * self.mask
            copies = copies.reshape(b * self.n_angles, 1, *self.enc_shape)
            feats = self.trunk(copies)
            if self.condition_dim:
                feats = torch.cat([feats, cond.repeat_interleave(self.n_angles, 0)], dim=1)
            out = self.head(feats).view(b, self.n_angles, -1)
            pose_out = out[..., : 2 * n].transpose(0, 1)
            if self.n_angles == 1:
                z_log_std = out[:, 0, 2 * n + d:].clamp(LOG_STD_MIN, LOG_STD_MAX)
                enc = {"z": out[:, 0, 2 * n: 2 * n + d], "z_std": z_log_std.exp(),
                       "z_log_std": z_log_std}
            else:  # content evidence averaged over the copies
                z_std = _std(out[..., 2 * n + d:]).mean(1)
                enc = {"z": out[..., 2 * n: 2 * n + d].mean(1), "z_std": z_std,
                       "z_log_std": z_std.log()}
        if n:
            enc["pose_out"] = pose_out
        return enc

    # decoder -----------------------------------------------------------------------------
    def decode(self, z, angle=None, offset=None, scale=None, cls_onehot=None, cond=None):
        """Normalised images ``(B, K, H, W)`` for latents ``(B, d)`` at poses ``(B, K)``
        (``offset`` in the network's raw frame, i.e. without ``origin``)."""
        parts = [z]
        if self.n_classes:
            parts.append(cls_onehot)
        if self.condition_dim:
            parts.append(cond)
        zin = torch.cat(parts, dim=1) if len(parts) > 1 else z
        out = self.decoder(zin, angle, offset, scale)
        return out * self.view_mask if self.disk else out  # only the disk is modelled

    # the hypotheses ----------------------------------------------------------------------
    def _sample(self, enc: dict, cond, noise=None):
        """Decoder inputs for every class ``(B, C, D)``, the poses of every hypothesis as
        ``pose.point_poses`` ``(K, B, 2, 3)`` (None without pose) and their KL
        ``(B, K)``; ``noise(t)`` draws standard normals like ``t`` (training), None uses the
        means."""
        z = enc["z"]
        b = z.shape[0]
        if noise is not None:
            z = torch.addcmul(z, enc["z_std"], noise(z))
        if self.n_pose:
            pose_out = enc["pose_out"]
            eps = None if noise is None else noise(pose_out[..., : self.n_pose])
            theta, kl_pose = self.pose_sampler(pose_out, eps)
        else:
            theta, kl_pose = None, z.new_zeros(b, self.n_angles)
        c = max(self.n_classes, 1)
        if c == 1 and not self.condition_dim:
            return z.unsqueeze(1), theta, kl_pose
        parts = [z.unsqueeze(1).expand(b, c, self.latent_dim)]
        if self.n_classes:
            parts.append(torch.eye(c, device=z.device, dtype=z.dtype).expand(b, c, c))
        if self.condition_dim:
            parts.append(cond.unsqueeze(1).expand(b, c, self.condition_dim))
        zin = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
        return zin, theta, kl_pose

    def _errors(self, target, state, poses, kept=None):
        """``0.5 ||x - x_hat||^2`` of hypotheses against the compared pixels ``target``
        ``(B, P)`` (``_target``), from the decoder's pose-free ``state`` ``(B * C, ...)``
        (``decoder.prepare``) and the poses ``poses`` ``(K, B, 2, 3)`` (None without pose):
        all ``(B, C, K)`` when ``kept`` is None, else ``(B, M)`` for the flat (class * K +
        angle) indices ``kept`` ``(B, M)``."""
        n_images = target.shape[0]
        n_classes = state.shape[0] // n_images
        if poses is None:  # the plain VAE: whole images, its one hypothesis always kept
            images = self.decoder.draw(state).flatten(2).view(n_images, n_classes, 1, -1)
            return squared_error(images, target, None)
        if kept is None:
            kept_poses = poses if n_classes == 1 else poses.repeat_interleave(n_classes, 1)
            shape = (n_images, n_classes, self.n_angles)
        else:
            n_kept = kept.shape[1]
            angle_index = kept if n_classes == 1 else kept % self.n_angles
            kept_poses = poses.gather(0, angle_index.T.reshape(n_kept, n_images, 1, 1).expand(
                n_kept, n_images, 2, 3))  # (M, B, 2, 3)
            if n_classes > 1:  # one canvas per (image, class) kept: render each at its pose
                tail = state.shape[1:]
                class_index = (kept // self.n_angles).unsqueeze(-1)
                kept_state = state.view(n_images, n_classes, -1).gather(
                    1, class_index.expand(n_images, n_kept, state[0].numel()))
                state = kept_state.reshape(n_images * n_kept, *tail)
                kept_poses = kept_poses.transpose(0, 1).reshape(1, n_images * n_kept, 2, 3)
            shape = (n_images, n_kept)
        per_image = state.shape[0] // n_images  # canvases per image: the target repeated
        repeated = target if per_image == 1 else target.repeat_interleave(per_image, 0)
        errors = self.decoder.point_errors(state, self.lik_xy1, kept_poses, repeated,
                                           self.lik_half_weight)
        return errors.view(shape)

    def _coarse_errors(self, batch: dict, state, poses):
        """Approximate errors of all hypotheses ``(B, C, K)`` for ranking them: computed on
        images binned ``self.coarse`` x ``self.coarse`` (resample decoder only), scaled to
        full-resolution units. ``batch``: rows of ``training_inputs``."""
        factor = self.coarse
        if factor == 1:
            return self._errors(batch["target"], state, poses)
        n_images = batch["target"].shape[0]
        n_classes = state.shape[0] // n_images
        all_poses = poses if n_classes == 1 else poses.repeat_interleave(n_classes, 1)
        # normalised source coordinates do not depend on the resolution: the same poses at
        # the binned pixels' centres (full-resolution units) read the binned canvas. Binning
        # the canvas too (not only the target) keeps fine lattices from aliasing in the
        # ranking.
        canvas_low = F.avg_pool2d(state.unsqueeze(1), factor)[:, 0]
        x_hat = sample_points(canvas_low, self.coarse_xy1, all_poses)
        # each binned pixel stands for factor^2 pixels (in its weight)
        return squared_error(x_hat.reshape(n_images, n_classes, self.n_angles, -1),
                             batch["target_low"], self.coarse_half_weight)

    def hypotheses(self, x, cond, enc: dict):
        """Errors ``(B, C, K)`` and pose KLs ``(B, K)`` of every (class, angle) hypothesis at
        the posterior means (``C = 1`` without classes)."""
        zin, theta, kl_pose = self._sample(enc, cond)
        state = self.decoder.prepare(zin.reshape(-1, zin.shape[-1]))
        return self._errors(self._target(x), state, theta), kl_pose

    def loss(self, batch: dict, cond, gen, beta: float, capacity: tuple | None,
             top: int | None = 4):
        """Negative ELBO per image, batch-averaged (a tensor), and its parts (floats, nats per
        image: ``recon``, ``kl_z``, ``kl_pose``, ``kl_class``), for ``batch``: rows of
        ``training_inputs``; ``cond`` the batch's conditions or None, ``gen`` the generator
        of the reparametrisation noise. The ELBO is the one in ``helpers.models.vae``.

        All C x K hypotheses are scored without gradient; the gradient flows through the
        ``top`` most probable ones (None: all of them), which carry nearly all the posterior
        mass and most of the cost otherwise. ``capacity = (c_z, gamma)`` replaces
        ``beta * KL_z`` by ``gamma * |KL_z - c_z|``. With classes and more than one
        hypothesis kept, ``class_balance * KL(q(c) || uniform)`` is added, ``q(c)`` the
        batch mean of the class posteriors (part ``class_balance``: that KL, nats).
        """
        posterior = self.encode_input(batch["input"], cond)

        def standard_normal(like):
            return torch.randn(like.shape, generator=gen, device=like.device, dtype=like.dtype)

        decoder_input, poses, kl_pose = self._sample(posterior, cond, standard_normal)
        target = batch["target"]
        n_images, n_classes, n_angles = target.shape[0], max(self.n_classes, 1), self.n_angles
        n_hypotheses = n_classes * n_angles
        # the decoder's pose-free part (canonical images), once per (image, class)
        canonical = self.decoder.prepare(decoder_input.reshape(n_images * n_classes, -1))
        scaled_kl_pose = kl_pose if beta == 1 else beta * kl_pose  # (B, K)
        if top is None or top >= n_hypotheses:  # exact: every hypothesis carries gradient
            errors = self._errors(target, canonical, poses).view(n_images, n_hypotheses)
            kept_kl_pose = kl_pose if n_classes == 1 else kl_pose.repeat(1, n_classes)
            kept_class = None if n_classes == 1 else torch.arange(
                n_classes, device=errors.device).repeat_interleave(n_angles).expand(n_images, -1)
        else:  # score all hypotheses cheaply, decode the best `top` with gradient
            with torch.no_grad():
                rough_errors = self._coarse_errors(batch, canonical.detach(), poses.detach())
                rough_cost = (rough_errors + scaled_kl_pose.unsqueeze(1)).view(n_images,
                                                                              n_hypotheses)
                kept = (rough_cost.argmin(1, keepdim=True) if top == 1 else
                        torch.topk(rough_cost, top, dim=1, largest=False).indices)  # (B, top)
            errors = self._errors(target, canonical, poses, kept)
            kept_kl_pose = kl_pose.gather(1, kept if n_classes == 1 else kept % n_angles)
            kept_class = None if top == 1 else kept // n_angles
        # cost of each kept hypothesis: -log p(x | hypothesis) + its weighted pose KL (B, M)
        cost = errors + (kept_kl_pose if beta == 1 else beta * kept_kl_pose)
        log_n_hypotheses = math.log(n_hypotheses)
        if cost.shape[1] == 1:  # one kept: the bound is its cost, the posterior one-hot
            return self._total_loss(posterior, cost[:, 0], log_n_hypotheses, beta, capacity,
                                    recon=(errors[:, 0], 0.0),
                                    kl_pose=(kept_kl_pose[:, 0], math.log(n_angles)),
                                    kl_class=(None, math.log(n_classes)))
        # -log of the mixture likelihood over the C x K hypotheses (the M kept: a bound)
        neg_log_mixture = -torch.logsumexp(-cost, dim=1)
        class_probs = balance_kl = None
        if n_classes > 1 and self.class_balance:  # the batch's class marginal against uniform
            class_probs = class_posteriors(torch.softmax(-cost, dim=1), kept_class, n_classes)
            balance_kl = class_marginal_kl(class_probs)
        with torch.no_grad():  # the parts, under the exact posterior over the kept hypotheses
            log_posterior = torch.log_softmax(-cost, dim=1)
            posterior_probs = log_posterior.exp()
            recon = (posterior_probs * errors).sum(1)
            kl_hypotheses = (posterior_probs * (kept_kl_pose + log_posterior)).sum(1)
            kl_class = None  # one class: no class KL
            if n_classes > 1:
                class_probs = (class_posteriors(posterior_probs, kept_class, n_classes)
                               if class_probs is None else class_probs.detach())
                kl_class = (class_probs * class_probs.clamp_min(1e-12).log()).sum(1)
                kl_hypotheses = kl_hypotheses - kl_class
        extra = ({} if balance_kl is None else
                 {"class_balance": (balance_kl.detach().expand(n_images), 0.0)})
        loss, parts = self._total_loss(
            posterior, neg_log_mixture, log_n_hypotheses, beta, capacity, recon=(recon, 0.0),
            kl_pose=(kl_hypotheses, log_n_hypotheses - math.log(n_classes)),
            kl_class=(kl_class, math.log(n_classes)), **extra)
        if balance_kl is not None:
            loss = loss + self.class_balance * balance_kl
        return loss, parts

    @staticmethod
    def _total_loss(posterior, neg_log_mixture, log_n_hypotheses, beta, capacity, **parts):
        """The batch-mean loss ``log(C K) + neg_log_mixture + beta KL_z`` (or the capacity
        form) from the per-image ``neg_log_mixture`` ``(B,)`` (without ``log(C K)``), and the
        parts' batch means as floats: each part is ``(per-image tensor without gradient, or
        None; a constant)``."""
        kl_z = (0.5 * (posterior["z"] ** 2 + posterior["z_std"] ** 2 - 1)
                - posterior["z_log_std"]).sum(1)
        if capacity is None:
            loss = (neg_log_mixture + kl_z if beta == 1 else
                    neg_log_mixture + beta * kl_z).mean() + log_n_hypotheses
        else:
            capacity_z, gamma = capacity
            loss = (neg_log_mixture.mean() + log_n_hypotheses
                    + gamma * (kl_z.mean() - capacity_z).abs())
        names = [name for name, (per_image, _) in parts.items() if per_image is not None]
        with torch.no_grad():  # one stacked mean and one transfer for all the parts
            means = torch.stack([parts[name][0] for name in names] + [kl_z]).mean(1).tolist()
        out = dict(zip(names, means[:-1]))
        out = {name: out.get(name, 0.0) + const for name, (_, const) in parts.items()}
        out["kl_z"] = means[-1]
        return loss, out

    @torch.no_grad()
    def infer(self, x, cond) -> dict:
        """Posterior means for normalised images, with the most probable hypothesis picked.

        Returns ``z``, ``z_std`` ``(B, d)``; ``angle`` ``(B,)`` in ``[0, 2 pi / n)``,
        ``offset`` ``(B, 2)`` (origin applied), ``scale`` ``(B,)``, ``angle_probs``
        ``(B, K)``, ``class_probs`` ``(B, C)`` for the parts the model has.
        """
        enc = self.encode(x, cond)
        out = {"z": enc["z"], "z_std": enc["z_std"]}
        if not (self.posed or self.n_classes):
            return out
        err, kl_pose = self.hypotheses(x, cond, enc)
        b, c, k = err.shape
        q = torch.softmax(-(err + kl_pose.unsqueeze(1)).view(b, -1), dim=1).view(b, c, k)
        qc = q.sum(2)
        cls = qc.argmax(1)
        rows = torch.arange(b, device=x.device)
        qk = q[rows, cls] / qc[rows, cls].unsqueeze(1)  # (B, K) given the best class
        best = qk.argmax(1)
        means = self.pose_sampler.means(enc["pose_out"]) if self.n_pose else {}
        angle = means["angle"][rows, best] if self.rotation else x.new_zeros(b)
        if self.rotation:
            out["angle"] = torch.remainder(angle, 2 * math.pi / self.symmetry)
            out["angle_probs"] = qk
        if self.translation:
            raw = means["offset"][rows, best]
            out["offset"] = raw - rotate_vectors(self.origin.expand_as(raw), angle)
            out["offset_raw_object_frame"] = rotate_vectors(raw, -angle)
        if self.use_scale:
            out["scale"] = means["scale"][rows, best]
        if self.n_classes:
            out["class_probs"] = qc
        return out
