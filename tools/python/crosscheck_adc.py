#!/usr/bin/env python3
"""Cross-check of ADC: `glf loss simclr --adc` against glf_adc.py (PyTorch autograd, float64).

For each setting below it writes random projections z [2B, D] and a prior u [B, P], runs
`glf loss` with and without --adc (the difference of the two grad_z.npy is ADC's gradient, folded
through the normalisation), and compares the DCM and LPM values and that gradient with PyTorch's
on the same inputs. Exits 1 if a value or the gradient differs by 1e-4 or more (relative).

    python3 tools/python/crosscheck_adc.py --glf .build/release/glf
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from glf_adc import ADC  # noqa: E402

SETTINGS = [
    ("defaults (perplexity 30, ρ 3 tied, ν 0)", [], ADC()),
    ("ν 1 (perplexity 30, ρ 3 tied, weights on DCM)", ["--adc-dcm", "1"], ADC(nu=1)),
    ("perplexity 5, ρ 2.5, weights on both", ["--adc-dcm", "1", "--adc-perplexity", "5", "--adc-rho", "2.5",
                                               "--adc-entropy-weights", "both"],
     ADC(nu=1, perplexity=5, rho=2.5, entropy_weights="both")),
    ("distance scale 0.5, ρ 6, LPM model-first", ["--adc-dcm", "1", "--adc-bandwidth", "distance-scale",
                                                  "--adc-distance-scale", "0.5", "--adc-rho", "6",
                                                  "--adc-lpm-direction", "model-first"],
     ADC(nu=1, bandwidth="distance-scale", distance_scale=0.5, rho=6, lpm_direction="model-first")),
    ("first version (σ 1, ρ 1 unit, weights on both)", ["--adc-dcm", "1", "--adc-bandwidth", "fixed", "--adc-sigma", "1",
                                                         "--adc-rho", "1", "--adc-t-scale", "unit", "--adc-entropy-weights", "both"],
     ADC(nu=1, bandwidth="fixed", sigma=1, rho=1, tied_scale=False, entropy_weights="both")),
    ("ν 0.3, υ 3, τ_in 0.2, weights on LPM", ["--adc-dcm", "0.3", "--adc-lpm", "3", "--adc-tau-in", "0.2",
                                               "--adc-entropy-weights", "lpm"],
     ADC(nu=0.3, upsilon=3, tau_in=0.2, entropy_weights="lpm")),
]


def glf_loss(glf, directory, extra):
    out = subprocess.run([glf, "loss", "simclr", "--dir", directory] + extra, capture_output=True, text=True, check=True).stdout
    values = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+)\s+\S+\s+(-?[0-9.eE+-]+)", out, re.M)}
    return values, np.load(os.path.join(directory, "grad_z.npy")).astype(np.float64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--glf", default=".build/release/glf")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    b, d = args.batch, args.width
    # Clustered projections, as a trained model gives (uniform random ones make every p flat).
    centres = rng.standard_normal((8, d))
    z = (centres[rng.integers(0, 8, 2 * b)] + 0.6 * rng.standard_normal((2 * b, d))).astype(np.float32)
    u = rng.standard_normal((b, 192)).astype(np.float32)
    u -= u.mean(1, keepdims=True)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    worst = 0.0
    with tempfile.TemporaryDirectory() as directory:
        np.save(os.path.join(directory, "z.npy"), z)
        np.save(os.path.join(directory, "u.npy"), u)
        _, base = glf_loss(args.glf, directory, [])
        for name, flags, adc in SETTINGS:
            values, with_adc = glf_loss(args.glf, directory, ["--adc"] + flags)
            ours = with_adc - base
            zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
            unit = torch.nn.functional.normalize(zt, dim=1)
            ut = torch.tensor(u, dtype=torch.float64)
            pieces = [adc.terms(unit[v * b:(v + 1) * b], ut) for v in range(2)]
            dcm = sum(p[0] for p in pieces) / 2
            lpm = sum(p[1] for p in pieces) / 2
            (adc.nu * dcm + adc.upsilon * lpm).backward()
            theirs = zt.grad.numpy()
            gradient_error = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
            dcm_error = abs(values["adc.dcm"] - dcm.item()) / max(abs(dcm.item()), 1e-12)
            lpm_error = abs(values["adc.lpm"] - lpm.item()) / max(abs(lpm.item()), 1e-12)
            worst = max(worst, gradient_error, dcm_error, lpm_error)
            print(f"{name:55s} DCM {values['adc.dcm']:.6f} vs {dcm.item():.6f}  LPM {values['adc.lpm']:.6f} vs {lpm.item():.6f}"
                  f"  ‖Δ∇‖/‖∇‖ {gradient_error:.1e}")
    print(f"worst relative difference {worst:.1e} (limit 1e-4)")
    sys.exit(0 if worst < 1e-4 else 1)


if __name__ == "__main__":
    main()
