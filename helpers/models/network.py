"""The torch network behind ``VAE``, ``RVAE`` and ``JRVAE`` (one class with switches).

Pose inference over the full circle (``pose="enumerate"``): one encoder trunk sees K copies
of the input turned by ``-2 pi k / (K n)`` (``n`` = symmetry), each through the same centred
disk. From each copy it predicts a bounded angle refinement, an offset (in the copy's frame,
turned back) and a scale. The content latents come from features averaged over the K
copies, which makes them rotation-invariant by construction (they cannot encode the angle).
The default MLP trunk never builds the copies: its first layer is evaluated for all of them
at once from the polar-Fourier coefficients of the disk (``polar.py``), the pose heads read
each copy's first-layer features and the content branch their mean. The conv trunk, and
JRVAE, run the trunk on each explicit copy and average the content evidence. The decoder
draws one canonical image per sample (per class for JRVAE); the posed images are cheap
resamplings of it. The posterior over the discrete hypotheses (K angles x C classes) is
computed *exactly* from their reconstruction errors,

    q(c, k | x) = softmax_{c,k}( -(err_ck + KL_pose_k) ),

and the negative ELBO per image is ``-logsumexp_{c,k}(-(err_ck + KL_pose_k)) + log(C K)``
plus ``KL(q(z|x) || N(0, I))``. An exact posterior follows the decoder without lag, which lets
a model leave the symmetric "average shape" it starts from (an amortised score head would have
to learn that first) and makes the classes of JRVAE a mixture of canonical images.

Training cost: every hypothesis is scored without gradient (for RVAE on a checkerboard half
of the pixels of 2x-binned images), then the ``top`` most probable ones are decoded at full
resolution with gradient; they carry nearly all the posterior mass, so the loss is the mixture
likelihood restricted to them (an upper bound of the full negative ELBO, tight once the
posterior is peaked). ``infer`` scores every hypothesis exactly at full resolution. The data
side (the encoder's polar-Fourier input, the compared pixels) is computed once per ``fit``
(``training_inputs``), the poses and KL of all hypotheses in one hand-differentiated step
(``pose_sample.PoseSampler``), and the decoded hypothesis' rendering and error in another
(``decoder.point_errors``): at a batch of 32 on a CPU a step's cost is mostly the number of
small operations, not their arithmetic.

Reconstruction error: ``err = 0.5 * sum_p w_p (x_p - x_hat_p)^2`` on images normalised by the
training mean and standard deviation (a Gaussian likelihood of unit variance, up to a
constant), over the compared pixels ``p``: for RVAE the centred disk the encoder sees (``w``:
1 inside, a soft 1-pixel edge), otherwise all pixels (``w = 1``). Only those pixels are
rendered (``decoder.point_errors``).
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

__all__ = ["InvariantNet", "class_posteriors", "class_marginal_kl"]


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
    """Encoder trunk + heads + decoder; statistics live in buffers (saved with the weights).

    cfg keys: image_shape, latent_dim, rotation, translation, scale, n_classes,
    condition_dim, symmetry, pose, n_rotations, angle_prior, translation_prior, scale_prior,
    encoder_size, encoder, decoder, hidden, class_balance (optional, default 0).
    """

    def __init__(self, cfg: dict):
        super().__init__()
        h, w = cfg["image_shape"]
        self.image_shape = (h, w)
        self.d = cfg["latent_dim"]
        self.rotation = cfg["rotation"]
        self.translation = cfg["translation"]
        self.use_scale = cfg["scale"]
        self.n_classes = cfg["n_classes"]
        self.class_balance = cfg.get("class_balance", 0.0)
        self.cdim = cfg["condition_dim"]
        self.symmetry = cfg["symmetry"]
        self.enumerate = self.rotation and cfg["pose"] == "enumerate"
        self.k = cfg["n_rotations"] if self.enumerate else 1
        self.angle_prior = cfg["angle_prior"]
        self.scale_prior = cfg["scale_prior"]
        self.offset_prior = cfg["translation_prior"] * max(h, w) / 2.0  # pixels
        self.posed = self.rotation or self.translation or self.use_scale
        # encoder input: the image brought to at most `encoder_size` pixels per side
        f = min(1.0, cfg["encoder_size"] / max(h, w))
        self.enc_shape = (max(4, round(h * f)), max(4, round(w * f)))
        period = 2 * math.pi / self.symmetry
        self.register_buffer("hyp", torch.arange(self.k, dtype=torch.float32) * period / self.k)
        # The MLP trunk on K turned copies is evaluated in one pass from the polar-Fourier
        # coefficients of the input's disk (polar.py). Other trunks, and JRVAE, see the
        # copies themselves: with the polar trunk, JRVAE merged two of the four card glyphs
        # at seed 0 (class accuracy 0.75 after 3 epochs, against 1.00 on the copies).
        self.polar_trunk = self.enumerate and cfg["encoder"] == "mlp" and not self.n_classes
        if self.polar_trunk:
            # angular frequencies up to pi R / 3 (a 6-pixel wavelength on the outer ring),
            # sampled at 3 angles per period of the highest. Against pi R / 2 on 1-pixel
            # samples (F = 23, T = 88 at 28 px): 14 % less time per training step, and the
            # test objects' angle, offset and shape correlations after 3 epochs (seeds 0-3)
            # were as good or better.
            rings = min(self.enc_shape) // 2
            n_freq = math.ceil(math.pi * rings / 3) + 1
            self.polar = PolarFourier(self.enc_shape, n_angles=4 * math.ceil(3 * n_freq / 4),
                                      n_freq=n_freq)
            self.trunk = PolarMLPEncoder(self.polar, self.hyp, tuple(cfg["hidden"]))
        else:
            self.trunk = make_encoder(cfg["encoder"], self.enc_shape, tuple(cfg["hidden"]))
        # the pose variables, each with a Gaussian posterior: the heads output all their means,
        # then all their log standard deviations (then, without the polar trunk, the content)
        names = (["angle"] if self.rotation else []) + (
            ["offset_row", "offset_col"] if self.translation else []) + (
            ["scale"] if self.use_scale else [])
        self.n_pose = n_pose = len(names)
        if self.polar_trunk:  # pose from the per-copy features, content from their mean
            self.pose_head = nn.Linear(self.trunk.copy_features + self.cdim, 2 * n_pose)
            self.z_head = nn.Linear(self.trunk.out_features + self.cdim, 2 * self.d)
            angle_bias = self.pose_head.bias
        else:
            self.head = nn.Linear(self.trunk.out_features + self.cdim, 2 * n_pose + 2 * self.d)
            angle_bias = self.head.bias
        if self.rotation:  # start the angle's posterior spread at the prior's, not at 1 rad
            with torch.no_grad():
                angle_bias[n_pose + names.index("angle")] = math.log(self.angle_prior)
        margin = 2 * self.offset_prior if self.translation else 0.0
        # the likelihood compares the pixels the encoder sees: with angle hypotheses, the
        # centred disk (every rotation keeps it in view, so the canvas needs no corners);
        # JRVAE keeps the whole square: on the disk it merged two of the four card glyphs at
        # seed 0 (class accuracy 0.75 after 3 epochs, against 1.00)
        self.disk = self.enumerate and not self.n_classes
        canvas = canvas_shape((h, w), margin, self.disk) if self.posed else (h, w)
        dec_in = self.d + self.n_classes + self.cdim
        self.decoder = make_decoder(cfg["decoder"], (h, w), dec_in, tuple(cfg["hidden"]), canvas)
        self.refine = 1.5 * period / (2 * self.k)  # half a bin, with some overlap
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
            grid = F.affine_grid(theta, [self.k, 1, *self.enc_shape], align_corners=False)
            self.register_buffer("copy_grid", grid.reshape(1, self.k * self.enc_shape[0],
                                                           self.enc_shape[1], 2),
                                 persistent=False)
        # training ranks the angle hypotheses on 2x-binned images, at half of their pixels (a
        # checkerboard; then decodes the best few at full resolution): resample decoder, even
        # sizes; not with classes, whose discovery was slower with the coarse ranking. The
        # checkerboard took 2-3 % off a training step (28 px, paired steps) and left the
        # test objects' angle, offset and shape correlations after 3 epochs as they were
        # (seeds 0-3: angle 0.998-0.999, offsets 0.978-0.983, shape 0.987-0.988)
        even = h % 2 == 0 and w % 2 == 0 and canvas[0] % 2 == 0 and canvas[1] % 2 == 0
        resample = cfg["decoder"] == "resample" and self.posed and not self.n_classes
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
        self.register_buffer("x_mean", torch.zeros(()))
        self.register_buffer("x_std", torch.ones(()))

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
        n, d = self.n_pose, self.d
        if self.polar_trunk:
            per_copy, pooled = self.trunk(xin)  # (K, B, F0), (B, F)
            b = pooled.shape[0]
            if self.cdim:
                per_copy = torch.cat([per_copy, cond.unsqueeze(0).expand(self.k, b, -1)], 2)
                pooled = torch.cat([pooled, cond], dim=1)
            pose_out = self.pose_head(per_copy)  # (K, B, 2n)
            z_out = self.z_head(pooled)  # (B, 2d): invariant already
            z_log_std = z_out[:, d:].clamp(LOG_STD_MIN, LOG_STD_MAX)
            enc = {"z": z_out[:, :d], "z_std": z_log_std.exp(), "z_log_std": z_log_std}
        else:
            b = xin.shape[0]
            if self.k > 1:
                grid = self.copy_grid.expand(b, -1, -1, -1)
                copies = F.grid_sample(xin, grid, mode="bilinear", padding_mode="zeros",
                                       align_corners=False).view(b, self.k, *self.enc_shape)
            else:
                copies = xin
            if self.enumerate:  # the disk every turn keeps in view
                copies = copies * self.mask
            copies = copies.reshape(b * self.k, 1, *self.enc_shape)
            feats = self.trunk(copies)
            if self.cdim:
                feats = torch.cat([feats, cond.repeat_interleave(self.k, 0)], dim=1)
            out = self.head(feats).view(b, self.k, -1)
            pose_out = out[..., : 2 * n].transpose(0, 1)
            if self.k == 1:
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
        if self.cdim:
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
            theta, kl_pose = None, z.new_zeros(b, self.k)
        c = max(self.n_classes, 1)
        if c == 1 and not self.cdim:
            return z.unsqueeze(1), theta, kl_pose
        parts = [z.unsqueeze(1).expand(b, c, self.d)]
        if self.n_classes:
            parts.append(torch.eye(c, device=z.device, dtype=z.dtype).expand(b, c, c))
        if self.cdim:
            parts.append(cond.unsqueeze(1).expand(b, c, self.cdim))
        zin = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
        return zin, theta, kl_pose

    def _errors(self, target, state, theta, idx=None):
        """``0.5 ||x - x_hat||^2`` of hypotheses against the compared pixels ``target``
        ``(B, P)`` (``_target``), from the decoder's pose-free ``state`` ``(B * C, ...)``
        (``decoder.prepare``) and the poses ``theta`` ``(K, B, 2, 3)`` (None without pose):
        all ``(B, C, K)`` when ``idx`` is None, else ``(B, M)`` for the flat (class * K +
        angle) indices ``idx`` ``(B, M)``."""
        b = target.shape[0]
        c = state.shape[0] // b
        if theta is None:  # the plain VAE: whole images, its one hypothesis always kept
            return squared_error(self.decoder.draw(state).flatten(2).view(b, c, 1, -1), target,
                                 None)
        if idx is None:
            th = theta if c == 1 else theta.repeat_interleave(c, 1)
            shape = (b, c, self.k)
        else:
            m = idx.shape[1]
            ki = idx if c == 1 else idx % self.k
            th = theta.gather(0, ki.T.reshape(m, b, 1, 1).expand(m, b, 2, 3))  # (M, B, 2, 3)
            if c > 1:  # one canvas per (image, class) kept: render each at its pose
                tail = state.shape[1:]
                st = state.view(b, c, -1).gather(
                    1, (idx // self.k).unsqueeze(-1).expand(b, m, state[0].numel()))
                state, th = st.reshape(b * m, *tail), th.transpose(0, 1).reshape(1, b * m, 2, 3)
            shape = (b, m)
        rows = state.shape[0] // b  # canvases per image: the target repeated for each
        tgt = target if rows == 1 else target.repeat_interleave(rows, 0)
        err = self.decoder.point_errors(state, self.lik_xy1, th, tgt, self.lik_half_weight)
        return err.view(shape)

    def _coarse_errors(self, batch: dict, state, theta):
        """Approximate errors of all hypotheses ``(B, C, K)`` for ranking them: computed on
        images binned ``self.coarse`` x ``self.coarse`` (resample decoder only), scaled to
        full-resolution units. ``batch``: rows of ``training_inputs``."""
        f = self.coarse
        if f == 1:
            return self._errors(batch["target"], state, theta)
        b = batch["target"].shape[0]
        c = state.shape[0] // b
        th = theta if c == 1 else theta.repeat_interleave(c, 1)
        # normalised source coordinates do not depend on the resolution: the same poses at
        # the binned pixels' centres (full-resolution units) read the binned canvas. (Reading
        # the full-resolution canvas there instead, without binning it, ranked as well on the
        # test objects but aliased fine lattices: notebook 01's MoS2 angle modes came out
        # 22 degrees apart instead of 60.)
        canvas_low = F.avg_pool2d(state.unsqueeze(1), f)[:, 0]
        x_hat = sample_points(canvas_low, self.coarse_xy1, th)
        # each binned pixel stands for f^2 pixels (in its weight)
        return squared_error(x_hat.reshape(b, c, self.k, -1), batch["target_low"],
                             self.coarse_half_weight)

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
        ``training_inputs``.

        All C x K hypotheses are scored without gradient; the gradient flows through the
        ``top`` most probable ones (None: all of them), which carry nearly all the posterior
        mass and most of the cost otherwise. ``capacity = (c_z, gamma)`` replaces
        ``beta * KL_z`` by ``gamma * |KL_z - c_z|``. With classes and more than one
        hypothesis kept, ``class_balance * KL(q(c) || uniform)`` is added, ``q(c)`` the
        batch mean of the class posteriors (part ``class_balance``: that KL, nats).
        """
        enc = self.encode_input(batch["input"], cond)

        def noise(t):
            return torch.randn(t.shape, generator=gen, device=t.device, dtype=t.dtype)

        zin, theta, kl_pose = self._sample(enc, cond, noise)
        target = batch["target"]
        b, c, k = target.shape[0], max(self.n_classes, 1), self.k
        state = self.decoder.prepare(zin.reshape(b * c, -1))  # pose-free part, once
        weighted = kl_pose if beta == 1 else beta * kl_pose  # (B, K)
        if top is None or top >= c * k:  # exact: every hypothesis carries gradient
            err = self._errors(target, state, theta).view(b, c * k)
            kl_sel = kl_pose if c == 1 else kl_pose.repeat(1, c)
            cls_sel = None if c == 1 else torch.arange(c, device=err.device).repeat_interleave(
                k).expand(b, -1)
        else:  # score all hypotheses cheaply, decode the best `top` with gradient
            with torch.no_grad():
                rough = self._coarse_errors(batch, state.detach(), theta.detach())
                score = (rough + weighted.unsqueeze(1)).view(b, c * k)
                idx = (score.argmin(1, keepdim=True) if top == 1 else
                       torch.topk(score, top, dim=1, largest=False).indices)  # (B, top)
            err = self._errors(target, state, theta, idx)
            kl_sel = kl_pose.gather(1, idx if c == 1 else idx % k)
            cls_sel = None if top == 1 else idx // k
        total = err + (kl_sel if beta == 1 else beta * kl_sel)  # (B, M): the hypotheses kept
        log_ck = math.log(c * k)
        if total.shape[1] == 1:  # one kept: the bound is its cost, the posterior one-hot
            return self._total_loss(enc, total[:, 0], log_ck, beta, capacity,
                                    recon=(err[:, 0], 0.0), kl_pose=(kl_sel[:, 0], math.log(k)),
                                    kl_class=(None, math.log(c)))
        # -log of the mixture likelihood over the C x K hypotheses (the M kept: a bound)
        nll = -torch.logsumexp(-total, dim=1)
        qc = balance = None
        if c > 1 and self.class_balance:  # the batch's class marginal against uniform
            qc = class_posteriors(torch.softmax(-total, dim=1), cls_sel, c)
            balance = class_marginal_kl(qc)
        with torch.no_grad():
            logq = torch.log_softmax(-total, dim=1)
            q = logq.exp()
            recon = (q * err).sum(1)
            kl_p = (q * (kl_sel + logq)).sum(1)
            kl_c = None  # one class: no class KL
            if c > 1:
                qc = class_posteriors(q, cls_sel, c) if qc is None else qc.detach()
                kl_c = (qc * qc.clamp_min(1e-12).log()).sum(1)
                kl_p = kl_p - kl_c
        extra = {} if balance is None else {"class_balance": (balance.detach().expand(b), 0.0)}
        loss, parts = self._total_loss(enc, nll, log_ck, beta, capacity, recon=(recon, 0.0),
                                       kl_pose=(kl_p, log_ck - math.log(c)),
                                       kl_class=(kl_c, math.log(c)), **extra)
        if balance is not None:
            loss = loss + self.class_balance * balance
        return loss, parts

    @staticmethod
    def _total_loss(enc, nll, log_ck, beta, capacity, **parts):
        """The batch-mean loss ``log(C K) + nll + beta KL_z`` (or the capacity form) from the
        per-image ``nll`` ``(B,)`` (without ``log(C K)``), and the parts' batch means as
        floats: each part is ``(per-image tensor without gradient, or None; a constant)``."""
        kl_z = (0.5 * (enc["z"] ** 2 + enc["z_std"] ** 2 - 1) - enc["z_log_std"]).sum(1)
        if capacity is None:
            loss = (nll + kl_z if beta == 1 else nll + beta * kl_z).mean() + log_ck
        else:
            cap_z, gamma = capacity
            loss = nll.mean() + log_ck + gamma * (kl_z.mean() - cap_z).abs()
        names = [name for name, (v, _) in parts.items() if v is not None]
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
