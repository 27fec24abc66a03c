"""AdaDiff's uncertainty heads, their losses and their σ-banded calibration (adaptive_core alone, no
ComfyUI), on cases small enough to work out by hand."""
import math

import pytest
import torch

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import UncertaintyHeads  # noqa: E402
from adaptive_diffusion.adaptive_core.calibration import (band_of, certainty_needed, fit_calibration,  # noqa: E402
                                                          fit_knots, needed_per_step, relative_exit_errors,
                                                          step_targets)
from adaptive_diffusion.adaptive_core.uncertainty import (Readout, adadiff_loss, pseudo_certainty,  # noqa: E402
                                                          time_features)


def test_time_features_at_sigma_one():
    # s = σ/(1+σ) = 1/2: sin and cos of π/2, π, 3π/2, 2π
    expected = torch.tensor([[1.0, 0.0, -1.0, 0.0, 0.0, -1.0, 0.0, 1.0]])
    assert torch.allclose(time_features(torch.tensor([1.0])), expected, atol=1e-6)


def test_untrained_heads_are_undecided():
    heads = UncertaintyHeads(3, 4)
    sigma = torch.tensor([2.0, 0.5])
    certainty = heads(1, torch.randn(2, 5, 4), sigma)
    assert certainty.shape == (2, 5) and torch.equal(certainty, torch.full((2, 5), 0.5))


def test_head_reads_the_layer_normed_token_and_the_time_term():
    heads = UncertaintyHeads(2, 2)
    with torch.no_grad():
        heads.token[1].weight.copy_(torch.tensor([[1.5, 0.0]]))
        heads.token[1].bias.fill_(-0.5)
        heads.time[1].weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0]]))
    # a token (a, -a) layer-norms to (1, -1) for any a; the time term at σ = 1 is 2 · cos(π) = -2
    hidden = torch.tensor([[[3.0, -3.0], [-0.2, 0.2]]])
    sigma = torch.tensor([1.0])
    expected = torch.tensor([[1 / (1 + math.exp(-(1.5 - 0.5 - 2))), 1 / (1 + math.exp(-(-1.5 - 0.5 - 2)))]])
    assert torch.allclose(heads(1, hidden, sigma), expected, atol=1e-4)
    # the sampling path (σ terms from the schedule's table, or computed off it) gives the training path's
    readout = Readout(heads, [2.0, 1.0, 0.0])
    for offset in (readout.offset_at(1.0, sigma), readout.offset_at(1.5, torch.tensor([1.0]))):
        assert offset.shape == (2, 1)
        assert torch.allclose(readout.certainties([1], [hidden], offset)[1], expected.mean(), atol=1e-6)
        # the per-block decision: the same mean certainty against the threshold, NaN never there
        mean, biases = float(expected.mean()), readout.biases(offset)
        assert readout.reaches(1, hidden, biases, mean - 1e-4) and not readout.reaches(1, hidden, biases, mean + 1e-4)
        assert not readout.reaches(1, torch.full_like(hidden, math.nan), biases, 0.0)


def test_pseudo_certainty_and_relative_errors():
    # |0 - 0.5| = 0.5 everywhere: û = tanh(0.5)
    assert pseudo_certainty(torch.zeros(2, 3), torch.full((2, 3), 0.5)).tolist() == pytest.approx([1 - math.tanh(0.5)] * 2)
    full = torch.tensor([[3.0, 4.0]])
    errors = relative_exit_errors([torch.zeros(1, 2), torch.tensor([[3.0, 0.0]]), full])
    assert errors.squeeze(1).tolist() == pytest.approx([1.0, 4 / 5, 0.0])


def test_heads_only_loss_fits_the_certainty_to_the_exit_error_against_the_full_output():
    target = torch.full((1, 2), 9.0)  # the data: ignored without a trainable backbone
    outputs = [torch.zeros(1, 2), torch.ones(1, 2)]  # block 0 is 1 away from the full output everywhere
    predicted = [torch.tensor([0.5]), torch.tensor([0.25])]
    loss, parts = adadiff_loss(outputs, predicted, target, train_backbone=False)
    expected = (0.5 - (1 - math.tanh(1.0))) ** 2 + (0.25 - 1.0) ** 2
    assert set(parts) == {"u"} and float(loss) == pytest.approx(expected, rel=1e-6)


def test_full_objective_adds_the_final_error_and_the_certainty_weighted_exit_errors():
    target = torch.zeros(1, 2)
    outputs = [torch.full((1, 2), 2.0), torch.ones(1, 2)]  # squared errors 4 and 1
    predicted = [torch.tensor([0.25]), torch.tensor([0.75])]
    loss, parts = adadiff_loss(outputs, predicted, target, train_backbone=True)
    labels = [1 - math.tanh(2.0), 1 - math.tanh(1.0)]
    assert parts["u"] == pytest.approx((0.25 - labels[0]) ** 2 + (0.75 - labels[1]) ** 2, rel=1e-6)
    assert parts["simple"] == pytest.approx(1.0)
    assert parts["ual"] == pytest.approx(0.25 * 4 + 0.75 * 1)
    assert float(loss) == pytest.approx(sum(parts.values()), rel=1e-6)


def test_both_objectives_over_three_blocks():
    # three exits, so that "the last" and "the second" differ; certainties summing to 2, not 1
    target = torch.ones(1, 2)
    outputs = [torch.full((1, 2), 3.0), torch.full((1, 2), 4.0), torch.zeros(1, 2)]  # squared errors 4, 9, 1
    predicted = [torch.tensor([0.5]), torch.tensor([0.5]), torch.tensor([1.0])]
    _, parts = adadiff_loss(outputs, predicted, target, train_backbone=True)
    labels = [1 - math.tanh(2.0), 1 - math.tanh(3.0), 1 - math.tanh(1.0)]  # |g - target|: 2, 3, 1
    assert parts["u"] == pytest.approx(sum((p - l) ** 2 for p, l in zip((0.5, 0.5, 1.0), labels)), rel=1e-6)
    assert parts["simple"] == pytest.approx(1.0)
    assert parts["ual"] == pytest.approx(0.25 * 4 + 0.25 * 9 + 0.5 * 1)  # weights: certainty / its sum
    _, heads_only = adadiff_loss(outputs, predicted, target, train_backbone=False)
    labels = [1 - math.tanh(3.0), 1 - math.tanh(4.0), 1.0]  # against the full output, 0: |g|
    assert heads_only["u"] == pytest.approx(sum((p - l) ** 2 for p, l in zip((0.5, 0.5, 1.0), labels)), rel=1e-6)


def test_calibration_fits_eight_bins_by_default_and_never_an_empty_one():
    certainties, errors = torch.linspace(0, 1, 16)[None], torch.linspace(1, 0, 16)[None]
    assert len(fit_knots(certainties, errors)[0]) == 8
    (table,) = fit_knots(certainties[:, :3], errors[:, :3])
    assert len(table) == 3 and all(math.isfinite(e) for _, e in table)


def test_each_band_of_sigma_has_its_own_table():
    # the same certainties promise 4x the error at σ 10 and 5 as at σ 1 and 0.5
    c = torch.tensor([0.2, 0.4, 0.6, 0.8]).repeat(2)
    sigmas = torch.tensor([10.0, 5.0, 10.0, 5.0, 1.0, 0.5, 1.0, 0.5]).repeat_interleave(2)
    errors = torch.cat([0.4 * (1 - c), 0.1 * (1 - c)])[None]
    calibration = fit_calibration(torch.cat([c, c])[None], errors, sigmas, bands=2, bins=2)
    assert calibration["edges"] == [1.0]  # where the second band begins
    assert [band_of([1.0], s) for s in (20.0, 10.0, 1.5, 1.0, 0.1)] == [0, 0, 0, 1, 1]
    high, low = calibration["knots"]  # bin means of certainty 0.3 and 0.7
    assert sum(high[0], ()) == pytest.approx((0.3, 0.28, 0.7, 0.12)) and sum(low[0], ()) == pytest.approx((0.3, 0.07, 0.7, 0.03))
    # step sizes 0.5, 0.9, 1 (mean 0.8): targets 0.08, 0.044, 0.04 at target_error 0.05
    needed = needed_per_step(calibration, 0.05, [10.0, 5.0, 0.5, 0.0])
    assert needed[:2] == [[math.inf]] * 2  # nothing seen at high σ promises 0.08
    assert needed[2] == pytest.approx([0.3 + 0.4 * 0.03 / 0.04])  # between the low band's knots
    # a quarter of the samples: fewer than MIN_PER_BIN per bin in two bands, so one table for every σ
    pooled = fit_calibration(torch.cat([c, c])[None, ::4], errors[:, ::4], sigmas[::4], bands=2, bins=2)
    assert pooled["edges"] == [] and len(pooled["knots"]) == 1


def test_calibration_never_promises_less_error_than_a_more_certain_bin():
    certainties = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]])
    errors = torch.tensor([[0.8, 0.6, 0.1, 0.1, 0.3, 0.2, 0.05, 0.01]])
    (table,) = fit_knots(certainties, errors, bins=4)
    # bin means (0.15, 0.7) (0.35, 0.1) (0.55, 0.25) (0.75, 0.03); the second is raised to 0.25
    assert [c for c, _ in table] == pytest.approx([0.15, 0.35, 0.55, 0.75])
    assert [e for _, e in table] == pytest.approx([0.7, 0.25, 0.25, 0.03])
    # 0.1 lies between (0.55, 0.25) and (0.75, 0.03): 0.55 + 0.2 · 0.15 / 0.22
    assert certainty_needed([table], 0.1) == pytest.approx([0.55 + 0.2 * 0.15 / 0.22])
    assert certainty_needed([table], 0.8) == pytest.approx([0.15])  # the least certain bin is good enough
    assert certainty_needed([table], 0.25) == pytest.approx([0.35])  # exactly a knot's error
    assert certainty_needed([table], 0.01) == [math.inf]  # nothing seen promises it


def test_each_step_may_put_the_same_error_into_the_latent():
    # one block; the expected exit error falls linearly from 0.4 at certainty 0 to 0 at certainty 1
    calibration = {"edges": [], "knots": [[[(0.0, 0.4), (1.0, 0.0)]]]}  # one band of σ
    # relative step sizes |σ - σ'|/σ: 0.1, 0.5, 1 (the last step lands on 0); mean 1.6/3
    needed = needed_per_step(calibration, 0.03, [10.0, 9.0, 4.5, 0.0])
    targets = [0.03 * (1.6 / 3) / size for size in (0.1, 0.5, 1.0)]
    assert step_targets(0.03, [10.0, 9.0, 4.5, 0.0]) == pytest.approx(targets)
    assert [row[0] for row in needed] == pytest.approx([1 - t / 0.4 for t in targets])
    assert needed[0][0] < needed[1][0] < needed[2][0]  # the small first step exits most easily
    # a step that does not move takes any exit, unless no exit may happen anywhere (threshold > 1)
    assert needed_per_step(calibration, 0.03, [2.0, 2.0, 1.0, 0.0])[0] == [0.0]
    assert needed_per_step(calibration, -0.01, [2.0, 2.0, 1.0, 0.0]) == [[math.inf]] * 3
