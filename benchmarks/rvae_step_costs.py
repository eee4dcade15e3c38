"""Where an RVAE training step spends its time, next to a plain VAE step.

Same data and sizes as ``rvae_speed.py`` (28 x 28 images, batch 32, defaults). Prints the
median over repeats of: a whole training step (loss, backward, Adam) for each model, then
the RVAE's parts timed on their own (forward + backward where they carry gradient). The parts
overlap a little and leave out Python overhead, so they do not add up exactly to the step.

    python benchmarks/rvae_step_costs.py            # ~1 min on 2 free CPU cores
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _median_ms(fn, repeats: int, n: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n * 1e3)
    return float(np.median(times))


def _trainer(model, X, batch):
    """A closure running one training step on the next batch of ``X`` (normalised)."""
    net = model.module
    net.train()
    inputs = net.training_inputs(X)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    top = model.top_hypotheses
    state = {"i": 0}

    def step():
        s = (state["i"] * batch) % (len(X) - batch)
        state["i"] += 1
        loss, _ = net.loss(net.batch(inputs, torch.arange(s, s + batch)), None, gen, 1.0,
                           None, top)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from helpers.models import RVAE, VAE
    from helpers.simulate.objects import rotated_objects

    data = rotated_objects(2000, size=28, max_shift=2.0, seed=0)
    batch = 32
    models = {}
    for name, cls in (("vae", VAE), ("rvae", RVAE)):
        m = cls((28, 28), 2, seed=0, device="cpu")
        m.fit(data.images[:256], epochs=1, batch_size=batch, progress=False)
        models[name] = m
    r, n = args.repeats, args.steps
    rows = []
    for name, m in models.items():
        X = m._normalise(data.images)
        rows.append((f"{name}: whole training step", _median_ms(_trainer(m, X, batch), r, n)))

    m = models["rvae"]
    net = m.module
    inputs = net.training_inputs(m._normalise(data.images[:batch]))
    gen = torch.Generator().manual_seed(1)

    def noise(t):
        return torch.randn(t.shape, generator=gen)

    def encoder():
        enc = net.encode_input(inputs["input"], None)
        sum(v.sum() for v in enc.values()).backward()

    enc = {k: v.detach() for k, v in net.encode_input(inputs["input"], None).items()}
    zin, theta, _ = net._sample(enc, None, noise)
    canvas = net.decoder.prepare(zin.reshape(batch, -1)).detach()
    last = net.decoder.net[-1]
    hidden = torch.randn(batch, last.in_features)
    pose_out = enc["pose_out"].clone().requires_grad_()
    eps = noise(pose_out[..., : net.n_pose])

    def pose():
        th, kl = net.pose_sampler(pose_out, eps)
        (th.sum() + kl.sum()).backward()

    def canvas_layer():
        last(hidden).sum().backward()

    def ranking():
        with torch.no_grad():
            net._coarse_errors(inputs, canvas, theta)

    top = m.top_hypotheses
    th = theta[:top].clone().requires_grad_()  # (top, B, 2, 3): hypothesis first
    c = canvas.clone().requires_grad_()
    target = inputs["target"]

    def render_top():  # the compared (disk) pixels, rendering and error in one step
        net.decoder.point_errors(c, net.lik_xy1, th, target, net.lik_half_weight).sum().backward()

    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    for prm in net.parameters():
        prm.grad = torch.zeros_like(prm)
    parts = [
        ("rvae part: encoder (polar trunk, heads), fwd + bwd", encoder),
        (f"rvae part: pose matrices and KL of all {net.n_angles} hypotheses, fwd + bwd", pose),
        (f"rvae part: decoder output layer ({last.out_features} canvas pixels), fwd + bwd",
         canvas_layer),
        (f"rvae part: ranking all {net.n_angles} hypotheses ({len(net.coarse_index)} 2x-binned "
         "pixels, no gradient)", ranking),
        (f"rvae part: rendering the {top} decoded hypotheses ({len(net.lik_index)} pixels) + "
         "error, fwd + bwd", render_top),
        ("rvae part: Adam step", opt.step),
    ]
    for label, fn in parts:
        rows.append((label, _median_ms(fn, r, n)))

    print(f"\nbatch {batch}, 28 x 28, torch threads {torch.get_num_threads()}\n")
    print("| what | ms |")
    print("|---|---|")
    for label, ms in rows:
        print(f"| {label} | {ms:.2f} |")
    print(f"\nRVAE step / VAE step: {rows[1][1] / rows[0][1]:.2f}x")
    return rows


if __name__ == "__main__":
    main()
