import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import runtime  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: whole-matrix suites (every sampler x scheduler, the real server)")
    config.addinivalue_line("markers", "comfy: needs the real ComfyUI runtime")


@pytest.fixture(scope="session")
def comfy():
    """ComfyUI's nodes module, with this extension imported as the package ComfyUI would load."""
    nodes = runtime.import_comfy()
    runtime.load_extension()
    return nodes


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, comfy):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def wan(comfy, model_dir):
    import tiny_models
    return tiny_models.wan(model_dir)


@pytest.fixture(scope="session")
def families(comfy, model_dir, wan):
    import tiny_models
    return [wan, tiny_models.sd3(model_dir), tiny_models.sd15(), tiny_models.sd15(v_prediction=True),
            tiny_models.sdxl()]
