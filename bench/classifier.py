"""A small classifier of the demo data set's eight prompts, trained here, for a distribution metric
against the data (a Fréchet distance on its features, like FID with an Inception network) and the
share of samples the classifier recognises as their prompt. No downloaded weights."""
import torch
from torch import nn

from adaptive_diffusion.demo import space as demo_space


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, len(demo_space.PROMPTS))

    def forward(self, pictures):
        return self.head(self.features(pictures))


def train(steps=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(steps):
        labels = torch.randint(len(demo_space.PROMPTS), (64,), generator=g)
        pictures = demo_space.draw(labels, g)
        loss = nn.functional.cross_entropy(model(pictures), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    labels = torch.arange(len(demo_space.PROMPTS)).repeat(64)
    with torch.no_grad():
        data = demo_space.draw(labels, torch.Generator().manual_seed(seed + 1))
        accuracy = float((model(data).argmax(1) == labels).float().mean())
        reference = model.features(data).double()
    return model, accuracy, reference


def frechet_distance(a, b):
    """Between Gaussians fitted to two feature sets (rows are samples)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # tr(sqrt(cov_a cov_b)) from the eigenvalues of sqrt(cov_a) cov_b sqrt(cov_a), which is symmetric
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)
