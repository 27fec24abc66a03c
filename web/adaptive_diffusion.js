// AdaptiveDiffusion: a live skip-map strip on the AdaptiveDiffusion nodes.
// While a run goes on, the server sends "adaptive_diffusion.step" for each step's decision; after
// execution the node's report (the same JSON as its `report` output) redraws the strip and the
// summary. Server text is only ever inserted as text.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const EVENT = "adaptive_diffusion.step";
const NODE_TYPES = new Set([
  "AdaptiveDiffusionKSampler",
  "AdaptiveDiffusionKSamplerAdvanced",
  "AdaptiveDiffusionSkipReport",
]);
// Okabe-Ito, as in the skip map picture; reused cells are hatched as a second cue
const COLOURS = { computed: "#0072B2", reused: "#E69F00", warmup: "#787878", pending: "#d9d9d9" };

// "(linear 8, linear x0 3)": which predictors served the reused steps, most used first
function served(counts) {
  const entries = Object.entries(counts ?? {}).sort((a, b) => b[1] - a[1]);
  return entries.length ? ` (${entries.map(([name, n]) => `${name} ${n}`).join(", ")})` : "";
}

function describe(step, threshold) {
  const judged = step.estimator == null ? "n/a" : Number(step.estimator).toPrecision(3);
  const how = step.computed ? "computed" : `reused${step.reuse ? " via " + step.reuse : ""}`;
  return `step ${step.step}: ${how} (${step.reason}), ` +
    `sigma ${Number(step.sigma).toPrecision(4)}, judged ${judged} vs threshold ${threshold}`;
}

class Strip {
  constructor(node) {
    this.root = document.createElement("div");
    this.root.className = "adaptive-diffusion-strip";
    this.root.style.cssText = "display:flex;flex-direction:column;gap:3px;padding:2px 4px;";
    this.cells = document.createElement("div");
    this.cells.className = "adaptive-diffusion-cells";
    this.cells.style.cssText = "display:flex;gap:1px;height:14px;";
    this.summary = document.createElement("div");
    this.summary.className = "adaptive-diffusion-summary";
    this.summary.style.cssText = "font:11px sans-serif;color:var(--input-text, #ddd);white-space:nowrap;overflow:hidden;text-overflow:ellipsis;";
    this.root.append(this.cells, this.summary);
    const widget = node.addDOMWidget("adaptive_diffusion_strip", "adaptive_diffusion_strip", this.root, {
      serialize: false,
      getMinHeight: () => 38,
    });
    // the option keeps it out of the prompt; this keeps it out of saved widgets_values too
    widget.serialize = false;
  }

  reset(total) {
    this.cells.replaceChildren();
    for (let i = 0; i < total; i++) {
      const cell = document.createElement("div");
      cell.className = "adaptive-diffusion-cell";
      cell.dataset.state = "pending";
      cell.style.cssText = `flex:1;min-width:1px;background:${COLOURS.pending};`;
      this.cells.append(cell);
    }
    this.summary.textContent = total ? `sampling 0/${total}` : "";
  }

  set(step, threshold) {
    const cell = this.cells.children[step.step];
    if (!cell) return;
    const state = step.cell; // computed, reused or warmup, as the skip map draws it
    cell.dataset.state = state;
    cell.style.background = state === "reused"
      ? `repeating-linear-gradient(0deg, ${COLOURS.reused} 0 2px, #fff 2px 3px)`
      : COLOURS[state];
    cell.title = describe(step, threshold);
  }

  live(detail) {
    if (detail.step === 0 || this.cells.children.length !== detail.total) this.reset(detail.total);
    this.set(detail, detail.threshold);
    const done = [...this.cells.children].filter((c) => c.dataset.state !== "pending").length;
    const reused = [...this.cells.children].filter((c) => c.dataset.state === "reused").length;
    this.summary.textContent = `sampling ${done}/${detail.total}, ${reused} reused so far`;
  }

  final(report) {
    this.reset(report.steps.length);
    for (const step of report.steps) this.set(step, report.threshold);
    const t = report.totals;
    const partial = report.status && report.status !== "complete"
      ? `${report.status.toUpperCase()} after ${t.steps} of ${t.schedule_steps} steps: ` : "";
    this.summary.textContent = partial + `${t.computed_steps}/${t.steps} steps computed, ` +
      `${t.network_calls}/${t.full_run_network_calls} calls (${Number(t.expected_speedup).toFixed(2)}x fewer), ` +
      `reuse ${report.reuse}` + served(t.reused_by) +
      (report.notes.length ? ` · ${report.notes.join(" · ")}` : "");
    this.summary.title = report.summary;
  }
}

// An execution id is a path "a:b:c": the node "c" inside the subgraph of node "b", inside the
// subgraph of node "a" of the root graph. Frontends before subgraphs only have app.graph.
function findNode(executionId) {
  let graph = app.rootGraph ?? app.graph;
  let node = null;
  for (const id of String(executionId).split(":")) {
    if (node) graph = node.subgraph;
    node = graph?.getNodeById(Number(id)) ?? graph?.getNodeById(id);
    if (!node) return null;
  }
  return node;
}

app.registerExtension({
  name: "AdaptiveDiffusion.SkipMap",

  async setup() {
    api.addEventListener(EVENT, ({ detail }) => {
      const node = findNode(detail.node);
      node?.adaptiveDiffusionStrip?.live(detail);
    });
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODE_TYPES.has(nodeData.name)) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      this.adaptiveDiffusionStrip = new Strip(this);
      return result;
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.adaptive_diffusion?.[0];
      if (text) this.adaptiveDiffusionStrip?.final(JSON.parse(text));
    };
  },
});
