"""ADC (method.md §3, revised) in PyTorch, written from the formulas, not from our Swift code: the
PyTorch peer in tools/quality trains with it, and crosscheck_adc.py compares it with `glf loss`.

    z [B, D]  one view's unit projections (gradient flows)      u [B, P]  the prior (no gradient)
    d_ij = ‖z_i − z_j‖²
    σ_i  per anchor, no gradient: perplexity (bisection on H(p_i) = log perplexity), the anchor's
         distance scale (σ_i² = c · mean_j d_ij), or fixed
    p_i  = softmax_j(−d_ij / 2σ_i²)                                      (no gradient)
    q_i  ∝ (1 + κ_i d_ij)^(−(ρ+1)/2),  κ_i = 2β_i/(ρ−2) tied (s_i² = σ_i²(ρ−2)/ρ), 1/ρ untied
    π_i  = softmax_j(−‖u_i − u_j‖² / τ_in),  w = 1/max(H(π), floor) normalised to mean 1
    L    = ν mean_i w_i KL(p_i ‖ q_i) + υ mean_i w'_i D(π_i, q_i)     (w on the terms chosen)
"""
import math
from dataclasses import dataclass

import torch


@dataclass
class ADC:
    bandwidth: str = "perplexity"       # perplexity | distance-scale | fixed
    sigma: float = 1.0
    perplexity: float = 30.0
    distance_scale: float = 0.25
    rho: float = 3.0
    tied_scale: bool = True
    entropy_weights: str = "dcm"        # none | dcm | lpm | both
    lpm_direction: str = "prior-first"  # prior-first: KL(π ‖ q); model-first: KL(q ‖ π)
    tau_in: float = 0.5
    entropy_floor: float = 1e-3
    nu: float = 0.0                     # glf's default: DCM off (README, "Quality")
    upsilon: float = 1.0

    def terms(self, z, u=None):
        """(DCM, LPM or None) on one view's unit projections z [B, D]; LPM needs the prior u [B, P]."""
        b = z.shape[0]
        eye = torch.eye(b, dtype=torch.bool, device=z.device)
        d = squared_distances(z)
        with torch.no_grad():
            beta = self.precision(d.detach().double(), eye).to(z.dtype)
            p = torch.softmax((-beta[:, None] * d.detach()).masked_fill(eye, -math.inf), 1)
            w = None
            if u is not None:
                pi_logits = (-squared_distances(u) / self.tau_in).masked_fill(eye, -math.inf)
                log_pi = torch.log_softmax(pi_logits, 1)
                pi = log_pi.exp()
                entropy = -(pi * log_pi.masked_fill(eye, 0)).sum(1)
                w = 1 / entropy.clamp_min(self.entropy_floor)
                w = w / w.mean()
        kappa = 2 * beta / (self.rho - 2) if self.tied_scale else torch.full_like(beta, 1 / self.rho)
        log_t = -(self.rho + 1) / 2 * torch.log1p(kappa[:, None] * d)
        log_q = torch.log_softmax(log_t.masked_fill(eye, -math.inf), 1).masked_fill(eye, 0)
        ones = torch.ones(b, dtype=z.dtype, device=z.device)
        w_dcm = w if (w is not None and self.entropy_weights in ("dcm", "both")) else ones
        w_lpm = w if (w is not None and self.entropy_weights in ("lpm", "both")) else ones
        log_p = torch.log(p.clamp_min(1e-300)).masked_fill(eye, 0)
        dcm = (w_dcm * (p * (log_p - log_q)).sum(1)).mean()
        if u is None:
            return dcm, None
        log_pi = log_pi.masked_fill(eye, 0)
        if self.lpm_direction == "prior-first":
            lpm = (w_lpm * (pi * (log_pi - log_q)).sum(1)).mean()
        else:
            q = log_q.exp().masked_fill(eye, 0)
            lpm = (w_lpm * (q * (log_q - log_pi)).sum(1)).mean()
        return dcm, lpm

    def loss(self, z, u=None):
        dcm, lpm = self.terms(z, u)
        return self.nu * dcm + (self.upsilon * lpm if lpm is not None else 0)

    def precision(self, d, eye):
        """β_i = 1/2σ_i² [B] from the squared distances d [B, B] (float64, no gradient)."""
        b = d.shape[0]
        if self.bandwidth == "fixed":
            return torch.full((b,), 1 / (2 * self.sigma ** 2), dtype=d.dtype)
        if self.bandwidth == "distance-scale":
            variance = self.distance_scale * d.masked_fill(eye, 0).sum(1) / max(b - 1, 1)
            return torch.where(variance > 0, 1 / (2 * variance.clamp_min(1e-300)), torch.zeros_like(variance))
        return perplexity_precision(d, eye, math.log(self.perplexity))


def squared_distances(x):
    """‖x_i − x_j‖² from norms and the Gram matrix, clamped at 0 (cdist's sqrt has no gradient at 0)."""
    squares = (x * x).sum(1)
    return (squares[:, None] + squares[None, :] - 2 * x @ x.T).clamp_min(0)


def perplexity_precision(d, eye, target_entropy, steps=200):
    """t-SNE's calibration, every anchor at once: bisection on log β so that H(softmax(−β d_i)) over
    j ≠ i equals the target; β = 0 where the target is at or above log(B − 1) (uniform) or all
    distances are equal; the sharpest β tried where the target is below what the data allow."""
    b = d.shape[0]
    far = d.masked_fill(eye, -math.inf).max(1).values
    near = d.masked_fill(eye, math.inf).min(1).values
    spread = far - near
    shifted = (d - near[:, None]).masked_fill(eye, 1e300)

    def entropy(beta):
        e = torch.exp(-beta[:, None] * shifted)
        total = e.sum(1)
        return torch.log(total) + beta * (e * shifted.masked_fill(eye, 0)).sum(1) / total

    safe = spread.clamp_min(1e-300)
    low, high = torch.log(1e-6 / safe), torch.log(1e12 / safe)
    for _ in range(steps):
        middle = (low + high) / 2
        above = entropy(torch.exp(middle)) > target_entropy
        low = torch.where(above, middle, low)
        high = torch.where(above, high, middle)
    beta = torch.exp((low + high) / 2)
    uniform = math.log(b - 1) if b > 1 else 0.0
    return torch.where((spread > 0) & (target_entropy < uniform - 1e-7), beta, torch.zeros_like(beta))


def pixel_prior(x, side=8):
    """x [B, C, H, W] normalised → average-pooled to side×side, rows zero-mean, unit L2 norm."""
    u = torch.nn.functional.adaptive_avg_pool2d(x, side).permute(0, 2, 3, 1).reshape(x.shape[0], -1)
    u = u - u.mean(1, keepdim=True)
    return u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
