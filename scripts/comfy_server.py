"""Starts a real ComfyUI server with this extension in custom_nodes, and talks to its HTTP API.

Standard library only, so the demo and the tests share it. Everything the server writes (models,
custom_nodes links, input, output, temp, user) lives under one base directory of its own.
"""
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

REPO = pathlib.Path(__file__).resolve().parents[1]
EXTENSION_NAME = "adaptive_diffusion"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, comfyui: pathlib.Path, base: pathlib.Path, python=sys.executable, custom_nodes=(),
                 models=()):
        """custom_nodes: extra node folders to link in; models: (subfolder, file) pairs to link in."""
        self.comfyui, self.base, self.python = pathlib.Path(comfyui), pathlib.Path(base), python
        self.custom_nodes = [REPO] + [pathlib.Path(p) for p in custom_nodes]
        self.models = [(sub, pathlib.Path(f)) for sub, f in models]
        self.port = None
        self.client_id = uuid.uuid4().hex
        self.process = None
        self.log_path = self.base / "server.log"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=300):
        nodes_dir = self.base / "custom_nodes"
        nodes_dir.mkdir(parents=True, exist_ok=True)
        for folder in self.custom_nodes:
            link = nodes_dir / (EXTENSION_NAME if folder == REPO else folder.name)
            if not link.exists():
                link.symlink_to(folder, target_is_directory=True)
        for sub, file in self.models:
            target = self.base / "models" / sub / file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(file)
        for _ in range(5):
            if self._launch(timeout):
                return
        raise RuntimeError(f"ComfyUI found no free port in five tries:\n{self.log()}")

    def _launch(self, timeout):
        """Starts the server on a free port; False if another process took that port first (the port
        is free when chosen, and taken by the server only seconds later)."""
        self.port = free_port()
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
             "--base-directory", str(self.base), "--disable-auto-launch", "--disable-api-nodes",
             "--database-url", "sqlite:///:memory:"],
            cwd=self.comfyui, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                if "address already in use" in self.log().lower():
                    return False
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log()}")
            try:
                # the server answering must be this one, not one that got the port first
                return str(self.base) in self.get("/system_stats")["system"]["argv"] or self._stopped()
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        raise TimeoutError(f"ComfyUI did not answer within {timeout}s:\n{self.log()}")

    def _stopped(self):
        self.stop()
        return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def post_prompt(self, prompt):
        """Returns (HTTP status, body): 200 with prompt_id, or 400 with error and node_errors."""
        data = json.dumps({"prompt": prompt, "client_id": self.client_id}).encode()
        request = urllib.request.Request(self.url + "/prompt", data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def wait_for(self, prompt_id, timeout=300, raise_on_error=True):
        """The prompt's /history entry once it finished; raises if it failed, unless told not to."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history:
                entry = history[prompt_id]
                if raise_on_error and entry.get("status", {}).get("status_str") == "error":
                    raise RuntimeError(f"prompt {prompt_id} failed: {json.dumps(entry['status'])}")
                return entry
            time.sleep(0.2)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s:\n{self.log()[-3000:]}")

    def output_file(self, image):
        """Path of an image a node saved, from its /history entry."""
        return self.base / image.get("type", "output") / image.get("subfolder", "") / image["filename"]
