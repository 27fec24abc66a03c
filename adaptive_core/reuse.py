import torch


class NoisePredictionCache:
    """What a skipped step reuses: the noise prediction of the last real call.

    In ComfyUI's parametrisation x = x0 + σ·n (EPS/V) or x = (1-σ)·x0 + σ·n (flow) every call
    returns the denoised estimate D; d = (x - D)/σ is k-diffusion's derivative (ε for EPS/V models,
    the velocity for flow models). Reusing d at a new (x_t, σ_t) gives D_t = x_t - σ_t·d, which is
    the paper's reuse of ε; returning the stale D would be a different, worse approximation.
    """

    def __init__(self):
        self.derivative = None

    def store(self, x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor):
        """Only for σ > 0: at σ = 0 the derivative is undefined."""
        self.derivative = ((x - denoised) / _broadcast(sigma, x)).detach()

    def finite(self) -> torch.Tensor:
        """Whether what is stored is usable, as a 0-dim tensor (not read back here)."""
        return torch.isfinite(self.derivative).all()

    def can_rebuild(self, x: torch.Tensor) -> bool:
        return self.derivative is not None and self.derivative.shape == x.shape

    def rebuild(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x - _broadcast(sigma, x) * self.derivative

    def clear(self):
        self.derivative = None


def _broadcast(sigma, x):
    return sigma.reshape(sigma.shape[:1] + (1,) * (x.ndim - 1)).to(x.dtype)
