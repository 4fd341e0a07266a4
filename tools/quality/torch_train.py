"""The PyTorch peer of `glf train` for the quality report: the same encoder and heads
(tools/python/glf_torch.py), the same method (BYOL or SimCLR, optionally + ADC as revised in
method.md §3, tools/python/glf_adc.py, with glf train's --adc-* options), the same augmentation
recipe (solo-learn's CIFAR one), the same optimiser and schedule, for the same wall-clock budget on
the same machine. It writes a glfd model directory (model.safetensors + config.json), so
`glf eval knn --model DIR` scores both runs identically.

    pip install pillow safetensors torch
    python3 tools/quality/torch_train.py --data /tmp/cifar/train --minutes 30 --steps 1000 --out runs/torch-byol-adc
    python3 tools/quality/torch_train.py --method simclr --data /tmp/cifar/train --steps 800 --out runs/torch-simclr-adc

Augmentations are batched tensor ops (affine grid + bilinear sampling for the crop and flip,
torchvision's float formulas for the colour ops), so the data path does not dominate the step.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from glf_adc import ADC, pixel_prior  # noqa: E402
from glf_torch import MLPHead, ResNetEncoder  # noqa: E402

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def load_folder(root):
    """All images of root/<class>/*.jpg as uint8 [N, 32, 32, 3]."""
    images = []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        for file in sorted(os.listdir(folder)):
            with Image.open(os.path.join(folder, file)) as image:
                images.append(np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.uint8))
    return torch.from_numpy(np.stack(images))


# ---- augmentations (solo-learn's CIFAR recipe), batched ----

def random_resized_crop_and_flip(x, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip=0.5):
    """x [B, 3, H, W] float → same size; torchvision's box sampling (10 tries, centre fallback)."""
    b, _, h, w = x.shape
    area = h * w
    boxes = []
    for _ in range(b):
        for _ in range(10):
            target = area * np.random.uniform(*scale)
            aspect = math.exp(np.random.uniform(math.log(ratio[0]), math.log(ratio[1])))
            cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                boxes.append((np.random.randint(0, h - ch + 1), np.random.randint(0, w - cw + 1), ch, cw))
                break
        else:
            side = min(h, w)
            boxes.append(((h - side) // 2, (w - side) // 2, side, side))
    theta = torch.zeros(b, 2, 3)
    for i, (top, left, ch, cw) in enumerate(boxes):
        sign = -1.0 if np.random.rand() < flip else 1.0
        theta[i, 0, 0] = sign * cw / w
        theta[i, 0, 2] = (2 * left + cw) / w - 1
        theta[i, 1, 1] = ch / h
        theta[i, 1, 2] = (2 * top + ch) / h - 1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(x):
    return (0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)


def rgb_to_hsv(x):
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    v = maxc
    delta = maxc - minc
    s = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    d = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    hh = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hh = torch.where(delta > 0, (hh / 6.0) % 1.0, torch.zeros_like(hh))
    return torch.stack([hh, s, v], 1)


def hsv_to_rgb(x):
    h, s, v = x[:, 0], x[:, 1], x[:, 2]
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = torch.zeros_like(x)
    for k, (r, g, b) in enumerate(choices):
        m = (i == k).unsqueeze(1)
        out = torch.where(m, torch.stack([r, g, b], 1), out)
    return out


def color_jitter(x, p=0.8, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1):
    for i in range(x.shape[0]):
        if np.random.rand() >= p:
            continue
        img = x[i : i + 1]
        for op in np.random.permutation(4):
            if op == 0:
                img = (img * np.random.uniform(1 - brightness, 1 + brightness)).clamp(0, 1)
            elif op == 1:
                mean = grayscale(img).mean()
                img = (mean + (img - mean) * np.random.uniform(1 - contrast, 1 + contrast)).clamp(0, 1)
            elif op == 2:
                gray = grayscale(img)
                img = (gray + (img - gray) * np.random.uniform(1 - saturation, 1 + saturation)).clamp(0, 1)
            else:
                hsv = rgb_to_hsv(img)
                hsv[:, 0] = (hsv[:, 0] + np.random.uniform(-hue, hue)) % 1.0
                img = hsv_to_rgb(hsv)
        x[i : i + 1] = img
    return x


def view(x, solarize):
    x = random_resized_crop_and_flip(x)
    x = color_jitter(x)
    gray = torch.from_numpy(np.random.rand(x.shape[0]) < 0.2).view(-1, 1, 1, 1)
    x = torch.where(gray, grayscale(x), x)
    sol = torch.from_numpy(np.random.rand(x.shape[0]) < solarize).view(-1, 1, 1, 1)
    x = torch.where(sol & (x >= 0.5), 1 - x, x)
    return (x - MEAN) / STD


# ---- ADC, our formulation (method.md §3) ----

def nt_xent(z1, z2, temperature=0.2):
    """SimCLR's NT-Xent on unit projections: each of the 2B rows against its positive, over all others."""
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    logits = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), -float("inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, positives)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--steps", type=int, default=1000, help="end of the cosine schedule")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.06)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--method", choices=["byol", "simclr"], default="byol")
    parser.add_argument("--no-adc", action="store_true")
    defaults = ADC()
    for option, field in [("--adc-dcm", "nu"), ("--adc-lpm", "upsilon"), ("--adc-sigma", "sigma"), ("--adc-perplexity", "perplexity"),
                          ("--adc-distance-scale", "distance_scale"), ("--adc-rho", "rho"), ("--adc-tau-in", "tau_in")]:
        parser.add_argument(option, dest=field, type=float, default=getattr(defaults, field))
    parser.add_argument("--adc-bandwidth", dest="bandwidth", default=defaults.bandwidth)
    parser.add_argument("--adc-t-scale", dest="t_scale", choices=["tied", "unit"], default="tied" if defaults.tied_scale else "unit")
    parser.add_argument("--adc-entropy-weights", dest="entropy_weights", default=defaults.entropy_weights)
    parser.add_argument("--adc-lpm-direction", dest="lpm_direction", default=defaults.lpm_direction)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    adc = ADC(bandwidth=args.bandwidth, sigma=args.sigma, perplexity=args.perplexity, distance_scale=args.distance_scale,
              rho=args.rho, tied_scale=args.t_scale == "tied", entropy_weights=args.entropy_weights,
              lpm_direction=args.lpm_direction, tau_in=args.tau_in, nu=args.nu, upsilon=args.upsilon)

    images = load_folder(args.data)
    encoder = ResNetEncoder(width=args.width).to(memory_format=torch.channels_last)
    projector = MLPHead(encoder.feature_dimension, 2048, 256)
    predictor = MLPHead(256, 4096, 256)
    target_encoder = ResNetEncoder(width=args.width).to(memory_format=torch.channels_last)
    target_projector = MLPHead(encoder.feature_dimension, 2048, 256)
    target_encoder.load_state_dict(encoder.state_dict())
    target_projector.load_state_dict(projector.state_dict())
    for p in list(target_encoder.parameters()) + list(target_projector.parameters()):
        p.requires_grad_(False)
    params = list(encoder.parameters()) + list(projector.parameters()) + list(predictor.parameters())
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    optimiser = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}],
                                lr=args.lr, momentum=0.9)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * step / args.warmup
        progress = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
        return args.lr * 0.5 * (1 + math.cos(math.pi * progress))

    started = time.time()
    step = 0
    while step < args.steps and time.time() - started < args.minutes * 60:
        index = torch.randint(0, images.shape[0], (args.batch,))
        x = images[index].permute(0, 3, 1, 2).float() / 255
        v1 = view(x.clone(), 0.0).contiguous(memory_format=torch.channels_last)
        v2 = view(x.clone(), 0.2).contiguous(memory_format=torch.channels_last)
        z = [projector(encoder(v)) for v in (v1, v2)]
        if args.method == "byol":
            p = [predictor(zi) for zi in z]
            with torch.no_grad():
                t = [target_projector(target_encoder(v)) for v in (v1, v2)]
            loss = sum(2 - 2 * F.cosine_similarity(p[i], t[1 - i], dim=1).mean() for i in range(2))
        else:
            loss = nt_xent(F.normalize(z[0], dim=1), F.normalize(z[1], dim=1))
        if not args.no_adc:
            u = pixel_prior((x - MEAN) / STD)
            loss = loss + sum(adc.loss(F.normalize(zi, dim=1), u) for zi in z) / 2
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            for online, target in [] if args.method == "simclr" else ((encoder, target_encoder), (projector, target_projector)):
                for po, pt in zip(online.state_dict().values(), target.state_dict().values()):
                    if pt.dtype.is_floating_point:
                        pt.mul_(0.99).add_(po, alpha=0.01)
        step += 1
        if step % 25 == 0:
            rate = step * args.batch / (time.time() - started)
            print(f"step {step:6d}  {rate:6.1f} img/s  loss {loss.item():.4f}", file=sys.stderr, flush=True)

    save_glf_model(encoder, projector, args)
    print(f"saved step {step} to {args.out} after {(time.time() - started) / 60:.1f} min", file=sys.stderr)


def save_glf_model(encoder, projector, args):
    """Writes a glfd model directory: our parameter names, NHWC/OHWI layout (glf_torch's inverse)."""
    from safetensors.torch import save_file

    tensors = {}
    for prefix, module in (("encoder", encoder), ("projector", projector)):
        for name, value in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            glf_name = prefix + "." + name.replace("_block", ".block")
            value = value.detach().float()
            if value.dim() == 4:
                value = value.permute(0, 2, 3, 1)
            tensors[glf_name] = value.contiguous()
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "model.safetensors"))
    config = {"format": "glfd-model", "formatVersion": 1, "layout": "NHWC, convolution weights OHWI",
              "encoder": {"inputChannels": 3, "imageSize": 32, "width": args.width, "blocksPerStage": [1, 1, 1, 1]},
              "projector": {"inputDimension": encoder.feature_dimension, "hiddenDimension": 2048,
                            "outputDimension": 256, "finalBatchNorm": False}}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


if __name__ == "__main__":
    main()
