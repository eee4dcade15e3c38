"""The pose sampler (``helpers.models.pose_sample``): its hand-differentiated step equals
the pose written out with ``pose.pose_matrices`` and autograd."""

import pytest
import torch

from helpers.models import RVAE
from helpers.models.pose import point_poses, rotate_vectors


def _pose_written_out(net, pose_out, eps):
    """The pose sampler's maths with autograd, from ``pose_matrices``: (K, B, 2, 3), (B, K)."""
    ps = net.pose_sampler
    po = pose_out.transpose(0, 1)
    mu, log_s = po[..., : ps.n], po[..., ps.n:].clamp(-7.0, 2.0)
    s, e = log_s.exp(), eps.transpose(0, 1)
    v = mu + s * e
    names, hyp = ps.names, net.hyp
    angle = torch.zeros_like(mu[..., 0])
    offset = scale = None
    spread = []
    if "angle" in names:
        i = names.index("angle")
        raw = mu[..., i]
        mean = hyp + net.refine * torch.tanh(raw) if net.enumerate else raw
        angle = mean + s[..., i] * e[..., i]
        spread.append(net.angle_prior)
    if "offset_row" in names:
        i = names.index("offset_row")
        offset = rotate_vectors(v[..., i:i + 2], hyp)  # the copy's frame turned back
        spread += [net.offset_prior] * 2
    if "scale" in names:
        scale = torch.exp(net.scale_prior * v[..., names.index("scale")])
        spread.append(1.0)
    p = torch.tensor(spread, dtype=mu.dtype)
    mean_weight = torch.tensor([0.0 if n == "angle" else 1.0 for n in names], dtype=mu.dtype)
    kl = (0.5 * ((mu * mean_weight / p) ** 2 + (s / p) ** 2 - 1) - torch.log(s / p)).sum(-1)
    return point_poses(net.decoder.canvas, angle, offset, scale), kl


@pytest.mark.parametrize("kwargs", [dict(), dict(scale=True, symmetry=2), dict(translation=False),
                                    dict(pose="regress")])
def test_pose_sampler_matches_the_pose_written_out_and_its_gradient(kwargs):
    """The hand-differentiated pose step equals the pose built with pose_matrices, and its
    gradient equals autograd's (finite differences, float64)."""
    net = RVAE((12, 12), seed=0, device="cpu", **kwargs).module.double()
    n, k = net.pose_sampler.n, net.n_angles
    gen = torch.Generator().manual_seed(0)
    pose_out = torch.randn(k, 3, 2 * n, generator=gen, dtype=torch.float64)
    pose_out[..., n:] = 3 * pose_out[..., n:] - 1  # some log-stds beyond the clamp
    eps = torch.randn(k, 3, n, generator=gen, dtype=torch.float64)
    theta, kl = net.pose_sampler(pose_out, eps)
    ref_theta, ref_kl = _pose_written_out(net, pose_out, eps)
    torch.testing.assert_close(theta, ref_theta)
    torch.testing.assert_close(kl, ref_kl)
    pose_out.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: net.pose_sampler(t, eps), (pose_out,))
    assert torch.autograd.gradcheck(lambda t: net.pose_sampler(t, None), (pose_out,))
