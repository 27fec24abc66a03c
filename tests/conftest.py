import pathlib
import sys

import pytest

# tests/ holds the test helpers; scripts/ what the tests share with the scripts and the benchmark
HERE = pathlib.Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent / "scripts")]
import comfy_runtime  # noqa: E402


@pytest.fixture(scope="session")
def comfy():
    """ComfyUI's nodes module, with this extension imported as the package ComfyUI would load."""
    nodes = comfy_runtime.import_comfy()
    comfy_runtime.load_extension()
    return nodes


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, comfy):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def wan(comfy, model_dir):
    import tiny_models
    return tiny_models.wan(model_dir)


@pytest.fixture(scope="session")
def demo(comfy):
    """The bundled trained Wan demo model (flow)."""
    import tiny_models
    return tiny_models.demo()


@pytest.fixture(scope="session")
def demo_unet(comfy):
    """The bundled trained SD1.x demo UNet (EPS)."""
    import tiny_models
    return tiny_models.demo("demo_sd15_eps")


@pytest.fixture(scope="session")
def families(comfy, model_dir, wan):
    import tiny_models
    return [wan, tiny_models.sd3(model_dir), tiny_models.sd15(), tiny_models.sd15(v_prediction=True),
            tiny_models.sdxl()]
