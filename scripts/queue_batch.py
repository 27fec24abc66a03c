"""Queues a workflow on a running ComfyUI server many times, with overrides, and collects the results.

    .runtime/0.33.0/venv/bin/python scripts/queue_batch.py WORKFLOW_API.json --url http://127.0.0.1:8188 \\
        --seeds 1 2 3 --threshold 0.01 0.05 --sampler euler dpmpp_2m --out out/batch

Every combination of the overrides is queued at once (the queue runs them one by one); progress
comes over the websocket. Each finished prompt's images and latents are downloaded into the
output folder and a row goes to results.csv at once, so nothing finished is lost when a later
prompt fails. A prompt ComfyUI rejects is reported with its node_errors and the others go on.
Overrides apply to every AdaptiveDiffusion sampler or patch node (and seed/sampler to core
KSampler nodes). The workflow must be in API format (the frontend's "Export (API)").
Standard library plus aiohttp, which ComfyUI ships.
"""
import argparse
import asyncio
import itertools
import json
import pathlib
import sys
import urllib.parse
import uuid

import aiohttp

from batch_results import BatchResults, Progress, ResultsError, node_errors_text

SAMPLER_NODES = {"AdaptiveDiffusionKSampler", "AdaptiveDiffusionKSamplerAdvanced", "KSampler", "KSamplerAdvanced",
                 "KSamplerSelect"}
SEED_NODES = SAMPLER_NODES | {"RandomNoise"}
SKIP_NODES = {"AdaptiveDiffusionKSampler", "AdaptiveDiffusionKSamplerAdvanced", "AdaptiveDiffusionPatch"}
REPORT_NODES = {"AdaptiveDiffusionKSampler", "AdaptiveDiffusionKSamplerAdvanced", "AdaptiveDiffusionSkipReport"}
SEED_INPUTS = ("seed", "noise_seed")
SKIP_WIDGETS = ("threshold", "max_skip_steps", "reuse")
FIELDS = ["index", "prompt_id", "status", "seed", *SKIP_WIDGETS, "sampler", "network_calls",
          "full_run_network_calls", "expected_speedup", "computed_steps", "steps", "sampling_seconds",
          "from_cache", "files", "error"]


class BatchError(Exception):
    pass


def load_workflow(path):
    workflow = json.loads(pathlib.Path(path).read_text())
    if "nodes" in workflow and "links" in workflow:
        raise BatchError(f"{path} is in the frontend's UI format; export it with 'Export (API)' and queue that file")
    return workflow


def apply_overrides(workflow, overrides):
    prompt = json.loads(json.dumps(workflow))
    touched = False
    for node in prompt.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind in SEED_NODES and overrides.get("seed") is not None:
            for name in SEED_INPUTS:
                if name in inputs:
                    inputs[name] = overrides["seed"]
        if kind in SAMPLER_NODES and overrides.get("sampler") is not None:
            inputs["sampler_name"] = overrides["sampler"]
        if kind in SKIP_NODES:
            touched = True
            for name in SKIP_WIDGETS:
                if overrides.get(name) is not None:
                    inputs[name] = overrides[name]
    if not touched and any(overrides.get(name) is not None for name in SKIP_WIDGETS):
        raise BatchError("the workflow has no AdaptiveDiffusion node to apply --threshold/--max-skip-steps/--reuse to")
    return prompt


def combinations(args):
    axes = {"seed": args.seeds or [None], "threshold": args.threshold or [None],
            "max_skip_steps": args.max_skip_steps or [None], "reuse": args.reuse or [None],
            "sampler": args.sampler or [None]}
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*axes.values())] * args.repeat


async def run_batch(args):
    workflow = load_workflow(args.workflow)
    jobs = combinations(args)
    results = BatchResults(args.out, FIELDS, args.resume)
    client_id = uuid.uuid4().hex
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    rows = [{**results.done[i], "index": i} for i, o in enumerate(jobs) if results.check_same_batch(i, o)]
    try:
        async with aiohttp.ClientSession(args.url, timeout=timeout) as session:
            try:
                ws = await session.ws_connect(f"/ws?clientId={client_id}")
            except (aiohttp.ClientConnectionError, OSError) as error:
                raise BatchError(f"cannot reach ComfyUI at {args.url}: {error}") from None
            await queue_and_follow(args, session, ws, client_id, workflow, jobs, results, rows)
    except (aiohttp.ClientError, ConnectionError) as error:
        raise BatchError(f"lost the connection to ComfyUI at {args.url} ({type(error).__name__}: {error}); "
                         f"finished prompts are in {results.path}: go on with --resume") from None
    finally:
        results.close()
    print()
    return rows


async def queue_and_follow(args, session, ws, client_id, workflow, jobs, results, rows):
    progress = Progress(len(jobs))
    progress.done = len(rows)

    def record(row):
        results.record(row)
        rows.append(row)
        progress.done += 1
        progress.show()

    pending = {}
    for index, overrides in enumerate(jobs):
        if index in results.done:
            continue
        prompt = apply_overrides(workflow, overrides)
        async with session.post("/prompt", json={"prompt": prompt, "client_id": client_id}) as response:
            body = await response.json()
        row = {"index": index, **overrides}
        if response.status != 200:
            record({**row, "status": "rejected", "error": node_errors_text(body)})
        else:
            pending[body["prompt_id"]] = (row, prompt)
    progress.show()
    while pending:
        message = await ws.receive(timeout=args.timeout)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.ERROR):
            raise BatchError(f"the server closed the websocket; finished prompts are in {results.path}: "
                             "go on with --resume")
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        event = json.loads(message.data)
        data = event.get("data", {})
        prompt_id = data.get("prompt_id")
        if prompt_id not in pending:
            continue
        if event["type"] == "progress":
            progress.current = f"prompt {pending[prompt_id][0]['index']}: step {data['value']}/{data['max']}"
            progress.show()
        elif event["type"] in ("execution_success", "execution_error", "execution_interrupted"):
            row, prompt = pending.pop(prompt_id)
            row["prompt_id"] = prompt_id
            if event["type"] == "execution_success":
                row.update(await collect(session, prompt_id, prompt, results.folder(row["index"])))
                results.complete(row["index"])
                row["status"] = "done"
            else:
                row["status"] = "interrupted" if event["type"] == "execution_interrupted" else "failed"
                row["error"] = data.get("exception_message", event["type"])
            record(row)


async def history_entry(session, prompt_id, timeout=60):
    # The server announces success before it files the prompt in its history: wait for the entry.
    for _ in range(int(timeout / 0.1)):
        async with session.get(f"/history/{prompt_id}") as response:
            history = await response.json()
        if prompt_id in history:
            return history[prompt_id]
        await asyncio.sleep(0.1)
    raise BatchError(f"prompt {prompt_id} finished but never appeared in /history")


async def collect(session, prompt_id, prompt, folder):
    """Downloads the prompt's outputs; returns the report's totals for the CSV, and whether the
    sampling came from ComfyUI's cache (an identical earlier prompt: nothing was sampled again)."""
    entry = await history_entry(session, prompt_id)
    cached = {node for kind, data in entry.get("status", {}).get("messages", []) if kind == "execution_cached"
              for node in data.get("nodes", [])}
    reporting = {node for node, spec in prompt.items() if spec.get("class_type") in REPORT_NODES}
    files, row = [], {}
    for node_id, output in entry["outputs"].items():
        for key in ("images", "latents", "gifs"):
            for item in output.get(key, []):
                query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
                async with session.get(f"/view?{query}") as response:
                    target = folder / f"{node_id}_{item['filename']}"
                    target.write_bytes(await response.read())
                    files.append(target.name)
        for text in output.get("adaptive_diffusion", []):
            (folder / f"{node_id}_report.json").write_text(text)
            totals = json.loads(text)["totals"]
            row.update({k: totals[k] for k in ("network_calls", "full_run_network_calls", "expected_speedup",
                                               "computed_steps", "steps", "sampling_seconds")})
    row["files"] = " ".join(files)
    row["from_cache"] = "yes" if reporting and reporting <= cached else ""
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workflow", help="workflow JSON in API format")
    parser.add_argument("--url", default="http://127.0.0.1:8188")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--threshold", type=float, nargs="+")
    parser.add_argument("--max-skip-steps", type=int, nargs="+")
    parser.add_argument("--reuse", nargs="+", help="reuse strategies: hold linear lagrange")
    parser.add_argument("--sampler", nargs="+")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", default="out/batch")
    parser.add_argument("--resume", action="store_true",
                        help="go on with the batch in --out: keep its done rows, queue the rest again")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for any news from the server")
    args = parser.parse_args(argv)
    try:
        rows = asyncio.run(run_batch(args))
    except (BatchError, ResultsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except asyncio.TimeoutError:
        print(f"error: no news from the server for {args.timeout}s; finished prompts are in results.csv", file=sys.stderr)
        return 2
    failed = [r for r in rows if r["status"] != "done"]
    print(f"{len(rows) - len(failed)}/{len(rows)} prompts done; results in {args.out}/results.csv")
    cached = sum(r.get("from_cache") == "yes" for r in rows)
    if cached:
        print(f"{cached} prompt(s) repeated an earlier one and came from ComfyUI's cache: nothing was sampled "
              "again (column from_cache; the report is the cached run's where ComfyUI re-sends it, 0.33 and newer)")
    for row in failed:
        print(f"prompt {row['index']} {row['status']}: {row.get('error')}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
