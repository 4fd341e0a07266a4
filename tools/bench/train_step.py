#!/usr/bin/env python3
"""The PyTorch peer of `glf-bench train-step` (and `glf-bench embed`): same model, same step, same fields.

Model: ResNetEncoder(width, image_size) + projector MLPHead(features -> 512 -> 128, final BN), the
modules of tools/python/glf_torch.py. One training step for a batch of B images:
  views     two [B, 3, S, S] N(0,1) tensors made once (augmentation is not measured)
  forward   each view separately through encoder and projector, as solo-learn does: batch norm
            then sees one view at a time, which is what glfd's ForwardMode.training(views: 2)
            emulates on its concatenated [2B, ...] batch
  loss      -mean_b cos(z1_b, z2_b) on L2-normalised projections, one backward for both views
  update    torch.optim.SGD(lr 0.01, momentum 0.9, weight_decay 5e-4)

FLOPs are counted the same way as glf: 2 per multiply-add of convolutions and linear layers (counted
here from the modules with forward hooks, so a model mismatch shows as a different GFLOP per image);
per image 2 views x 2 x (3 x forward MACs - stem MACs), since the stem's input gradient is never
computed. Images/s counts an image once; the step time is the median of the timed steps. The sgemm
peak is torch.mm on square float32 matrices with the same thread count, measured in the same run
(that is MKL here, not OpenBLAS: the share is of torch's own peak).

torch is needed only to run this script; nothing in the test suite imports it.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from glf_torch import MLPHead, ResNetEncoder  # noqa: E402


def parse_arguments():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--benchmark", choices=["train-step", "embed"], default="train-step")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=None, help="default 128 for train-step, 256 for embed")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--peak-sizes", default="1024,2048")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format for model and images")
    p.add_argument("--profile", action="store_true", help="print torch.profiler's table of the timed steps")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    if args.batch is None:
        args.batch = 128 if args.benchmark == "train-step" else 256
    return args


def sgemm_peak(sizes, trials=5, trial_seconds=0.1):
    """Best GFLOP/s of torch.mm over square sizes; each size is the best of `trials` timed trials."""
    best = (0.0, 0)
    generator = torch.Generator().manual_seed(7)
    for n in sizes:
        a = torch.rand(n, n, generator=generator) * 2 - 1
        b = torch.rand(n, n, generator=generator) * 2 - 1
        c = torch.empty(n, n)
        start = time.perf_counter()
        torch.mm(a, b, out=c)
        once = time.perf_counter() - start
        repeats = max(1, int(trial_seconds / max(once, 1e-6)))
        seconds = []
        for _ in range(trials):
            start = time.perf_counter()
            for _ in range(repeats):
                torch.mm(a, b, out=c)
            seconds.append((time.perf_counter() - start) / repeats)
        rate = 2 * n ** 3 / min(seconds) / 1e9
        if rate > best[0]:
            best = (rate, n)
    return best


def multiply_adds_per_image(module, example):
    """(all MACs, first convolution's MACs) per image of Conv2d and Linear layers, from forward hooks."""
    counts = []

    def hook(layer, inputs, output):
        per_image = output[0].numel()
        if isinstance(layer, torch.nn.Conv2d):
            kh, kw = layer.kernel_size
            counts.append(per_image * kh * kw * layer.in_channels // layer.groups)
        else:
            counts.append(per_image * layer.in_features)

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    was_training = module.training
    module.eval()
    with torch.no_grad():
        module(example)
    module.train(was_training)
    for h in handles:
        h.remove()
    return sum(counts), counts[0]


def negative_cosine_loss(z1, z2):
    """-mean_b cos(z1_b, z2_b) of rows already L2-normalised."""
    return -(z1 * z2).sum(dim=1).mean()


def main():
    args = parse_arguments()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    peak, peak_size = sgemm_peak([int(s) for s in args.peak_sizes.split(",")])
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format

    encoder = ResNetEncoder(3, args.size, args.width)
    projector = MLPHead(encoder.feature_dimension, 512, 128, final_batch_norm=True)
    model = torch.nn.Sequential(encoder, projector).to(memory_format=memory_format)

    def image_batch():
        return torch.randn(args.batch, 3, args.size, args.size).contiguous(memory_format=memory_format)

    macs, stem_macs = multiply_adds_per_image(model, image_batch()[:2])
    if args.benchmark == "train-step":
        view1, view2 = image_batch(), image_batch()
        optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        model.train()

        def step():
            z1 = F.normalize(model(view1), dim=1)
            z2 = F.normalize(model(view2), dim=1)
            loss = negative_cosine_loss(z1, z2)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            return loss.item()

        gflop_per_image = 2 * 2 * (3 * macs - stem_macs) / 1e9
        image_counting = "an image counts once; both of its views go forward and backward"
        flop_counting = "2 views × 2 FLOP/MAC × (3 × forward MACs − stem MACs), convolutions and linear layers only"
    else:
        images = image_batch()
        model = encoder.eval()
        macs, stem_macs = multiply_adds_per_image(encoder, images[:2])

        def step():
            with torch.inference_mode():
                model(images)
            return None

        gflop_per_image = 2 * macs / 1e9
        image_counting = "one forward per image"
        flop_counting = "2 FLOP/MAC × encoder forward MACs (convolutions only)"

    for _ in range(args.warmup):
        step()
    step_seconds, loss = [], None

    def timed_steps():
        nonlocal loss
        for _ in range(args.steps):
            start = time.perf_counter()
            loss = step()
            step_seconds.append(time.perf_counter() - start)

    profile_table = None
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            timed_steps()
        profile_table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
    else:
        timed_steps()

    median = statistics.median(step_seconds)
    images_per_second = args.batch / median
    report = {
        "benchmark": args.benchmark,
        "implementation": "torch" + (" channels-last" if args.channels_last else ""),
        "width": args.width, "size": args.size, "batch": args.batch, "threads": args.threads,
        "steps": args.steps, "warmup": args.warmup,
        "stepMilliseconds": median * 1e3,
        "stepMillisecondsMean": statistics.mean(step_seconds) * 1e3,
        "imagesPerSecond": images_per_second,
        "gflopPerImage": gflop_per_image,
        "gflopPerSecond": images_per_second * gflop_per_image,
        "sgemmPeakGflopPerSecond": peak, "sgemmPeakSize": peak_size,
        "shareOfPeak": images_per_second * gflop_per_image / peak,
        "loss": loss,
        "imageCounting": image_counting, "flopCounting": flop_counting,
        "blas": f"torch {torch.__version__}, {torch.get_num_threads()} threads, mm peak via "
                + ("MKL" if torch.backends.mkl.is_available() else "its BLAS"),
    }
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return
    r = report
    print(f"torch bench {r['benchmark']}: width {r['width']}, {r['size']}×{r['size']} images, batch {r['batch']}, "
          f"{r['threads']} thread{'s' if r['threads'] != 1 else ''}{', channels-last' if args.channels_last else ''}")
    print(f"  {r['steps']} timed steps after {r['warmup']} warm-up; {r['blas']}")
    print(f"  step time      {r['stepMilliseconds']:.1f} ms (median; mean {r['stepMillisecondsMean']:.1f})")
    print(f"  images/s       {r['imagesPerSecond']:.1f}   ({image_counting})")
    print(f"  GFLOP/s        {r['gflopPerSecond']:.1f}   ({gflop_per_image:.4f} GFLOP per image: {flop_counting})")
    print(f"  sgemm peak     {peak:.1f} GFLOP/s (torch.mm {peak_size}², same threads, this run)")
    print(f"  share of peak  {100 * r['shareOfPeak']:.1f} %")
    if loss is not None:
        print(f"  loss           {loss:.4f} (after the last step; −1 is the floor)")
    if profile_table:
        print(profile_table)


if __name__ == "__main__":
    main()
