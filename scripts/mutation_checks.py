"""Shows that the tests can fail: each one-line mutation of the product below must make the named
test fail. Each runs in a throw-away copy of the repository (the working tree is never touched).

    .runtime/0.33.0/venv/bin/python scripts/mutation_checks.py          # about 10 minutes
    .runtime/0.33.0/venv/bin/python scripts/mutation_checks.py --only 3 7

Prints one row per mutation (caught or SURVIVED) and exits 1 if any survived. docs/testing.md
lists the results.
"""
import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]

# (file, the line as it is, the mutated line, the test that must fail)
MUTATIONS = [
    ("maps/skip_map.py", 'REUSED = (230, 159, 0)', 'REUSED = (0, 114, 178)',
     "tests/test_maps.py::test_skip_map_draws_one_cell_per_step_in_its_colour"),
    ("maps/skip_map.py", "        y = scale(threshold)", "        y = scale(threshold / 2)",
     "tests/test_maps.py::test_threshold_line_sits_at_its_value_on_the_plot"),
    ("maps/layer_map.py", "            filled = min(max(mean - b, 0.0), 1.0)", "            filled = min(max(mean - b - 1, 0.0), 1.0)",
     "tests/test_maps.py::test_layer_map_fills_the_evaluated_blocks"),
    ("adaptive_core/reuse.py", "                weight *= (at - other) / (node - other)",
     "                weight *= (at - other) / (other - node)",
     "tests/test_reuse.py::test_extrapolation_reproduces_the_full_run_where_it_is_exact"),
    ("adaptive_core/reuse.py", "MAX_CORRECTION = 0.5", "MAX_CORRECTION = 50",
     "tests/test_reuse_memory.py::test_unstable_history_falls_back_to_hold"),
    ("adaptive_core/reuse.py", "NEWEST = 0.5", "NEWEST = 0.25",
     "tests/test_error_control.py::test_running_error_by_hand"),
    ("adaptive_core/error_control.py",
     '            value = values["error"] * (step - self.reuse.last_call) * abs(sigma - next_sigma) / sigma',
     '            value = values["error"] * (step - self.reuse.last_call) * abs(sigma - next_sigma)',
     "tests/test_error_control.py::test_error_policy_judges_error_times_distance_times_step_size"),
    ("adaptive_core/estimator.py", "        return ((d0 + d2) / 2 - d1).abs() / d1, difference",
     "        return ((d0 + d2) / 2 - d1).abs() / d0, difference",
     "tests/test_core.py::test_estimator_value_is_relative_third_order_difference"),
    ("adaptive_core/estimator.py", "        return ((d0 + d2) / 2 - d1).abs() / d1, difference",
     "        return ((d0 + d2) / 2 - d1).abs() / d0, difference",
     "tests/test_reference_parity.py"),
    ("adaptive_core/error_control.py", "        if self.tolerance <= 0:", "        if self.tolerance < 0:",
     "tests/test_bit_identity.py::test_disabled_is_bit_identical_on_every_family"),
    ("nodes/sidecar.py", "    if abs(found[\"checksum\"] - expected) > CHECKSUM_TOLERANCE * abs(expected):",
     "    if abs(found[\"checksum\"] - expected) > 1e9 * abs(expected):",
     "tests/test_early_exit.py::test_mismatched_sidecars_are_refused"),
    ("nodes/early_exit.py", "        if run is not None and run.exited:",
     "        if run is not None and (run.exited or self.index == run.heads.blocks - 1):",
     "tests/test_early_exit.py::test_no_reachable_threshold_is_bit_identical_to_no_exit"),
    ("nodes/early_exit.py", "            return passthrough(self.stage, args)", '            return extra["original_block"](args)',
     "tests/test_early_exit.py::test_exit_fires_and_later_blocks_are_not_executed"),
    ("adaptive_core/early_exit.py",
     "            self.exited = float(certainty) >= self.needed[self.step][block]  # one read; NaN never exits",
     "            self.exited = not float(certainty) < self.needed[self.step][block]",
     "tests/test_exit_core.py::test_non_finite_certainty_never_exits"),
    ("nodes/run_scope.py", "                holder.last_report = run.finish(status)",
     "                holder.last_report = holder.last_report or run.finish(status)",
     "tests/test_sampler_nodes.py::test_patched_model_reused_gives_identical_runs_and_separate_reports"),
    ("adaptive_core/error_control.py", "FIRST_JUDGED_STEP = 2", "FIRST_JUDGED_STEP = 3",
     "tests/test_error_control.py::test_without_warmup_the_first_skip_is_step_two"),
]


def run(index, file, before, after, test, python):
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / REPO.name
        shutil.copytree(REPO, copy, symlinks=True, ignore=shutil.ignore_patterns(".git", ".runtime", "out", "*.pyc"))
        (copy / ".runtime").symlink_to(REPO / ".runtime")
        path = copy / file
        text = path.read_text()
        if text.count(before + "\n") != 1:
            return f"{index:2d} STALE   {file}: the line to mutate is not there exactly once: {before.strip()}"
        path.write_text(text.replace(before + "\n", after + "\n"))
        result = subprocess.run([python, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                                 test], cwd=copy, capture_output=True, text=True, timeout=1200)
        verdict = "caught " if result.returncode == 1 else ("SURVIVED" if result.returncode == 0
                                                             else f"ERROR {result.returncode}")
        return f"{index:2d} {verdict} {file}: {before.strip()} -> {after.strip()}  [{test}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", type=int, nargs="+", help="mutation numbers")
    args = parser.parse_args()
    python = str(REPO / ".runtime" / "0.33.0" / "venv" / "bin" / "python")
    rows = []
    for i, mutation in enumerate(MUTATIONS):
        if not args.only or i in args.only:
            rows.append(run(i, *mutation, python))
            print(rows[-1], flush=True)
    sys.exit(0 if all(" caught " in r for r in rows) else 1)


if __name__ == "__main__":
    main()
