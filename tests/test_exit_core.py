"""AdaDiff's per-run exit decision and its report (adaptive_core alone, no ComfyUI), on cases small
enough to work out by hand."""
import math

import pytest
import torch

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import ExitReport, ExitRun, RunStatus, UncertaintyHeads  # noqa: E402
from adaptive_diffusion.adaptive_core.early_exit import ExitStep  # noqa: E402
from adaptive_diffusion.adaptive_core.uncertainty import Readout, token_sample  # noqa: E402

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
