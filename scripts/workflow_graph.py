"""Builds ComfyUI workflows from a node list, in both the frontend's UI format and the API format,
with widget values placed by the server's own /object_info (so positions always match)."""

SOCKET_FREE = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def is_widget(spec):
    kind = spec[0]
    return isinstance(kind, list) or kind in SOCKET_FREE


class Graph:
    def __init__(self, object_info):
        self.info = object_info
        self.nodes, self.links = [], []

    def add(self, node_type, pos, **values):
        info = self.info[node_type]
        specs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        order = info["input_order"].get("required", []) + info["input_order"].get("optional", [])
        node = {
            "id": len(self.nodes) + 1, "type": node_type, "pos": list(pos), "size": [320, 260], "flags": {},
            "order": len(self.nodes), "mode": 0,
            "inputs": [{"name": n, "type": specs[n][0], "link": None} for n in order if not is_widget(specs[n])],
            "outputs": [{"name": name, "type": kind, "links": [], "slot_index": i}
                        for i, (name, kind) in enumerate(zip(info["output_name"], info["output"]))],
            "properties": {"Node name for S&R": node_type},
            "widgets_values": [],
        }
        api_inputs = {}
        for name in order:
            if not is_widget(specs[name]):
                continue
            options = specs[name][1] if len(specs[name]) > 1 else {}
            if name in values:
                value = values.pop(name)
            elif "default" in options:
                value = options["default"]
            elif isinstance(specs[name][0], list) and specs[name][0]:
                value = specs[name][0][0]
            else:
                raise ValueError(f"{node_type}.{name} needs a value")
            node["widgets_values"].append(value)
            api_inputs[name] = value
            if options.get("control_after_generate"):
                node["widgets_values"].append("fixed")
        if values:
            raise ValueError(f"{node_type} has no widgets {sorted(values)}")
        node["api_inputs"] = api_inputs
        self.nodes.append(node)
        return node

    def connect(self, source, output, target, input_name):
        slot = next(i for i, o in enumerate(source["outputs"]) if o["name"] == output) if isinstance(output, str) else output
        target_slot = next(i for i, x in enumerate(target["inputs"]) if x["name"] == input_name)
        link_id = len(self.links) + 1
        kind = source["outputs"][slot]["type"]
        self.links.append([link_id, source["id"], slot, target["id"], target_slot, kind])
        source["outputs"][slot]["links"].append(link_id)
        target["inputs"][target_slot]["link"] = link_id
        target["api_inputs"][input_name] = [str(source["id"]), slot]

    def ui(self):
        nodes = [{k: v for k, v in n.items() if k != "api_inputs"} for n in self.nodes]
        for node in nodes:
            if self.info[node["type"]].get("output_node") and not any(o["links"] for o in node["outputs"]):
                # ComfyUI 0.33 gave SaveImage a pass-through output that 0.3.75 lacks: a sink listing
                # no outputs is one file that loads and runs on both.
                node["outputs"] = []
        return {"last_node_id": len(nodes), "last_link_id": len(self.links), "nodes": nodes, "links": self.links,
                "groups": [], "config": {}, "extra": {}, "version": 0.4}

    def api(self):
        return {str(n["id"]): {"class_type": n["type"], "inputs": dict(n["api_inputs"])} for n in self.nodes}


def ui_to_api(workflow, object_info):
    """The API prompt the frontend would queue for a UI-format workflow (no groups or reroutes)."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        info = object_info[node["type"]]
        specs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        order = info["input_order"].get("required", []) + info["input_order"].get("optional", [])
        values = iter(node.get("widgets_values", []))
        inputs = {}
        for name in order:
            if is_widget(specs[name]):
                inputs[name] = next(values)
                if len(specs[name]) > 1 and specs[name][1].get("control_after_generate"):
                    next(values)
        for socket in node.get("inputs", []):
            if socket.get("link") is not None:
                link = links[socket["link"]]
                inputs[socket["name"]] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
