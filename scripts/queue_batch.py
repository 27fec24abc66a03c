"""Queues a workflow on one or more running ComfyUI servers many times, with overrides, and
collects the results.

    .runtime/0.33.0/venv/bin/python scripts/queue_batch.py WORKFLOW_API.json --url http://127.0.0.1:8188 \\
        --seeds 1 2 3 --threshold 0.01 0.05 --sampler euler dpmpp_2m --out out/batch

Every combination of the overrides is one prompt. Each server gets --in-flight prompts at a time
and the next as soon as one finishes; a server that stops answering gets no more, and the prompt
it held goes to the others. Progress comes over the websockets. Each finished prompt's images and
latents are downloaded into the output folder and a row goes to results.csv at once, so nothing
finished is lost when a later prompt or a server fails (--resume goes on from there). A prompt
ComfyUI rejects is reported with its node_errors and the others go on. Overrides apply to every
AdaptiveDiffusion sampler or patch node (and seed/sampler to core KSampler nodes). The workflow must
be in API format (the frontend's "Export (API)"). Standard library plus aiohttp, which ComfyUI ships.
"""
import argparse
import asyncio
import json
import sys
import urllib.parse
import uuid

import aiohttp

from batch_prompts import FIELDS, REPORT_NODES, BatchError, apply_overrides, combinations, load_workflow
from batch_results import BatchResults, Progress, ResultsError, node_errors_text


class Batch:
    """What the workers share: the prompts still to run, the results, the progress line."""

    def __init__(self, args, jobs):
        self.args, self.workflow = args, load_workflow(args.workflow)
        self.results = BatchResults(args.out, FIELDS, args.resume)
        self.rows = [{**self.results.done[i], "index": i} for i, o in enumerate(jobs)
                     if self.results.check_same_batch(i, o)]
        self.todo = asyncio.Queue()
        for index, overrides in enumerate(jobs):
            if index not in self.results.done:
                self.todo.put_nowait((index, overrides))
        self.unfinished, self.lost = self.todo.qsize(), []
        self.progress = Progress(len(jobs))
        self.progress.done = len(self.rows)

    def record(self, row):
        self.results.record(row)
        self.rows.append(row)
        self.unfinished -= 1
        self.progress.done += 1
        self.progress.show()


class ServerLost(Exception):
    pass


async def run_batch(args):
    batch = Batch(args, combinations(args))
    try:
        await asyncio.gather(*(worker(batch, url) for url in args.url for _ in range(args.in_flight)))
    finally:
        batch.results.close()
    print()
    if batch.unfinished:
        raise BatchError(f"{'; '.join(batch.lost)}; finished prompts are in {batch.results.path}: "
                         "go on with --resume")
    return batch.rows


async def worker(batch, url):
    """Runs one prompt at a time on one server until none is left; if the server stops answering,
    the prompt in hand goes back to the queue for the other servers and this worker ends."""
    client_id, started = uuid.uuid4().hex, False
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    try:
        async with aiohttp.ClientSession(url, timeout=timeout) as session:
            ws = await session.ws_connect(f"/ws?clientId={client_id}")
            started = True
            while batch.unfinished:
                try:
                    index, overrides = await asyncio.wait_for(batch.todo.get(), 0.5)
                except asyncio.TimeoutError:
                    continue  # all taken; one may still come back from a server that dies
                try:
                    row = await run_one(batch, session, ws, client_id, index, overrides)
                except BaseException:
                    batch.todo.put_nowait((index, overrides))
                    raise
                batch.record(row)
    except (aiohttp.ClientError, ConnectionError, OSError, ServerLost) as error:
        what = "lost the connection to" if started else "cannot reach"
        batch.lost.append(f"{what} ComfyUI at {url} ({type(error).__name__}: {error})")


async def run_one(batch, session, ws, client_id, index, overrides):
    prompt = apply_overrides(batch.workflow, overrides)
    row = {"index": index, **overrides}
    async with session.post("/prompt", json={"prompt": prompt, "client_id": client_id}) as response:
        body = await response.json()
    if response.status != 200:
        return {**row, "status": "rejected", "error": node_errors_text(body)}
    prompt_id = row["prompt_id"] = body["prompt_id"]
    while True:
        try:
            message = await ws.receive(timeout=batch.args.timeout)
        except asyncio.TimeoutError:
            raise ServerLost(f"no news for {batch.args.timeout:g}s") from None
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.ERROR):
            raise ServerLost("the server closed the websocket")
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        event = json.loads(message.data)
        data = event.get("data", {})
        if data.get("prompt_id") != prompt_id:
            continue
        if event["type"] == "progress":
            batch.progress.current = f"prompt {index}: step {data['value']}/{data['max']}"
            batch.progress.show()
        elif event["type"] == "execution_success":
            row.update(await collect(session, prompt_id, prompt, batch.results.folder(index)))
            batch.results.complete(index)
            return {**row, "status": "done"}
        elif event["type"] in ("execution_error", "execution_interrupted"):
            status = "interrupted" if event["type"] == "execution_interrupted" else "failed"
            return {**row, "status": status, "error": data.get("exception_message", event["type"])}


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
    parser.add_argument("--url", nargs="+", default=["http://127.0.0.1:8188"],
                        help="one or more ComfyUI servers; prompts are spread over them")
    parser.add_argument("--in-flight", type=int, default=2,
                        help="prompts queued at once on each server (2 keeps it busy while results download)")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--threshold", type=float, nargs="+")
    parser.add_argument("--max-skip-steps", type=int, nargs="+")
    parser.add_argument("--reuse", nargs="+", help="reuse strategies: auto hold linear lagrange")
    parser.add_argument("--criterion", nargs="+", help="error or third_order")
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
