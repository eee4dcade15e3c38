"""A VAE for short multi-channel time series (here: in-plane field trajectories ``E(t)``).

The suite's image VAEs (:mod:`.vae`) model ``(H, W)`` images with pose latents; a trajectory
is a ``(T, C)`` sequence with no pose to factor out, so this is a plain MLP VAE on the
flattened, standardised sequence (one mean and one standard deviation per channel, so that
a zero field stays zero after the round trip)::

    z ~ N(0, I_d),   x = g(z) + noise,   q(z | x) = N(mu(x), diag sigma(x)^2)
    -ELBO(x) = ||x - g(z)||^2 / (2 s^2) + KL(q(z | x) || N(0, I))

with ``s`` = ``noise`` (in units of the channel standard deviation): a small ``s`` weights
the reconstruction over the prior, as a ``beta < 1`` would. The loss is reported per
trajectory (nats).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from .base import Estimator, as_float_array, not_fitted
from .standardize import Standardize
from .training import History, run_epochs

__all__ = ["TrajectoryVAE"]


class _SeriesVAENet(nn.Module):
    def __init__(self, n_times: int, n_channels: int, latent_dim: int, hidden: int):
        super().__init__()
        d = n_times * n_channels
        self.shape = (n_times, n_channels)
        self.scale = Standardize((n_channels,))
        self.encoder = nn.Sequential(nn.Linear(d, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                     nn.SiLU(), nn.Linear(hidden, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(),
                                     nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, d))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, C)`` data units -> posterior mean and log-variance ``(B, d)``."""
        h = self.encoder(self.scale(x).flatten(1))
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)

    def decode_scaled(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, d)`` -> ``(B, T, C)`` standardised units."""
        return self.decoder(z).view(-1, *self.shape)


class TrajectoryVAE(Estimator):
    """An MLP VAE of ``(T, C)`` sequences, e.g. field trajectories ``E(t)``.

    Args:
        n_times: samples per sequence ``T``. n_channels: channels ``C`` (2 for an in-plane
            field).
        latent_dim: latent dimensions ``d``.
        hidden: units of each of the two hidden layers of encoder and decoder (SiLU).
        noise: likelihood standard deviation ``s`` in units of each channel's standard
            deviation (module docstring); smaller trades prior fit for reconstruction.
        seed, device: as every estimator of the suite.

    ``fit(X)`` takes ``(N, T, C)`` sequences; ``encode(X)`` returns the ``(N, d)`` posterior
    means, ``decode(z)`` the ``(N, T, C)`` sequences in data units.
    """

    def __init__(self, n_times: int = 64, n_channels: int = 2, latent_dim: int = 4,
                 hidden: int = 256, noise: float = 0.05, seed: int = 0, device: str = "auto"):
        for name, value, low in (("n_times", n_times, 2), ("n_channels", n_channels, 1),
                                 ("latent_dim", latent_dim, 1), ("hidden", hidden, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not (isinstance(noise, (int, float)) and 0 < noise < math.inf):
            raise ValueError(f"noise must be a positive number (the likelihood standard "
                             f"deviation in channel standard deviations), got {noise!r}")
        super().__init__(seed=seed, device=device, n_times=int(n_times),
                         n_channels=int(n_channels), latent_dim=int(latent_dim),
                         hidden=int(hidden), noise=float(noise))
        c = self.config
        self._build_module(lambda: _SeriesVAENet(c["n_times"], c["n_channels"],
                                                 c["latent_dim"], c["hidden"]))

    @property
    def latent_dim(self) -> int:
        return self.config["latent_dim"]

    def _series(self, X, name: str = "X") -> np.ndarray:
        c = self.config
        return as_float_array(X, name, ndim=3, shape_tail=(c["n_times"], c["n_channels"]))

    def fit(self, X, epochs: int = 200, batch_size: int = 128, lr: float = 2e-3,
            X_val=None, progress: bool = True) -> History:
        """Train on ``(N, T, C)`` sequences by minimising the negative ELBO (Adam, learning
        rate cosine-annealed to 5 %).

        Args:
            X: ``(N, T, C)`` training sequences (data units).
            epochs, batch_size, lr: training length, sequences per step, Adam rate.
            X_val: optional held-out sequences; their mean squared reconstruction error
                (standardised units, latent means decoded) is recorded as ``val_loss``.
            progress: tqdm progress bar.

        Returns:
            :class:`History` with ``loss`` (negative ELBO per sequence, nats), ``recon`` and
            ``kl`` (its two parts), ``seconds`` and, with ``X_val``, ``val_loss``.
        """
        x = self._series(X)
        xv = None if X_val is None else self._series(X_val, "X_val")
        if int(epochs) < 1 or int(batch_size) < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
        if len(x) < 2:
            raise ValueError("fit needs at least 2 sequences")
        seed = self._fit_seed()
        g_shuffle, g_noise = self._generator(seed), self._generator(seed + 1)
        net, dev = self.module, self.device
        if not self._fitted:
            net.scale.set_statistics(x.mean(axis=(0, 1)), x.std(axis=(0, 1)), min_std=1e-8)
        xt = torch.as_tensor(x, device=dev)
        n = len(x)
        inv_two_s2 = 0.5 / self.config["noise"] ** 2
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        steps = int(epochs) * math.ceil(n / batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))

        def epoch_batches(epoch):
            shuffled = torch.randperm(n, generator=g_shuffle, device=g_shuffle.device).to(dev)
            for idx in shuffled.split(batch_size):
                yield xt[idx], len(idx) / n

        def batch_loss(xb):
            mu, logvar = net.encode(xb)
            eps = torch.randn(mu.shape, generator=g_noise, device=g_noise.device).to(dev)
            z = mu + torch.exp(0.5 * logvar) * eps
            recon = inv_two_s2 * ((net.decode_scaled(z) - net.scale(xb)) ** 2).sum((1, 2))
            kl = 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(1)
            recon, kl = recon.mean(), kl.mean()
            return recon + kl, {"recon": float(recon.detach()), "kl": float(kl.detach())}

        validate = None
        if xv is not None:
            xvt = torch.as_tensor(xv, device=dev)

            def validate():
                with torch.no_grad():
                    mu, _ = net.encode(xvt)
                    return float(((net.decode_scaled(mu) - net.scale(xvt)) ** 2).mean())

        history = run_epochs(module=net, optimizer=opt, epoch_batches=epoch_batches,
                             batch_loss=batch_loss, epochs=epochs, desc="trajectory VAE",
                             progress=progress, guard_floor=float(x[0].size),
                             validate=validate, after_step=sched.step)
        self._fitted = True
        return history

    def encode(self, X, batch_size: int = 4096) -> np.ndarray:
        """``(N, T, C)`` sequences -> ``(N, d)`` posterior means (float64)."""
        if not self._fitted:
            raise not_fitted(type(self).__name__, "fit(X)")
        x = self._series(X)
        out = []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                mu, _ = self.module.encode(torch.as_tensor(x[start:start + batch_size],
                                                           device=self.device))
                out.append(mu.double().cpu().numpy())
        return np.concatenate(out)

    def torch_decoder(self):
        """The decoder as a differentiable float64 torch function on the CPU.

        Returns:
            ``f(z)``: ``(..., d)`` latents (tensor) -> ``(..., T, C)`` sequences in data units,
            the same values as :meth:`decode` (up to float precision), with gradients
            with respect to ``z`` (e.g. for a GP kernel that compares decoded trajectories).
            It uses a frozen copy of the fitted network: later training does not change it.
        """
        if not self._fitted:
            raise not_fitted(type(self).__name__, "fit(X)")
        net = copy.deepcopy(self.module).to("cpu").double().eval()
        for p in net.parameters():
            p.requires_grad_(False)

        def decoder(z: torch.Tensor) -> torch.Tensor:
            flat = z.reshape(-1, z.shape[-1])
            out = net.scale.inverse(net.decode_scaled(flat))
            return out.reshape(*z.shape[:-1], *out.shape[-2:])

        return decoder

    def decode(self, z, batch_size: int = 4096) -> np.ndarray:
        """``(N, d)`` latents -> ``(N, T, C)`` sequences in data units (float64)."""
        if not self._fitted:
            raise not_fitted(type(self).__name__, "fit(X)")
        zz = as_float_array(z, "z", ndim=2, shape_tail=(self.latent_dim,))
        out = []
        with torch.no_grad():
            for start in range(0, len(zz), batch_size):
                zb = torch.as_tensor(zz[start:start + batch_size], device=self.device)
                out.append(self.module.scale.inverse(self.module.decode_scaled(zb))
                           .double().cpu().numpy())
        return np.concatenate(out)
