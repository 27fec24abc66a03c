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


# Every sampler ComfyUI lists (cfgpp_ud10_ab since 0.35), by kind; PLAIN: of no other kind. exp_heun_2_x0 is
# seeds_2 with r = 1 since ComfyUI 0.33, so its second call lands on σ_{k+1}; ddim is ComfyUI's
# euler with a seeded inpainting noise and arrives here as euler.
PLAIN = ("euler", "lms", "dpmpp_2m", "ipndm", "ipndm_v", "deis", "res_multistep", "gradient_estimation", "ddim",
         "uni_pc", "uni_pc_bh2")
LOOKAHEAD = ("heun", "heunpp2", "exp_heun_2_x0", "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral",
             "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "seeds_2", "seeds_3",
             "sa_solver_pece")
NEVER_SKIP = {**dict.fromkeys(("euler_cfg_pp", "euler_ancestral_cfg_pp", "dpmpp_2s_ancestral_cfg_pp",
                               "dpmpp_2m_cfg_pp", "cfgpp_ud10_ab", "res_multistep_cfg_pp",
                               "res_multistep_ancestral_cfg_pp", "gradient_estimation_cfg_pp"), CFG_PP),
              "dpm_fast": OWN_STEPS, "dpm_adaptive": OWN_STEPS}
NOTES = {**dict.fromkeys(("euler_ancestral", "exp_heun_2_x0_sde", "dpm_2_ancestral", "dpmpp_2s_ancestral",
                          "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun",
                          "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
                          "res_multistep_ancestral", "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece"),
                         STOCHASTIC),
         "lcm": STOCHASTIC + "; LCM runs few steps, mostly warm-up"}
POLICIES = {name: SamplerPolicy(name, lookahead=name in LOOKAHEAD, never_skip=NEVER_SKIP.get(name, ""),
                                note=NOTES.get(name, ""))
            for name in dict.fromkeys(PLAIN + LOOKAHEAD + tuple(NEVER_SKIP) + tuple(NOTES))}

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
