"""Sampling the pose of every angle hypothesis, with its KL, as one autograd step.

The encoder's pose head gives, per hypothesis ``k`` and image ``b``, a Gaussian posterior
for each pose variable (angle refinement, offset row and col in the copy's frame, scale):
means ``mu`` and log standard deviations. ``PoseSampler`` turns them into the
``(2, 3)`` pose matrices the decoders render with (``pose.pose_matrices``) and the pose
KL, for all hypotheses at once:

    s = exp(clamp(log_std)),  v = mu + s * eps                       (reparametrised draw)
    angle = hyp_k + refine * tanh(mu_angle) + s_angle * eps_angle     (bounded refinement)
    offset = A_k v_offset            (the copy's frame turned back to the image's)
    scale = exp(scale_prior * v_scale)
    theta = (cos angle, sin angle) / scale  @  (C + v_offset @ A_k P)
    KL = sum_j 0.5 ((mu_j a_j)^2 + (s_j b_j)^2 - 1) - log s_j + log p_j

(``C``, ``P``: the constant and offset parts of ``pose_matrices``; ``p_j`` the prior spreads,
``b_j = 1 / p_j``, ``a_j = 1 / p_j`` for offsets, 0 for the angle, whose mean is free, 1 for
the scale latent.) Written with autograd this is about 40 small operations forward and as
many backward per training step; at a batch of 32 on a CPU their per-operation overhead, not
their arithmetic, is the cost. ``_PoseStep`` computes it without recording them and
differentiates it by hand (checked against autograd by ``torch.autograd.gradcheck`` in
``tests/test_pose_sample.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from .pose import _pose_coefficients

__all__ = ["PoseSampler"]

LOG_STD_MIN, LOG_STD_MAX = -7.0, 2.0


class PoseSampler(nn.Module):
    """Pose matrices and KL of K angle hypotheses from the pose head's output.

    names: the pose variables in the head's order (``"angle"``, ``"offset_row"``,
    ``"offset_col"``, ``"scale"``, those the model has); hyp: ``(K,)`` hypothesis angles
    (radians); refine: the bound of the angle refinement (radians), or None for an angle
    regressed directly (``pose="regress"``); prior: spread of each variable's prior (angle
    in radians, offsets in pixels); scale_prior: ``scale = exp(scale_prior * v)``; canvas:
    the ``(Hc, Wc)`` image the pose matrices read (``decoder.canvas``).
    """

    def __init__(self, names, hyp: torch.Tensor, refine: float | None, prior: dict,
                 scale_prior: float, canvas: tuple[int, int]):
        super().__init__()
        self.names = list(names)
        self.n = len(self.names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.refine = refine
        self.scale_prior = float(scale_prior)
        spread = torch.tensor([prior[name] for name in self.names], dtype=torch.float32)
        a = torch.where(torch.tensor([name == "angle" for name in self.names]), 0.0, 1 / spread)
        b = 1 / spread
        self.register_buffer("hyp", hyp.view(-1, 1).clone(), persistent=False)  # (K, 1)
        # (cos a, sin a) = cos(a - phase)
        self.register_buffer("phase", torch.tensor([0.0, torch.pi / 2]), persistent=False)
        # KL = [mu^2, s^2, log s] @ kl_weight + kl_const
        self.register_buffer("kl_weight", torch.cat([0.5 * a**2, 0.5 * b**2,
                                                     -torch.ones(self.n)]), persistent=False)
        self.kl_const = float(spread.log().sum()) - 0.5 * self.n
        self.register_buffer("a2", a**2, persistent=False)
        self.register_buffer("b2", b**2, persistent=False)
        coef, per_offset = _pose_coefficients(2, 2, *canvas, torch.float32, torch.device("cpu"))
        self.register_buffer("coef", coef.clone(), persistent=False)  # (2, 6)
        # A_k: (row, col) in copy k's frame -> the image frame (turned anticlockwise on
        # screen by hyp_k), as a row-vector map; then the offset part of pose_matrices
        cos, sin = torch.cos(hyp.float()), torch.sin(hyp.float())
        turn = torch.stack([cos, sin, -sin, cos], -1).view(-1, 2, 2)  # (K, 2, 2)
        self.register_buffer("turn", turn, persistent=False)
        self.register_buffer("offset_rows", turn @ per_offset, persistent=False)  # (K, 2, 12)

    def forward(self, pose_out: torch.Tensor, eps: torch.Tensor | None):
        """``pose_out`` ``(K, B, 2n)`` (means then raw log standard deviations, hypothesis
        first), ``eps`` ``(K, B, n)`` standard normals (None: the means). Returns the pose
        matrices ``(K, B, 2, 3)`` (hypothesis first, as ``pose.point_poses``) and the
        KL ``(B, K)`` (nats)."""
        theta, kl = _PoseStep.apply(pose_out.contiguous(), eps, self)
        k, b = kl.shape
        return theta.view(k, b, 2, 3), kl.transpose(0, 1)

    @torch.no_grad()
    def means(self, pose_out: torch.Tensor) -> dict:
        """Posterior means ``(B, K)`` per hypothesis: ``angle`` (radians), ``offset``
        ``(B, K, 2)`` (pixels, image frame), ``scale`` (factor), those the model has."""
        mu = pose_out[..., : self.n]
        out = {}
        if "angle" in self.index:
            out["angle"] = self._angle(mu[..., self.index["angle"]])[0].transpose(0, 1)
        if "offset_row" in self.index:
            i = self.index["offset_row"]
            out["offset"] = torch.bmm(mu[..., i:i + 2], self.turn).transpose(0, 1)
        if "scale" in self.index:
            out["scale"] = torch.exp(self.scale_prior * mu[..., self.index["scale"]]).T
        return out

    def _angle(self, raw: torch.Tensor):
        """Angle means ``(K, B)`` from the raw head output, and ``tanh(raw)`` (or None)."""
        if self.refine is None:
            return raw, None
        th = torch.tanh(raw)
        return torch.add(self.hyp, th, alpha=self.refine), th


class _PoseStep(torch.autograd.Function):
    """``PoseSampler.forward`` as one autograd node: (theta ``(K, B, 6)``, KL ``(K, B)``)."""

    @staticmethod
    def forward(ctx, pose_out, eps, ps: PoseSampler):
        n, ix = ps.n, ps.index
        mu, raw = pose_out[..., :n], pose_out[..., n:]
        log_s = raw.clamp(LOG_STD_MIN, LOG_STD_MAX)  # its gradient: where log_s == raw
        s = log_s.exp()
        kl = torch.cat([mu * mu, s * s, log_s], -1) @ ps.kl_weight + ps.kl_const
        dev = None if eps is None else s * eps  # the draw's deviations from the means
        v = mu if eps is None else mu + dev
        k, b = kl.shape
        th = None
        if "angle" in ix:
            i = ix["angle"]
            angle, th = ps._angle(mu[..., i])
            if eps is not None:
                angle = angle + dev[..., i]
            cs = torch.cos(angle.unsqueeze(-1) - ps.phase)  # (K, B, 2): cos, sin
        else:
            cs = pose_out.new_zeros(k, b, 2)
            cs[..., 0] = 1.0
        scale = None
        if "scale" in ix:
            scale = torch.exp(ps.scale_prior * v[..., ix["scale"]])
            cs = cs / scale.unsqueeze(-1)
        if "offset_row" in ix:
            i = ix["offset_row"]
            rows = torch.baddbmm(ps.coef.view(1, 1, 12), v[..., i:i + 2], ps.offset_rows)
            rows = rows.view(k * b, 2, 6)
        else:
            rows = ps.coef.expand(k * b, 2, 6)
        theta = torch.bmm(cs.view(k * b, 1, 2), rows).view(k, b, 6)
        ctx.ps = ps
        ctx.save_for_backward(pose_out, log_s, s, eps, th, cs, rows)
        return theta, kl

    @staticmethod
    def backward(ctx, g_theta, g_kl):
        ps = ctx.ps
        pose_out, log_s, s, eps, th, cs, rows = ctx.saved_tensors
        n, ix = ps.n, ps.index
        mu = pose_out[..., :n]
        k, b = mu.shape[:2]
        # the KL's own gradients
        g_klc = g_kl.unsqueeze(-1)
        g_mu = g_klc * mu * ps.a2
        g_s = g_klc * s * ps.b2
        g_log_s = -g_klc
        # through theta = cs @ rows: the draw v (and, for the angle, its mean)
        g_t = g_theta.reshape(k * b, 6, 1)
        g_cs = torch.bmm(rows, g_t).view(k, b, 2)
        parts = {}
        if "angle" in ix:  # d(cos, sin) / d angle = (-sin, cos): cs rotated by 90 degrees
            parts["angle"] = g_cs[..., 1] * cs[..., 0] - g_cs[..., 0] * cs[..., 1]
        if "offset_row" in ix:
            g_rows = (cs.view(k, b, 2, 1) * g_theta.view(k, b, 1, 6)).view(k, b, 12)
            g_off = torch.bmm(g_rows, ps.offset_rows.transpose(1, 2))  # (K, B, 2)
            parts["offset_row"], parts["offset_col"] = g_off[..., 0], g_off[..., 1]
        if "scale" in ix:  # cs = (cos, sin) / scale, scale = exp(scale_prior v)
            parts["scale"] = -(g_cs * cs).sum(-1) * ps.scale_prior
        g_v = torch.stack([parts[name] for name in ps.names], -1)  # (K, B, n)
        if eps is not None:
            g_s = g_s + g_v * eps
        if th is not None:  # angle mean = hyp + refine tanh(raw)
            i = ix["angle"]
            g_v[..., i] = g_v[..., i] * (ps.refine * (1 - th * th))
        g_mu = g_mu + g_v
        g_raw = (g_s * s + g_log_s) * (log_s == pose_out[..., n:])  # 0 where clamped
        return torch.cat([g_mu, g_raw], -1), None, None

