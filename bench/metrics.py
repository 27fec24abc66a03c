"""Quality of an accelerated run against the full run of the same seed and prompt."""
import torch
import torch.nn.functional as F


def to_uint8(picture):
    return (picture.clamp(0, 1) * 255).round()


def psnr(reference, picture):
    """PSNR in dB of uint8-quantised pictures in [0, 1] (the paper's protocol)."""
    mse = ((to_uint8(reference) - to_uint8(picture)) ** 2).mean()
    return float("inf") if mse == 0 else float(10 * torch.log10(255.0 ** 2 / mse))


def ssim(reference, picture, window=7, sigma=1.5):
    """Mean SSIM of (B, 1, H, W) pictures in [0, 1], Gaussian window (Wang et al. 2004 constants)."""
    coords = torch.arange(window, dtype=torch.float64) - window // 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    kernel = (g[:, None] * g[None, :] / g.sum() ** 2).view(1, 1, window, window)
    a, b = to_uint8(reference).double() / 255, to_uint8(picture).double() / 255
    blur = lambda t: F.conv2d(t, kernel)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def latent_rel_l2(reference, latent):
    return float((latent - reference).norm() / reference.norm())
