"""Invariant VAE speed and quality: the resample decoder (default) against the coordinate
decoder of the reference implementations (pyroVED and AtomAI, "the anchors"), on one fixed
set, with the same epochs, batch and learning rate.

Data: 2000 images of 28 x 28 pixels, one asymmetric object turned uniformly over the full
circle, shifted by up to 2 pixels, with a known shape factor (``helpers.simulate.objects``).
Models, each trained in its own process (so peak memory is its own):

- ``vae``: a plain VAE (no pose), the speed reference;
- ``rvae-resample``: RVAE, default design (K=12 angle hypotheses, all seen by the encoder in
  one pass through its polar-Fourier first layer; exact posterior over the hypotheses, the
  most probable one decoded with gradient; resample decoder, likelihood on the centred disk);
- ``rvae-coordinate``: the same RVAE with the anchors' coordinate (spatial) decoder;
- ``anchors-coordinate``: the anchors' whole design: coordinate decoder and an angle
  regressed by the encoder (``pose="regress"``).

Printed per model: seconds per training epoch (median; ``fit``'s own per-epoch clock), the
work done once at the end of each ``fit`` call (RVAE: fixing the offsets' origin, one
exact encoding pass; not part of an epoch), peak resident memory, the first epoch (and
training seconds) at which the angle circular correlation reaches 0.9, and the final quality
figures (angle circular r, offsets Pearson r (worst axis), best |r| of a content latent with
the shape factor, and how well the content latents predict the angle). Then the ratios the
issue asks for. The RVAE/VAE epoch ratio is also measured with the two models' epochs
interleaved in one process (``--pairs``): on a shared machine whose speed drifts by tens of
per cent over a minute, the ratio of two separate runs can be off by as much, the paired
ratio much less; its median is printed with a bootstrap 95 % interval (pairs resampled).

    python benchmarks/rvae_speed.py                  # ~3-5 min on 2 free CPU cores
    python benchmarks/rvae_speed.py --epochs 3 --models vae rvae-resample
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

MODELS = {
    "vae": dict(cls="VAE", kwargs={}),
    "rvae-resample": dict(cls="RVAE", kwargs=dict(decoder="resample")),
    "rvae-coordinate": dict(cls="RVAE", kwargs=dict(decoder="coordinate")),
    "anchors-coordinate": dict(cls="RVAE", kwargs=dict(decoder="coordinate", pose="regress")),
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _setup(names, args):
    """The benchmark's data set and fresh models ``names`` (keys of ``MODELS``)."""
    import torch

    from helpers.models import RVAE, VAE
    from helpers.simulate.objects import rotated_objects

    if args.threads:
        torch.set_num_threads(args.threads)
    data = rotated_objects(args.n, size=28, max_shift=2.0, seed=0)
    models = []
    for name in names:
        spec = MODELS[name]
        cls = {"VAE": VAE, "RVAE": RVAE}[spec["cls"]]
        models.append(cls((28, 28), latent_dim=2, seed=0, device=args.device, **spec["kwargs"]))
    return data, models


def run_one(name: str, args) -> dict:
    """Train one model epoch by epoch, scoring after each epoch (scoring time excluded)."""
    from helpers.analysis import angle_leak, circular_correlation

    data, (model,) = _setup([name], args)
    rss0 = _peak_rss_mb()
    seconds, curve = [], []
    reached = None
    post_fit = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        hist = model.fit(data.images, epochs=1, batch_size=args.batch_size, lr=args.lr,
                         progress=False)
        seconds.append(hist["seconds"][0])  # the training epoch itself
        post_fit.append(time.perf_counter() - t0 - hist["seconds"][0])
        enc = model.encode(data.images)
        if enc.angle is not None:
            r = circular_correlation(data.angle, enc.angle)
            curve.append(round(r, 4))
            if reached is None and r >= 0.9:
                reached = (epoch, float(np.sum(seconds)))
    out = {"model": name, "s_per_epoch": float(np.median(seconds)),
           "train_s": float(np.sum(seconds)), "post_fit_s": float(np.median(post_fit)),
           "peak_rss_mb": _peak_rss_mb(),
           "rss_before_fit_mb": rss0, "angle_r_curve": curve,
           "epochs_to_r09": None if reached is None else reached[0],
           "seconds_to_r09": None if reached is None else reached[1]}
    shape_r = [abs(np.corrcoef(enc.z[:, i], data.shape_factor)[0, 1]) for i in range(2)]
    out["shape_r"] = float(max(shape_r))
    out["latent_angle_leak"] = float(angle_leak(data.angle, enc.z))
    if enc.angle is not None:
        out["angle_r"] = curve[-1]
        out["offset_r"] = float(min(np.corrcoef(enc.offset[:, i], data.offset[:, i])[0, 1]
                                    for i in range(2)))
    return out


def paired_epochs(args) -> dict:
    """Default RVAE and plain VAE epochs interleaved in one process (VAE, RVAE, VAE, ...),
    ``args.pairs`` of each: the ratio of each pair's epochs cancels the slow drifts of a
    shared machine, which the separate runs above do not."""
    data, models = _setup(["vae", "rvae-resample"], args)
    seconds = np.zeros((args.pairs, 2))
    for i in range(args.pairs):
        for j, m in enumerate(models):
            hist = m.fit(data.images, epochs=1, batch_size=args.batch_size, lr=args.lr,
                         progress=False)
            seconds[i, j] = hist["seconds"][0]
    ratio = seconds[:, 1] / seconds[:, 0]
    # how well the pairs pin the median down: a bootstrap 95 % interval (pairs resampled)
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(ratio, size=(2000, len(ratio))), axis=1)
    return {"model": "paired", "vae_s": float(np.median(seconds[:, 0])),
            "rvae_s": float(np.median(seconds[:, 1])), "ratio": float(np.median(ratio)),
            "ratio_q25": float(np.percentile(ratio, 25)),
            "ratio_q75": float(np.percentile(ratio, 75)),
            "ratio_ci": [float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))]}


def _fmt(v, spec="{:.2f}"):
    return "-" if v is None else spec.format(v)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--pairs", type=int, default=30,
                   help="interleaved VAE/RVAE epoch pairs for the ratio (0: skip)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one model, print JSON
    args = p.parse_args(argv)
    if args.one:
        out = paired_epochs(args) if args.one == "paired" else run_one(args.one, args)
        print("RESULT " + json.dumps(out))
        return None

    rows = []
    passthrough = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--lr", str(args.lr), "--n", str(args.n), "--threads", str(args.threads),
                   "--device", args.device]
    paired = None
    jobs = list(args.models) + (["paired"] if args.pairs > 0 else [])
    for name in jobs:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name,
                               "--pairs", str(args.pairs), *passthrough],
                              capture_output=True, text=True, check=False)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        if name == "paired":
            paired = json.loads(line[0][7:])
            continue
        rows.append(json.loads(line[0][7:]))
        print(f"# done {name}: {rows[-1]['s_per_epoch']:.2f} s/epoch", file=sys.stderr)

    print(f"\n{args.n} images 28x28, full-circle rotations, shifts <= 2 px; {args.epochs} "
          f"epochs, batch {args.batch_size}, lr {args.lr}, device {args.device}, torch threads "
          f"{args.threads or 'default'}\n")
    print("| model | s/epoch | once per fit, s | peak RSS MB | epochs (s) to angle r 0.9 | "
          "angle r | offset r | shape abs r | latent-angle leak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        to09 = ("never" if r["epochs_to_r09"] is None and "angle_r" in r else
                "-" if r["epochs_to_r09"] is None else
                f"{r['epochs_to_r09']} ({r['seconds_to_r09']:.1f} s)")
        print(f"| {r['model']} | {r['s_per_epoch']:.3f} | {r['post_fit_s']:.2f} | "
              f"{r['peak_rss_mb']:.0f} | {to09} | "
              f"{_fmt(r.get('angle_r'), '{:.3f}')} | {_fmt(r.get('offset_r'), '{:.3f}')} | "
              f"{r['shape_r']:.3f} | {r['latent_angle_leak']:.3f} |")
    by = {r["model"]: r for r in rows}
    if "rvae-resample" in by:
        res = by["rvae-resample"]
        print()
        for other in ("rvae-coordinate", "anchors-coordinate"):
            if other in by:
                print(f"speed-up of the default over {other}: "
                      f"{by[other]['s_per_epoch'] / res['s_per_epoch']:.1f}x per epoch")
        if "vae" in by:
            print(f"default RVAE epoch / plain VAE epoch, separate runs above: "
                  f"{res['s_per_epoch'] / by['vae']['s_per_epoch']:.2f}x")
        if res["seconds_to_r09"] is not None:
            print(f"default reaches angle r >= 0.9 after {res['seconds_to_r09']:.1f} s of "
                  f"training (goal: <= 10 s)")
    if paired is not None:
        print(f"default RVAE epoch / plain VAE epoch, {args.pairs} interleaved pairs in one "
              f"process: median {paired['ratio']:.2f}x (95 % interval of the median "
              f"{paired['ratio_ci'][0]:.2f}-{paired['ratio_ci'][1]:.2f}; quartiles of the "
              f"pairs {paired['ratio_q25']:.2f}-{paired['ratio_q75']:.2f}; VAE "
              f"{paired['vae_s']:.3f} s, RVAE {paired['rvae_s']:.3f} s per epoch) "
              f"(goal: <= 2x)")
    return rows


if __name__ == "__main__":
    main()
