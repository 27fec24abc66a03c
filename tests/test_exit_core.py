"""AdaDiff's heads, losses, calibration and per-run exit decision (adaptive_core alone, no ComfyUI),
on cases small enough to work out by hand."""
import math

import pytest
import torch

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import ExitReport, ExitRun, RunStatus, UncertaintyHeads  # noqa: E402
from adaptive_diffusion.adaptive_core.early_exit import ExitStep  # noqa: E402
from adaptive_diffusion.adaptive_core.calibration import (band_of, certainty_needed, fit_calibration,  # noqa: E402
                                                          fit_knots, needed_per_step, relative_exit_errors,
                                                          step_targets)
from adaptive_diffusion.adaptive_core.uncertainty import (Readout, adadiff_loss, pseudo_certainty,  # noqa: E402
                                                          time_features, token_sample)

SIGMOID = {b: 1 / (1 + math.exp(-b)) for b in (-2.0, 0.0, 1.0, 3.0)}


def every_step(needed, schedule):
    """``needed`` (per block) at each step of ``schedule``, as ExitRun takes it."""
    return [needed] * (len(schedule) - 1)


def heads_with(biases, hidden_size=2):
    """Heads whose certainty after block i is sigmoid(biases[i]) whatever the hidden state and σ."""
    heads = UncertaintyHeads(len(biases), hidden_size)
    with torch.no_grad():
        for layer, b in zip(heads.token, biases):
            layer.bias.fill_(b)
    return heads


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


def test_per_block_exits_after_the_first_block_certain_enough():
    # certainties sigmoid(-2) ≈ 0.12, sigmoid(1) ≈ 0.73, sigmoid(3) ≈ 0.95 after blocks 0-2; block 3 is the last
    run = ExitRun(heads_with([-2.0, 1.0, 3.0, 3.0]), every_step([0.5, 0.9, 0.9, 0.0], [2.0, 1.0, 0.0]), [2.0, 1.0, 0.0], 0.9)
    assert run.judged_at == [[0, 1, 2]] * 2  # never after the last block, which is the full model
    run.begin(torch.tensor([2.0]))
    hidden = torch.zeros(1, 3, 2)
    assert [run.after_block(i, hidden) for i in range(3)] == [False, False, True]
    run.end()
    run.begin(torch.tensor([1.0]))
    assert run.after_block(0, hidden) is False and run.blocks == 1
    run.end()
    report = run.finish()
    assert [(s.step, s.sigma, s.calls, s.blocks) for s in report.steps] == [(0, 2.0, 1, 3), (1, 1.0, 1, 1)]
    assert report.block_fraction == pytest.approx(4 / 8) and report.notes == []
    assert report.summary().startswith("AdaDiff early exit: 4/8 blocks evaluated (50.0% skipped) over 2 forward passes")


def test_per_call_exits_where_the_previous_pass_was_certain_enough():
    run = ExitRun(heads_with([-2.0, 1.0, 3.0, 3.0]), every_step([0.5, 0.7, 0.9, 0.0], [2.0, 1.0, 0.5, 0.0]), [2.0, 1.0, 0.5, 0.0], 0.9, "per_call")
    hidden = torch.zeros(1, 3, 2)
    run.begin(torch.tensor([2.0]))
    assert run.exit_at is None  # nothing known yet: the first pass runs every block
    assert [run.after_block(i, hidden) for i in range(4)] == [False] * 4
    run.end()
    run.begin(torch.tensor([1.0]))  # reads the last pass's certainties with this pass's σ
    assert run.previous == pytest.approx({0: SIGMOID[-2.0], 1: SIGMOID[1.0], 2: SIGMOID[3.0]})
    assert run.exit_at == 1  # block 0's 0.12 < 0.5; block 1's 0.73 ≥ 0.7
    assert [run.after_block(i, hidden) for i in range(2)] == [False, True]
    run.end()
    run.begin(torch.tensor([0.5]))
    assert run.previous == pytest.approx({0: SIGMOID[-2.0], 1: SIGMOID[1.0]})  # what that pass computed
    run.end()
    assert [s.blocks for s in run.finish().steps] == [4, 2, 0]  # no block ran in the last pass


def test_per_call_certainties_batched_are_each_blocks_own():
    torch.manual_seed(0)
    heads = UncertaintyHeads(4, 8)
    with torch.no_grad():
        for p in heads.parameters():
            p.normal_()
    readout = Readout(heads, [1.0, 0.7, 0.0])
    offset = readout.offset_at(0.7, torch.tensor([0.7, 0.7]))
    # blocks of two shapes (Flux's double then single blocks), batched per shape, in the order given back
    hiddens = [torch.randn(2, 9, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8)]
    order, batched = readout.certainties([3, 0, 2], hiddens, offset)
    assert order == [3, 0, 2]
    # each block's own: the training path's certainty, the mean over tokens of the per-token heads
    each = torch.stack([heads(b, h, torch.tensor([0.7, 0.7])).mean() for b, h in zip(order, hiddens)])
    assert torch.allclose(batched, each, atol=1e-6)
    assert not torch.allclose(each[1], each[2])


def test_token_sample_keeps_evenly_strided_tokens_as_a_copy():
    hidden = torch.arange(2 * 10 * 1.0).reshape(2, 10, 1)
    kept = token_sample(hidden, 4)
    assert kept[0, :, 0].tolist() == [0.0, 3.0, 6.0, 9.0]
    hidden.zero_()  # a later block writing in place must not change what was kept
    assert kept.sum() > 0 and torch.equal(token_sample(hidden, 16), hidden)


def test_non_finite_certainty_never_exits():
    run = ExitRun(heads_with([20.0, 20.0, 20.0], hidden_size=8), every_step([0.9, 0.9, 0.9], [1.0, 0.5, 0.0]), [1.0, 0.5, 0.0], 0.9)
    run.begin(torch.tensor([1.0]))
    assert run.after_block(0, torch.full((1, 4, 8), float("nan"))) is False
    assert run.after_block(1, torch.ones(1, 4, 8)) is True
    run.end()
    report = run.finish()
    assert report.blocks_evaluated == 2 and report.schedule_steps == 2
    assert report.as_dict()["steps"] == [{"step": 0, "sigma": 1.0, "calls": 1, "mean_blocks": 2.0,
                                          "mean_exit_block": 1.0}]


def test_reports_say_why_nothing_exited():
    unreachable = ExitRun(heads_with([3.0, 3.0]), every_step([math.inf, 0.0], [1.0, 0.0]), [1.0, 0.0], 2.0)
    assert not unreachable.enabled
    assert unreachable.finish().notes == ["no exits: no block's certainty can reach the threshold"]
    never = ExitRun(heads_with([0.0, 0.0]), every_step([0.9, 0.0], [1.0, 0.0]), [1.0, 0.0], 0.9)
    never.begin(torch.tensor([1.0]))
    never.after_block(0, torch.zeros(1, 2, 2))
    never.after_block(1, torch.zeros(1, 2, 2))
    never.end()
    report = never.finish(RunStatus.INTERRUPTED)
    assert report.notes == ["no exits: the certainty never reached the threshold 0.9"]
    assert report.summary().startswith("AdaDiff early exit: INTERRUPTED: 2/2 blocks evaluated (0.0% skipped)")
    assert report.as_dict()["totals"] == {"forward_passes": 1, "blocks_evaluated": 2, "full_blocks": 2,
                                          "block_fraction": 1.0}


def test_a_report_as_the_layer_map_node_returns_it():
    report = ExitReport(0.97, 4, schedule_steps=3, steps=[ExitStep(0, 2.0, calls=2, blocks=7), ExitStep(1, 1.0)],
                        notes=["a note"])
    assert report.summary() == ("AdaDiff early exit: 7/8 blocks evaluated (12.5% skipped) over 2 forward passes, "
                                "certainty threshold 0.97; a note")
    expected = {"method": "AdaDiff early exit", "status": "complete", "threshold": 0.97, "blocks": 4,
                "steps": [{"step": 0, "sigma": 2.0, "calls": 2, "mean_blocks": 3.5, "mean_exit_block": 2.5},
                          {"step": 1, "sigma": 1.0, "calls": 0, "mean_blocks": 4, "mean_exit_block": 3}],
                "totals": {"forward_passes": 2, "blocks_evaluated": 7, "full_blocks": 8, "block_fraction": 0.875},
                "notes": ["a note"], "summary": report.summary()}
    assert report.as_dict() == expected
    assert report.to_json().startswith('{\n "method": "AdaDiff early exit",\n "status": "complete",')
    empty = ExitReport(0.9, 4)
    assert empty.schedule_steps == 0 and empty.steps == [] and empty.block_fraction == 1.0
    thirds = ExitReport(0.9, 3, steps=[ExitStep(0, 1.0, calls=3, blocks=5)]).as_dict()
    assert thirds["totals"]["block_fraction"] == 0.5556  # 5/9, to four places like every mean
    assert (thirds["steps"][0]["mean_blocks"], thirds["steps"][0]["mean_exit_block"]) == (1.6667, 0.6667)


@pytest.mark.parametrize("decide", ["per_block", "per_call"])
def test_a_certainty_exactly_at_the_threshold_exits(decide):
    exactly = float(torch.sigmoid(torch.tensor(1.0)))  # block 0's certainty on one token
    run = ExitRun(heads_with([1.0, 0.0]), every_step([exactly, 0.0], [2.0, 1.0, 0.0]), [2.0, 1.0, 0.0], 0.9, decide)
    one_token = torch.zeros(1, 1, 2)
    for sigma in (2.0, 1.0):
        run.begin(torch.tensor([sigma]))
        exited = run.after_block(0, one_token)
        run.end()
    assert exited  # per_call: on the second pass, from the first pass's certainty


def test_a_block_without_a_threshold_is_never_judged():
    run = ExitRun(heads_with([3.0, 3.0, 3.0]), every_step([math.inf, 0.5, 0.0], [1.0, 0.0]), [1.0, 0.0], 0.9)
    run.begin(torch.tensor([1.0]))
    assert run.after_block(0, torch.zeros(1, 2, 2)) is False and run.after_block(1, torch.zeros(1, 2, 2)) is True


def test_an_unknown_decide_is_refused():
    with pytest.raises(ValueError, match=r"^decide must be one of per_block, per_call, got 'sometimes'$"):
        ExitRun(heads_with([0.0]), every_step([0.0], [1.0, 0.0]), [1.0, 0.0], 0.9, "sometimes")


def test_passes_of_one_step_add_up_in_its_record():
    # cond and uncond in separate passes, or a second call of a multi-call sampler at the same σ;
    # block 0 is not judged, block 1 exits
    run = ExitRun(heads_with([3.0, 3.0, 3.0]), every_step([math.inf, 0.9, 0.0], [2.0, 1.0, 0.0]), [2.0, 1.0, 0.0], 0.9)
    for sigma in (2.0, 2.0, 1.0):
        run.begin(torch.tensor([sigma]))
        assert [run.after_block(i, torch.zeros(1, 2, 2)) for i in range(2)] == [False, True]
        run.end()
    assert [(s.step, s.calls, s.blocks) for s in run.finish().steps] == [(0, 2, 4), (1, 1, 2)]


def test_per_call_never_exits_on_a_non_finite_certainty():
    run = ExitRun(heads_with([20.0, 0.0], hidden_size=8), every_step([0.9, 0.0], [2.0, 1.0, 0.0]), [2.0, 1.0, 0.0], 0.9, "per_call")
    run.begin(torch.tensor([2.0]))
    run.after_block(0, torch.full((1, 4, 8), float("nan")))
    run.end()
    run.begin(torch.tensor([1.0]))
    assert run.exit_at is None and math.isnan(run.previous[0])  # read as it is: NaN compares False
