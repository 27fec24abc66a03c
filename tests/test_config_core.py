"""The two policy configs as a report, a log line and a refused widget show them (adaptive_core
alone, no ComfyUI). The expected values are written out, not computed by the code under test."""
import dataclasses
import math

import pytest

import comfy_runtime

comfy_runtime.import_extension()
from adaptive_diffusion.adaptive_core import ErrorControlConfig, SkipConfig  # noqa: E402
from adaptive_diffusion.adaptive_core.config import validate  # noqa: E402
from adaptive_diffusion.adaptive_core.error_control import ErrorControlledPolicy  # noqa: E402
from adaptive_diffusion.adaptive_core.policy import AdaptiveSkipPolicy  # noqa: E402


def test_defaults_are_the_papers_and_ours():
    # the paper's rule: δ 0.01, C_max 4, four warm-up steps (the estimator needs four latents), hold
    assert SkipConfig().settings() == {"criterion": "third_order", "threshold": 0.01, "max_skip_steps": 4,
                                       "warmup_steps": 4, "reference_quirks": False, "reuse": "hold"}
    assert ErrorControlConfig().settings() == {"criterion": "error", "threshold": 0.005, "max_skip_steps": 4,
                                               "warmup_steps": 2, "reuse": "auto"}


def test_descriptions_name_every_setting():
    assert SkipConfig(0.05, 3, 5, reuse="linear").describe() == "third-order δ=0.05, C_max=3, warmup=5, reuse=linear"
    assert ErrorControlConfig(0.0125, 6, 3, "hold").describe() == "error tolerance=0.0125, C_max=6, warmup=3, reuse=hold"


def test_reference_quirks_reuse_as_the_reference_does():
    config = SkipConfig(0.05, 3, 5, reference_quirks=True, reuse="lagrange")
    assert config.reuse_strategy == "hold" and config.settings()["reuse"] == "hold"
    assert config.describe().endswith("reuse=hold")
    policy, reuse = config.build()
    assert isinstance(policy, AdaptiveSkipPolicy) and not reuse.calibrate


def test_each_config_builds_its_own_policy_and_a_reuse_that_measures_when_it_can_choose():
    _, hold = SkipConfig(reuse="hold").build()
    _, auto = SkipConfig(reuse="auto").build()
    assert not hold.calibrate and auto.calibrate
    policy, reuse = ErrorControlConfig(reuse="hold").build()
    assert isinstance(policy, ErrorControlledPolicy) and reuse.calibrate  # the error rule always measures
    assert policy.reuse is reuse and policy.consecutive_skips == 0 and policy.smallest_value == math.inf


@pytest.mark.parametrize("config,reason", [
    (SkipConfig(0.0), "threshold is 0 (skipping disabled)"),
    (SkipConfig(0.01, 0), "max_skip_steps is 0"),
    (SkipConfig(0.01, 0, reference_quirks=True), None),  # the reference's C_max 0 means unlimited
    (SkipConfig(1.0, 1, 0), None),
    (ErrorControlConfig(0.0), "threshold is 0 (skipping disabled)"),
    (ErrorControlConfig(0.005, 0), "max_skip_steps is 0"),
    (ErrorControlConfig(1.0, 1, 0), None),
])
def test_disabled_because(config, reason):
    assert config.disabled_because() == reason


@pytest.mark.parametrize("warmup,first", [(0, 3), (3, 3), (7, 7)])
def test_the_third_order_rule_first_judges_step_three(warmup, first):
    assert SkipConfig(warmup_steps=warmup).first_judged_step == first


@pytest.mark.parametrize("warmup,first", [(0, 2), (2, 2), (5, 5)])
def test_the_error_rule_first_judges_step_two(warmup, first):
    assert ErrorControlConfig(warmup_steps=warmup).first_judged_step == first


def test_every_bad_widget_is_named_once():
    assert validate(0.01, 4, 4, "hold") == []
    assert validate(0, 0, 0, "auto") == [] and validate(1, 0, 0, "linear") == []  # the bounds are allowed
    assert validate(1.001, True, -1, "cubic") == [
        "threshold must be a number between 0 and 1 (0 disables skipping), got 1.001",
        "max_skip_steps must be a whole number >= 0 (0 never skips), got True",
        "warmup_steps must be a whole number >= 0, got -1",
        "reuse must be one of hold, linear, lagrange, auto, got 'cubic'",
    ]
    assert validate("0.1", 4, False, "hold") == [
        "threshold must be a number between 0 and 1 (0 disables skipping), got '0.1'",
        "warmup_steps must be a whole number >= 0, got False",
    ]
    assert len(validate(-1e-9, 4, 4, "hold")) == 1 and len(validate(0.01, -1, 4, "hold")) == 1


def test_the_error_rule_calls_its_threshold_the_tolerance():
    with pytest.raises(ValueError) as refused:
        ErrorControlConfig(tolerance=2.0)
    assert str(refused.value) == ("threshold (the tolerance) must be a number between 0 and 1 (0 disables "
                                  "skipping), got 2.0")
    with pytest.raises(ValueError) as refused:
        ErrorControlConfig(max_skip_steps=-3)
    assert str(refused.value) == "max_skip_steps must be a whole number >= 0 (0 never skips), got -3"
    with pytest.raises(ValueError, match="^threshold must be"):
        SkipConfig(threshold=-0.5)


def test_configs_cannot_change_after_a_run_was_built_from_them():
    for config in (SkipConfig(), ErrorControlConfig()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.max_skip_steps = 9
