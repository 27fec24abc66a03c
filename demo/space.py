"""The demo models' world: procedural pictures for eight prompts, and the exact mapping between
pictures and each demo model's latent space.

A 32x32 grayscale picture in [0, 1] maps to a model-space latent by pixel-unshuffle of
(2·picture − 1): 4x4 blocks into the 16 channels of the Wan 2.1 demo model (with a frame axis),
2x2 blocks into the 4 channels of the SD1.x demo UNets. The map is a permutation plus an affine
step, so it is exactly invertible: every latent the sampler produces can be shown as a picture,
and PSNR between pictures is PSNR between latents.
"""
import math

import torch
import torch.nn.functional as F

SIZE = 32
PROMPTS = ["a circle", "a square", "a ring", "a cross", "horizontal stripes", "vertical stripes",
           "a checkerboard", "a triangle"]


def picture_to_latent(picture: torch.Tensor, channels: int, video: bool) -> torch.Tensor:
    """(B, 1, 32, 32) in [0, 1] -> (B, channels, 32/√channels, 32/√channels) model-space latent,
    with a frame axis of length 1 after the channels for a video model."""
    latent = F.pixel_unshuffle(picture * 2 - 1, math.isqrt(channels))
    return latent.unsqueeze(2) if video else latent


def latent_to_picture(latent: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) or a video latent (B, C, T, H, W) -> (B*T, 1, 32, 32), not clamped."""
    if latent.ndim == 5:
        b, c, t, h, w = latent.shape
        latent = latent.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    return (F.pixel_shuffle(latent, math.isqrt(latent.shape[1])) + 1) / 2


def draw(prompt_index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random picture per entry of prompt_index: (B, 1, 32, 32) in [0, 1]."""
    b = prompt_index.shape[0]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(b, 1, 1, generator=generator)
    coords = (torch.arange(SIZE, dtype=torch.float32) + 0.5) / SIZE
    y, x = coords.view(1, SIZE, 1), coords.view(1, 1, SIZE)
    # shapes span several of the model's 8x8-pixel tokens, or the tiny model cannot tell them apart
    cy, cx, r = u(0.35, 0.65), u(0.35, 0.65), u(0.22, 0.34)
    dy, dx = y - cy, x - cx
    dist = (dy ** 2 + dx ** 2).sqrt()
    period, phase = u(0.12, 0.25), u(0, 1)
    shapes = torch.stack([
        dist < r,                                                           # circle
        (dy.abs() < r * 0.85) & (dx.abs() < r * 0.85),                      # square
        (dist < r) & (dist > r * 0.55),                                     # ring
        ((dy.abs() < r * 0.28) & (dx.abs() < r)) | ((dx.abs() < r * 0.28) & (dy.abs() < r)),  # cross
        ((y / period + phase) % 1 < 0.5).expand(b, SIZE, SIZE),            # horizontal stripes
        ((x / period + phase) % 1 < 0.5).expand(b, SIZE, SIZE),            # vertical stripes
        (((y / period).floor() + (x / period).floor() + (phase > 0.5)) % 2 == 0),  # checkerboard
        (dy < r * 0.8) & (dy > -r) & (dx.abs() < (dy + r) * 0.6),           # triangle, apex up
    ], dim=1).float()
    mask = shapes[torch.arange(b), prompt_index]
    background, foreground = u(0.0, 0.25), u(0.7, 1.0)
    return (background + (foreground - background) * mask).unsqueeze(1)
