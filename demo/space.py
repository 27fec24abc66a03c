"""The demo model's world: procedural pictures for eight prompts, and the exact mapping between
pictures and the model's latent space.

A latent of the tiny Wan 2.1 demo model has 16 channels; a 32x32 grayscale picture in [0, 1] maps
to it by 4x4 pixel-unshuffle of (2·picture − 1): 16 values per 4x4 block, one per channel. The map
is a permutation plus an affine step, so it is exactly invertible: every latent the sampler
produces can be shown as a picture, and PSNR between pictures is PSNR between latents.
"""
import torch
import torch.nn.functional as F

SIZE = 32
PATCH = 4
PROMPTS = ["a circle", "a square", "a ring", "a cross", "horizontal stripes", "vertical stripes",
           "a checkerboard", "a triangle"]


def picture_to_latent(picture: torch.Tensor) -> torch.Tensor:
    """(B, 1, 32, 32) in [0, 1] -> (B, 16, 1, 8, 8) model-space latent."""
    return F.pixel_unshuffle(picture * 2 - 1, PATCH).unsqueeze(2)


def latent_to_picture(latent: torch.Tensor) -> torch.Tensor:
    """(B, 16, T, 8, 8) -> (B*T, 1, 32, 32), not clamped."""
    b, c, t, h, w = latent.shape
    frames = latent.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    return (F.pixel_shuffle(frames, PATCH) + 1) / 2


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
