"""Wall time on a noisy machine, as ratios: each arm against a reference run in the same repeat,
in an order rotated per repeat (so that no arm always runs first, or after the same one), and a
distribution-free 95 % interval for the median ratio. This machine's speed drifts by ±10 % between
runs; a ratio within one repeat cancels most of it."""
import math
import statistics
import time


def paired_ratios(reference, arms, repeats):
    """reference: a callable; arms: name -> callable. (the reference's seconds per repeat, per arm
    its wall time over the reference's in the same repeat). One uncounted round first warms up."""
    order = [(None, reference), *arms.items()]
    seconds = {name: [] for name, _ in order}
    for repeat in range(repeats + 1):
        shift = repeat % len(order)
        for name, run in order[shift:] + order[:shift]:
            start = time.perf_counter()
            run()
            if repeat:
                seconds[name].append(time.perf_counter() - start)
    return seconds[None], {name: [t / r for t, r in zip(seconds[name], seconds[None])] for name in arms}


def wall_ratios(reference, arms, repeats):
    """paired_ratios as medians: (the reference's seconds, per arm its ratio)."""
    seconds, ratios = paired_ratios(reference, arms, repeats)
    return statistics.median(seconds), {name: statistics.median(values) for name, values in ratios.items()}


def median_interval(values):
    """(median, low, high): the order statistics of ranks n/2 ∓ 1.96·√n/2 (1-based, the upper one
    plus one) bound the median with about 95 % confidence, whatever the distribution."""
    ordered, n = sorted(values), len(values)
    low, high = math.floor(n / 2 - 0.98 * math.sqrt(n)), math.ceil(1 + n / 2 + 0.98 * math.sqrt(n))
    return statistics.median(ordered), ordered[max(low, 1) - 1], ordered[min(high, n) - 1]
