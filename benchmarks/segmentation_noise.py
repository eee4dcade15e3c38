"""U-Net atom detection on simulated graphene: F1 and Si/C accuracy against dose, and timings.

Trains one U-Net on frames of a simulated movie at the default dose (noise augmentation
on), then scores held-out frames of another movie simulated at several doses (peak counts of
a C atom: lower dose, more Poisson noise). With ``--retrain`` a model is also trained at each
dose. A detection counts when it lies within 0.5 angstrom of a true atom (one-to-one).

    python benchmarks/segmentation_noise.py            # ~1-2 min on 2 free CPU cores
    python benchmarks/segmentation_noise.py --threads 1 --steps 240 --retrain
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _truth(atoms, shape, margin):
    from helpers.features import inside_frame

    a = np.asarray(atoms)
    keep = inside_frame(a, shape, margin)
    return np.column_stack([a[keep, :2], a[keep, 2] + 1])


def _score(net, movie, frames, margin=3.0):
    from helpers.analysis import detection_scores
    from helpers.segment import find_atoms

    start = time.perf_counter()
    probs = net.predict(movie.frames[frames], progress=False)
    per_frame = (time.perf_counter() - start) / len(frames)
    found = [find_atoms(p, threshold=0.5, margin=margin) for p in probs]
    true = [_truth(movie.atoms[t], movie.frames.shape[1:], margin) for t in frames]
    return detection_scores(true, found, 0.5 / movie.pixel_size), per_frame


def _train(frames, masks, args):
    from helpers.models import UNet

    net = UNet(n_classes=3, filters=args.filters, depth=args.depth, seed=args.seed,
               device=args.device)
    extra = {} if args.lr is None else {"lr": args.lr}
    hist = net.fit(frames, masks, epochs=1, steps_per_epoch=args.steps,
                   batch_size=args.batch_size, crop=args.crop, progress=False, **extra)
    return net, hist


def main(argv=None):
    import torch

    from helpers.simulate import graphene_movie

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--doses", type=float, nargs="+", default=[5, 10, 20, 40, 60, 120, 240])
    p.add_argument("--steps", type=int, default=160, help="training steps (batches)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: fit)")
    p.add_argument("--filters", type=int, default=8)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--size", type=int, default=256, help="frame side, px")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retrain", action="store_true", help="also train one model per dose")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    pick, held = [0, 3, 6, 9, 11], [0, 5, 11]
    train = graphene_movie(n_frames=12, size=args.size, seed=10)
    net, hist = _train(train.frames[pick], train.masks[pick], args)
    print(f"U-Net {args.filters * 2 ** np.arange(args.depth)} filters, "
          f"{net.n_parameters()} weights, device {net.device}, {torch.get_num_threads()} threads")
    train_s = sum(hist.seconds)
    print(f"training: {args.steps} steps of {args.batch_size} x {args.crop}^2 crops from "
          f"{len(pick)} frames of {args.size}^2 px: {train_s:.1f} s "
          f"({train_s / args.steps * 1e3:.0f} ms/step), final loss {hist['loss'][-1]:.3f}")
    header = (f"{'dose':>6} {'F1':>7} {'prec':>7} {'recall':>7} {'Si/C acc':>8} "
              f"{'Si recall':>9} {'Si prec':>8} {'err A':>6} {'ms/frame':>8}")
    if args.retrain:
        header += f" {'F1 retrained':>12} {'Si/C acc':>8} {'train s':>7}"
    print(header)
    for dose in args.doses:
        test = graphene_movie(n_frames=12, size=args.size, seed=11, dose=dose)
        s, per_frame = _score(net, test, held)
        line = (f"{dose:6g} {s.f1:7.4f} {s.precision:7.4f} {s.recall:7.4f} "
                f"{s.class_accuracy:8.4f} {s.class_recall(2):9.3f} {s.class_precision(2):8.3f} "
                f"{s.mean_distance * test.pixel_size:6.3f} {per_frame * 1e3:8.0f}")
        if args.retrain:
            own = graphene_movie(n_frames=12, size=args.size, seed=10, dose=dose)
            net_d, hist_d = _train(own.frames[pick], own.masks[pick], args)
            s_d, _ = _score(net_d, test, held)
            line += f" {s_d.f1:12.4f} {s_d.class_accuracy:8.4f} {sum(hist_d.seconds):7.1f}"
        print(line, flush=True)
    print("bars (issue 5, default dose 60): F1 >= 0.98, Si/C accuracy >= 0.98")
    _patch_speed()


def _patch_speed(n=100_000, window=24):
    """Time helpers.features.extract_patches on a (50, 512, 512) movie."""
    from helpers.features import extract_patches

    rng = np.random.default_rng(0)
    movie = rng.random((50, 512, 512), dtype=np.float32)
    coords = np.column_stack([rng.integers(0, 50, n), rng.uniform(0, 512, (n, 2))])
    start = time.perf_counter()
    out = extract_patches(movie, coords, window)
    took = time.perf_counter() - start
    print(f"extract_patches: {len(out.index)} patches of {window}x{window} px "
          f"({out.n_dropped} crossing the border dropped) from {n} positions in {took:.2f} s")


if __name__ == "__main__":
    main()
