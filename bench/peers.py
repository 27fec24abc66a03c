"""The peers' own published ComfyUI code, run beside ours: ComfyUI-AccelDiff's SADA and ZEUS samplers
(github.com/jiajianxie/ComfyUI-AccelDiff, sampler/sada.py and sampler/zeus.py), loaded from a
checkout outside this repository that the benchmark is pointed at (never committed here):

    git clone https://github.com/jiajianxie/ComfyUI-AccelDiff /somewhere/ComfyUI-AccelDiff
    .runtime/0.33.0/venv/bin/python bench/quality.py --acceldiff /somewhere/ComfyUI-AccelDiff

Each is a re-implemented k-diffusion sampler (a ComfyUI SAMPLER, as its node returns) for euler,
dpmpp_2m and a few more; uni_pc is not among them, so there the step-level baselines of
baselines.py stand in. The settings swept are the knobs of its node, scaled with the step count
(its defaults are for 50 steps).
"""
import importlib.util
import pathlib

MODULES = {}


def load(checkout):
    """AccelDiff's sampler modules, imported from ``checkout`` under names of their own."""
    for name in ("sada", "zeus"):
        path = pathlib.Path(checkout) / "sampler" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"acceldiff_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        MODULES[name] = module
    return MODULES


def supports(sampler):
    return bool(MODULES) and all(hasattr(m, f"sample_{sampler}") for m in MODULES.values())


def sada(sampler, steps, max_interval, acc_start, lagrange_int):
    """SADA as its node builds it (lagrange_term 3, lagrange_step and acc_end scaled from 20/47 of 50)."""
    module = MODULES["sada"]
    return module.KSAMPLER(getattr(module, f"sample_{sampler}"), max_interval=max_interval,
                           acc_start=max(acc_start, 3), acc_end=round(steps * 47 / 50), lagrange_term=3,
                           lagrange_int=lagrange_int, lagrange_step=round(steps * 20 / 50))


def zeus(sampler, steps, denominator, modular, acc_start):
    """ZEUS as its node builds it (psi interpolation, reuse_interp caching, max_interval 4,
    lagrange_term 3; lagrange_step and acc_end scaled from 24/45 of 50)."""
    module = MODULES["zeus"]
    return module.KSAMPLER(getattr(module, f"sample_{sampler}"), denominator=denominator, modular=tuple(modular),
                           acc_start=acc_start, acc_end=round(steps * 45 / 50), interp_mode="psi",
                           caching_mode="reuse_interp", max_interval=4, lagrange_term=3, lagrange_int=6,
                           lagrange_step=round(steps * 24 / 50))


def sweep(sampler, steps):
    """(method, params, SAMPLER) for each setting benchmarked, from fast to careful."""
    scale = steps / 50
    out = []
    for max_interval, acc_start, lagrange_int in ((4, 3, 4), (4, 10, 4), (2, 10, 4), (2, 10, 3), (1, 10, 2)):
        start = max(3, round(acc_start * scale))
        out.append(("SADA (AccelDiff code)", f"max_interval={max_interval} acc_start={start} lagrange_int={lagrange_int}",
                    sada(sampler, steps, max_interval, start, lagrange_int)))
    for denominator, modular, acc_start in ((2, (0,), 3), (3, (0, 1), 3), (3, (0, 1), 10), (3, (0,), 10), (4, (0,), 10)):
        start = max(3, round(acc_start * scale))
        out.append(("ZEUS (AccelDiff code)", f"denominator={denominator} modular={','.join(map(str, modular))} "
                    f"acc_start={start}", zeus(sampler, steps, denominator, modular, start)))
    return out
