"""Every example workflow validates against the real server's /object_info, and ComfyUI accepts it."""
import json
import shutil
import sys

import pytest

import comfy_runtime

sys.path.insert(0, str(comfy_runtime.REPO / "scripts"))
import example_graphs  # noqa: E402
import make_example_workflows  # noqa: E402
from comfy_server import ComfyServer  # noqa: E402
from workflow_graph import is_widget, ui_to_api  # noqa: E402

pytestmark = pytest.mark.slow
EXAMPLES = comfy_runtime.REPO / "example_workflows"
UI_FILES = sorted(p for p in EXAMPLES.glob("*.json") if not p.name.endswith("_api.json"))
# Here every model file an example names is the tiny Wan diffusion model: the demo workflows run to the
# end; the others get as far as the first node that needs what that file cannot hold, and stop there.
NO_TEXT_ENCODER = ("CLIPTextEncode", "clip input is invalid")  # a checkpoint without CLIP
NO_VAE = ("VAELoader", "VAE is invalid")  # a VAE file that is not a VAE
# the trainer samples the model: the stand-in text encoder's 768-wide prompts do not fit the tiny Wan's 4096
WRONG_TEXT_WIDTH = ("AdaptiveDiffusionTrainHeads", "shapes cannot be multiplied")
EXPECTED_OUTCOME = {"demo_model_adaptive_ksampler": None, "demo_model_early_exit_and_step_skipping": None,
                    "flux_patch_sampler_custom_advanced": NO_VAE, "wan21_text_to_video": NO_VAE,
                    "wan21_train_early_exit_heads": WRONG_TEXT_WIDTH,
                    "sd15_hires_fix": NO_TEXT_ENCODER, "sd15_img2img": NO_TEXT_ENCODER,
                    "sd15_txt2img": NO_TEXT_ENCODER, "sdxl_txt2img": NO_TEXT_ENCODER}


@pytest.fixture(scope="module")
def server(comfy, tmp_path_factory, model_dir, wan):
    # every model file the examples name, as a link to a tiny model: enough for validation
    models = [(folder, name) for folder, names in example_graphs.MODEL_FILES.items() for name in names]
    links = tmp_path_factory.mktemp("named_models")
    for _, name in models:
        (links / name).symlink_to(model_dir / "tiny_wan21.safetensors")
    base = tmp_path_factory.mktemp("comfy")
    (base / "input").mkdir()
    shutil.copy(comfy_runtime.COMFYUI / "input" / "example.png", base / "input")  # what the img2img example loads
    with ComfyServer(comfy_runtime.COMFYUI, base, models=[(folder, links / name) for folder, name in models]) as s:
        yield s


@pytest.fixture(scope="module")
def object_info(server):
    return server.get("/object_info")


def test_every_example_is_listed():
    assert {p.stem for p in UI_FILES} == set(make_example_workflows.WORKFLOWS) == set(EXPECTED_OUTCOME)


def test_examples_are_current(object_info):
    """The committed files are what the generator writes for this ComfyUI and extension."""
    for name, (ui, api) in make_example_workflows.build(object_info).items():
        assert json.loads((EXAMPLES / f"{name}.json").read_text()) == ui, name
        if api:
            assert json.loads((EXAMPLES / f"{name}_api.json").read_text()) == api, name


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_example_validates(server, object_info, path):
    workflow = json.loads(path.read_text())
    nodes = {n["id"]: n for n in workflow["nodes"]}
    for node in workflow["nodes"]:
        assert node["type"] in object_info, node["type"]
        info = object_info[node["type"]]
        specs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        for name, value in ui_to_api({"nodes": [node], "links": workflow["links"]}, object_info)[str(node["id"])]["inputs"].items():
            if not is_widget(specs[name]):
                continue
            kind, options = specs[name][0], (specs[name][1] if len(specs[name]) > 1 else {})
            if isinstance(kind, list):
                assert value in kind, (path.name, node["type"], name, value)
            elif kind in ("INT", "FLOAT"):
                assert options.get("min", value) <= value <= options.get("max", value), (node["type"], name)
    for link_id, source, slot, target, target_slot, kind in workflow["links"]:
        assert object_info[nodes[source]["type"]]["output"][slot] == kind
        name = nodes[target]["inputs"][target_slot]["name"]
        target_info = object_info[nodes[target]["type"]]["input"]
        expected = {**target_info.get("required", {}), **target_info.get("optional", {})}[name][0]
        assert not is_widget([expected]) and expected in (kind, "*"), (path.name, name, kind, expected)
    status, body = server.post_prompt(ui_to_api(workflow, object_info))
    assert status == 200, body  # ComfyUI's own validation passed
    entry = server.wait_for(body["prompt_id"], raise_on_error=False)
    error = next((m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"), None)
    expected = EXPECTED_OUTCOME[path.stem]
    if expected is None:
        assert entry["status"]["status_str"] == "success" and error is None, error
    else:
        assert error is not None and error["node_type"] == expected[0], error and error["exception_message"]
        assert expected[1] in error["exception_message"], error["exception_message"]
