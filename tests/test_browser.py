"""The real frontend in a real headless Chromium against the real server: the node search finds
our node, an example workflow loads and runs, the live strip fills and the final skip map shows."""
import json
import os
import pathlib
import shutil
import sys

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError, sync_playwright

import runtime

sys.path.insert(0, str(runtime.REPO / "scripts"))
from comfy_server import ComfyServer  # noqa: E402

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = runtime.REPO / "out" / "test-artifacts"
WORKFLOW = runtime.REPO / "example_workflows" / "demo_model_adaptive_ksampler.json"
# as the machine notes say: without these Chromium keeps trying to reach the closed network
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

# Records each live event and, per event, how many cells of the sampler's strip are no longer pending.
WATCH = """() => {
  window.__adaptive = {events: [], live: []};
  window.comfyAPI.api.api.addEventListener("adaptive_diffusion.step", ({detail}) => {
    window.__adaptive.events.push(detail);
    const node = window.app.graph.getNodeById(Number(detail.node));
    const cells = node.adaptiveDiffusionStrip.cells.children;
    window.__adaptive.live.push([...cells].filter((c) => c.dataset.state !== "pending").length);
  });
}"""


@pytest.fixture(scope="module")
def server(comfy, tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy")
    settings = base / "user" / "default" / "comfy.settings.json"
    settings.parent.mkdir(parents=True)
    # a first visit would open the template browser and tours over the canvas
    settings.write_text(json.dumps({"Comfy.TutorialCompleted": True, "Comfy.InstalledVersion": "9.9.9"}))
    with ComfyServer(runtime.COMFYUI, base) as s:
        yield s


@pytest.fixture()
def page(server):
    if not pathlib.Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium package (scripts/test.sh does)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(server.url)
        page.wait_for_function("window.app && window.app.graph && window.app.extensions"
                               " && window.app.extensions.some((e) => e.name === 'AdaptiveDiffusion.SkipMap')",
                               timeout=120_000)
        yield page
        browser.close()


def open_node_search(page):
    """Double-click on the empty canvas, as a user does; right after a cold start the frontend can
    still be laying out (or showing a notice) and miss the first double-click, so try again."""
    canvas = page.locator("#graph-canvas")
    search = page.get_by_role("combobox").or_(page.locator("input[placeholder*='Search']")).first
    for _ in range(3):
        page.keyboard.press("Escape")
        canvas.dblclick(position={"x": 500, "y": 400})
        try:
            search.wait_for(timeout=10_000)
            return search
        except PlaywrightTimeoutError:
            continue
    page.screenshot(path=str(ARTIFACTS / "node_search_did_not_open.png"))
    raise AssertionError("the node search did not open after three double-clicks on the canvas")


def test_node_search_adds_the_adaptive_sampler(page):
    page.evaluate("() => window.app.graph.clear()")
    search = open_node_search(page)
    search.fill("KSampler (AdaptiveDiffusion)")
    page.get_by_text("KSampler (AdaptiveDiffusion)", exact=True).first.wait_for()
    page.keyboard.press("Enter")
    page.wait_for_function("window.app.graph.nodes.some((n) => n.type === 'AdaptiveDiffusionKSampler')")
    assert page.evaluate("window.app.graph.nodes.find((n) => n.type === 'AdaptiveDiffusionKSampler')"
                         ".widgets.map((w) => w.name)")[-5:] == ["threshold", "max_skip_steps", "warmup_steps",
                                                                 "reuse", "adaptive_diffusion_strip"]
    page.screenshot(path=str(ARTIFACTS / "browser_node_search.png"))


def test_example_workflow_runs_with_live_strip_and_final_skip_map(page):
    workflow = json.loads(WORKFLOW.read_text())
    steps = next(n for n in workflow["nodes"] if n["type"] == "AdaptiveDiffusionKSampler")["widgets_values"][2]
    page.evaluate("async (wf) => { await window.app.loadGraphData(wf); }", workflow)
    page.evaluate(WATCH)
    page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
    summary = page.locator(".adaptive-diffusion-summary").first
    summary.filter(has_text="steps computed").wait_for(timeout=120_000)
    events = page.evaluate("window.__adaptive.events")
    live = page.evaluate("window.__adaptive.live")
    assert [e["step"] for e in events] == list(range(steps))
    assert live == list(range(1, steps + 1))  # the strip filled one cell per event, while running
    states = page.evaluate("[...document.querySelectorAll('.adaptive-diffusion-cell')].map((c) => c.dataset.state)")
    assert len(states) == steps and "pending" not in states
    reused = sum(1 for e in events if not e["computed"])
    assert states.count("reused") == reused > 0
    assert f"/{steps} steps computed" in summary.text_content()
    assert "reuse linear" in summary.text_content()
    assert page.locator(".adaptive-diffusion-cell").nth(steps - 1).get_attribute("title").startswith(f"step {steps - 1}:")
    page.wait_for_function("""async () => {
        const queue = await window.comfyAPI.api.api.getQueue();
        return queue.Running.length === 0 && queue.Pending.length === 0;
    }""", polling=250, timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "browser_skip_map.png"))
