import torch

# Latents the estimator compares: x_{k-3} .. x_k give the first differences d_{k-2}, d_{k-1}, d_k.
LATENTS_NEEDED = 4
# The value read before step k needs x_0 .. x_k, so step 3 is the first a policy can judge.
FIRST_JUDGED_STEP = LATENTS_NEEDED - 1


class ThirdOrderEstimator:
    """The paper's third-order latent-difference estimator, in the reference code's scalar form.

    With d_k = mean|x_k - x_{k-1}| over every element (one decision for the whole batch), the
    relative third-order difference is

        r_k = |d_k - 2 d_{k-1} + d_{k-2}| / (2 d_{k-1})

    and the next step may reuse the last noise prediction when r_k <= δ. The published δ values
    belong to this form. State stays on the latents' device: one latent and three scalars.
    """

    def __init__(self):
        self.previous = None
        self.differences = []  # the last two first differences, as 0-dim tensors

    def peek(self, latent: torch.Tensor):
        """r_k if x_k = latent were added, as a 0-dim tensor (NaN until four latents exist),
        and the new first difference d_k, for :meth:`commit`. Reads nothing back to the host."""
        latent = latent.detach()
        difference = None if self.previous is None else (latent - self.previous).abs().mean()
        if difference is None or len(self.differences) < 2:
            return torch.full((), float("nan"), device=latent.device), difference
        (d2, d1), d0 = self.differences, difference
        # |d_k - 2 d_{k-1} + d_{k-2}| / (2 d_{k-1}), in the reference's arithmetic and the latents' dtype
        return ((d0 + d2) / 2 - d1).abs() / d1, difference

    def commit(self, latent: torch.Tensor, difference):
        self.previous = latent.detach()
        if difference is not None:
            self.differences = self.differences[-1:] + [difference]
