"""How AdaptiveDiffusion treats each sampler in comfy.samplers.KSampler.SAMPLERS.

- lookahead: the sampler's extra calls land exactly on later schedule sigmas (heun's corrector at
  σ_{k+1}; heunpp2's at σ_{k+1} and σ_{k+2}; the second stage of some ancestral samplers on flow
  models coincides with σ_{k+1}), so steps are delimited by returns to a schedule sigma.
- never_skip: why skipping would give wrong results for this sampler.
- note: what to expect where skipping is allowed but works against the sampler.
"""
import dataclasses

CFG_PP = ("reads the unconditional prediction through a post-CFG hook, which a reused step "
          "never runs, so a skip would feed it a stale prediction")
OWN_STEPS = "chooses its own sigmas off the schedule, so there are no schedule steps to skip"
STOCHASTIC = "injects fresh noise every step: the latent trajectory is rough, so fewer steps skip"


@dataclasses.dataclass(frozen=True)
class SamplerPolicy:
    name: str
    lookahead: bool = False
    never_skip: str = ""
    note: str = ""


_POLICIES = [
    SamplerPolicy("euler"),
    SamplerPolicy("euler_cfg_pp", never_skip=CFG_PP),
    SamplerPolicy("euler_ancestral", note=STOCHASTIC),
    SamplerPolicy("euler_ancestral_cfg_pp", never_skip=CFG_PP),
    SamplerPolicy("heun", lookahead=True),
    SamplerPolicy("heunpp2", lookahead=True),
    # ComfyUI >= 0.33: seeds_2 with r = 1, so the second call lands on σ_{k+1}
    SamplerPolicy("exp_heun_2_x0", lookahead=True),
    SamplerPolicy("exp_heun_2_x0_sde", lookahead=True, note=STOCHASTIC),
    SamplerPolicy("dpm_2", lookahead=True),
    SamplerPolicy("dpm_2_ancestral", lookahead=True, note=STOCHASTIC),
    SamplerPolicy("lms"),
    SamplerPolicy("dpm_fast", never_skip=OWN_STEPS),
    SamplerPolicy("dpm_adaptive", never_skip=OWN_STEPS),
    SamplerPolicy("dpmpp_2s_ancestral", lookahead=True, note=STOCHASTIC),
    SamplerPolicy("dpmpp_2s_ancestral_cfg_pp", lookahead=True, never_skip=CFG_PP),
    SamplerPolicy("dpmpp_sde", lookahead=True, note=STOCHASTIC),
    SamplerPolicy("dpmpp_sde_gpu", lookahead=True, note=STOCHASTIC),
    SamplerPolicy("dpmpp_2m"),
    SamplerPolicy("dpmpp_2m_cfg_pp", never_skip=CFG_PP),
    SamplerPolicy("dpmpp_2m_sde", note=STOCHASTIC),
    SamplerPolicy("dpmpp_2m_sde_gpu", note=STOCHASTIC),
    SamplerPolicy("dpmpp_2m_sde_heun", note=STOCHASTIC),
    SamplerPolicy("dpmpp_2m_sde_heun_gpu", note=STOCHASTIC),
    SamplerPolicy("dpmpp_3m_sde", note=STOCHASTIC),
    SamplerPolicy("dpmpp_3m_sde_gpu", note=STOCHASTIC),
    SamplerPolicy("ddpm", note=STOCHASTIC),
    SamplerPolicy("lcm", note=STOCHASTIC + "; LCM runs few steps, mostly warm-up"),
    SamplerPolicy("ipndm"),
    SamplerPolicy("ipndm_v"),
    SamplerPolicy("deis"),
    SamplerPolicy("cfgpp_ud10_ab", never_skip=CFG_PP),  # ComfyUI >= 0.35
    SamplerPolicy("res_multistep"),
    SamplerPolicy("res_multistep_cfg_pp", never_skip=CFG_PP),
    SamplerPolicy("res_multistep_ancestral", note=STOCHASTIC),
    SamplerPolicy("res_multistep_ancestral_cfg_pp", never_skip=CFG_PP),
    SamplerPolicy("gradient_estimation"),
    SamplerPolicy("gradient_estimation_cfg_pp", never_skip=CFG_PP),
    SamplerPolicy("er_sde", note=STOCHASTIC),
    SamplerPolicy("seeds_2", lookahead=True, note=STOCHASTIC),
    SamplerPolicy("seeds_3", lookahead=True, note=STOCHASTIC),
    SamplerPolicy("sa_solver", note=STOCHASTIC),
    SamplerPolicy("sa_solver_pece", lookahead=True, note=STOCHASTIC),
    # ddim is ComfyUI's euler with a seeded inpainting noise; it arrives here as euler.
    SamplerPolicy("ddim"),
    SamplerPolicy("uni_pc"),
    SamplerPolicy("uni_pc_bh2"),
]
POLICIES = {p.name: p for p in _POLICIES}

# Sampler functions whose names are not "sample_<name>".
_FUNCTION_NAMES = {"dpm_fast_function": "dpm_fast", "dpm_adaptive_function": "dpm_adaptive",
                   "sample_unipc": "uni_pc", "sample_unipc_bh2": "uni_pc_bh2"}


def policy_for(sampler) -> SamplerPolicy:
    """The policy for a ComfyUI sampler object (a KSAMPLER from any sampler node)."""
    function = getattr(sampler, "sampler_function", None)
    function_name = getattr(function, "__name__", type(sampler).__name__)
    name = _FUNCTION_NAMES.get(function_name, function_name.removeprefix("sample_"))
    return POLICIES.get(name) or SamplerPolicy(
        name, note=f"sampler '{name}' is not in the policy table: its steps are told apart by the schedule's sigmas")
