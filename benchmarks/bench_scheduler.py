"""Server utilization and the client's ceiling for the `openai` backend (issue 15).

A local OpenAI-compatible server (asyncio streams, HTTP/1.1 keep-alive, in its own process)
serves at most `--slots` requests at once; each answer takes a lognormal time (median 0.4 s,
sigma 0.8, drawn from the request's seed, so both builds see the same times) and parses
for its task. Against it, side by side in one run:

(a) utilization: the same `mminstruct.pipeline.run` (500 images x 3 tasks, concurrency 64,
    shards of 100 images) with the old batch path (one batch of images at a time; a
    batch's retries after its slowest answer) and with the streaming scheduler. Reported:
    busy time / (slots x span), span from the first request's arrival to the last answer;
(b) client ceiling: the server answers at once; requests/s through the scheduler and the
    backend alone (`ModelGenerator.generate_stream`: prompts, HTTP, parsing, collecting),
    with a new connection per request (urllib's way) and with kept connections, and through
    a whole build (grounding and writing shards too).

    python benchmarks/bench_scheduler.py            # a few minutes; writes results/bench_scheduler.json
    python benchmarks/bench_scheduler.py --quick    # seconds: tiny sizes, answers 20x faster
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import DATA_DIR, write_results
from PIL import Image

from mminstruct.config import config_from_dict
from mminstruct.generate import Batch, model
from mminstruct.generate.backends import transport
from mminstruct.generate.model import ModelGenerator
from mminstruct.pipeline import run
from mminstruct.records import ImageRecord, ObjectBox

ANSWERS = {
    "conversation": "Question: What is dog {n} doing?\nAnswer: It is running across the "
    "field.\n===\nQuestion: What covers the ground?\nAnswer: Short green grass covers it.",
    "detail": "A dog runs across a wide green field on a bright day. The grass is short and "
    "the sky above it is clear.",
    "reasoning": "Question: Why might dog {n} be out in the field?\nAnswer: The open field "
    "suggests it is out for a walk, enjoying some play in the fresh air.",
}


# ---------------------------------------------------------------------- the server


class LatencyServer:
    """Chat completions after a lognormal wait, `slots` at a time; busy time counted."""

    def __init__(self, slots: int, median_s: float, sigma: float):
        self.slots = asyncio.Semaphore(slots)
        self.median_s, self.sigma = median_s, sigma
        self.reset()

    def reset(self) -> None:
        self.stats = {"requests": 0, "busy_s": 0.0, "first_s": None, "last_s": None}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self.exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()

    async def exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; whether the connection stays open."""
        line = await reader.readline()
        if not line:
            return False
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", 0)))
        payload = await self.answer(method, path, body)
        close = headers.get("connection", "").lower() == "close"
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(payload)}\r\n" + ("Connection: close\r\n" if close else "")
        writer.write(head.encode() + b"\r\n" + payload)
        await writer.drain()
        return not close

    async def answer(self, method: str, path: str, body: bytes) -> bytes:
        if path.endswith("/stats"):
            return json.dumps(self.stats).encode()
        if path.endswith("/reset"):
            self.reset()
            return b"{}"
        if method == "GET":
            return b'{"object": "list", "data": [{"id": "bench"}]}'
        request = json.loads(body)
        arrived = time.monotonic()
        if self.stats["first_s"] is None:
            self.stats["first_s"] = arrived
        async with self.slots:
            started = time.monotonic()
            await asyncio.sleep(self.delay(request["seed"]))
            done = time.monotonic()
        self.stats["requests"] += 1
        self.stats["busy_s"] += done - started
        self.stats["last_s"] = done
        return json.dumps(completion(request)).encode()

    def delay(self, seed: int) -> float:
        if self.median_s <= 0:
            return 0.0
        return random.Random(seed).lognormvariate(math.log(self.median_s), self.sigma)


def completion(request: dict) -> dict:
    """An answer that parses for the request's task (told apart by its system message)."""
    system = request["messages"][0]["content"]
    task = "conversation" if "three and six" in system else "reasoning"
    task = "detail" if "only the description" in system else task
    text = ANSWERS[task].format(n=request["seed"] % 997)
    usage = {"prompt_tokens": 400, "completion_tokens": 60}
    choice = {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    return {"choices": [choice], "usage": usage}


async def serve(slots: int, median_s: float, sigma: float) -> None:
    server = LatencyServer(slots, median_s, sigma)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, backlog=1024)
    print(listener.sockets[0].getsockname()[1], flush=True)
    await listener.serve_forever()


class Server:
    """The server in a child process (its own core, its own GIL)."""

    def __init__(self, slots: int, median_s: float, sigma: float):
        args = [sys.executable, __file__, "--serve", str(slots), str(median_s), str(sigma)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}/v1"

    def call(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# ---------------------------------------------------------------------- the client side


def make_images(folder: Path, count: int) -> dict:
    """`count` small PNGs with a caption and a box each; the COCO source for them."""
    if not (folder / "instances.json").is_file():
        (folder / "images").mkdir(parents=True, exist_ok=True)
        images, boxes, captions = [], [], []
        for i in range(1, count + 1):
            name = f"{i:012d}.png"
            Image.new("RGB", (64, 48), (i * 7 % 256, 90, 160)).save(folder / "images" / name)
            images.append({"id": i, "file_name": name, "width": 64, "height": 48})
            boxes.append({"id": i, "image_id": i, "category_id": 1, "bbox": [4, 4, 40, 30]})
            text = f"A dog number {i} runs in the field."
            captions.append({"id": i, "image_id": i, "caption": text})
        dog = [{"id": 1, "name": "dog"}]
        data = {"images": images, "annotations": boxes, "categories": dog}
        (folder / "instances.json").write_text(json.dumps(data))
        captions_data = {"images": images, "annotations": captions}
        (folder / "captions.json").write_text(json.dumps(captions_data))
    files = {"instances": str(folder / "instances.json"), "captions": str(folder / "captions.json")}
    return {"kind": "coco", "name": "bench", "images": str(folder / "images"), **files}


def config(url: str, source: dict, out: Path, concurrency: int, shard: int):
    generator = {"backend": "openai", "model": "bench", "base_url": url}
    generator |= {"concurrency": concurrency, "temperature": 0}
    output = {"dir": str(out), "shard_max_samples": shard}
    return config_from_dict({"sources": [source], "generator": generator, "output": output})


def timed_build(server: Server, job, streamed: bool) -> dict:
    """One build from an empty folder; the server's view of it."""
    shutil.rmtree(job.output.dir, ignore_errors=True)
    server.call("/reset")
    model.STREAM_BACKENDS = ("openai",) if streamed else ()
    started = time.perf_counter()
    stats = run(job)
    seconds = time.perf_counter() - started
    model.STREAM_BACKENDS = ("openai",)
    seen = server.call("/stats")
    span = seen["last_s"] - seen["first_s"]
    return {
        "seconds": round(seconds, 2),
        "requests": seen["requests"],
        "span_s": round(span, 2),
        "busy_s": round(seen["busy_s"], 1),
        "images_written": stats["images_written"],
        "requests_per_s": round(seen["requests"] / seconds, 1),
        "span": span,
    }


def utilization(result: dict, slots: int) -> float:
    return round(result["busy_s"] / (slots * result.pop("span")), 3)


def client_ceiling(url: str, images: int, concurrency: int, kept: bool) -> dict:
    """Requests/s through `generate_stream` alone, against answers that come at once;
    `kept`: keep-alive connections (else urllib's way: a new connection per request)."""
    job = config(url, {"kind": "coco", "images": "x", "instances": "y"}, Path("x"), concurrency, 1)
    generator = ModelGenerator(job)
    dog = (ObjectBox("dog", 4, 4, 44, 34),)
    records = [
        ImageRecord("bench", i, f"{i}.png", None, 64, 48, (f"A dog number {i} runs.",), dog, ())
        for i in range(images)
    ]
    size = job.generator.batch_size
    chunks = [records[i : i + size] for i in range(0, images, size)]
    batches = [Batch(chunk, [b""] * len(chunk), None) for chunk in chunks]
    proxied = transport._proxied
    if not kept:
        transport._proxied = lambda request: True  # urllib's opener, "Connection: close"
    try:
        started = time.perf_counter()
        stream = generator.generate_stream(batches)
        kept_instructions = sum(len(g.instructions) for _, rs in stream for g in rs)
        seconds = time.perf_counter() - started
    finally:
        transport._proxied = proxied
    requests = 3 * images
    return {
        "requests": requests,
        "seconds": round(seconds, 2),
        "instructions": kept_instructions,
        "requests_per_s": round(requests / seconds, 1),
    }


# ---------------------------------------------------------------------- the run


def measure(args: argparse.Namespace) -> dict:
    folder = DATA_DIR / f"scheduler-{args.images}"
    source = make_images(folder, args.images)
    results: dict = {"images": args.images, "concurrency": args.concurrency}
    server = Server(args.concurrency, args.median_s, 0.8)
    try:
        job = config(server.url, source, folder / "out", args.concurrency, args.shard)
        old = timed_build(server, job, streamed=False)
        new = timed_build(server, job, streamed=True)
        old["utilization"], new["utilization"] = (
            utilization(r, args.concurrency) for r in (old, new)
        )
        results["utilization"] = {
            "slots": args.concurrency,
            "median_s": args.median_s,
            "sigma": 0.8,
            "batch_path": old,
            "scheduler": new,
        }
    finally:
        server.stop()
    server = Server(args.concurrency, 0.0, 0.8)
    try:
        job = config(server.url, source, folder / "out", args.concurrency, args.shard)
        build = timed_build(server, job, streamed=True)
        build.pop("span")
        fresh, kept = (
            client_ceiling(server.url, args.ceiling_images, args.concurrency, kept)
            for kept in (False, True)
        )
        results["ceiling"] = {
            "scheduler_and_backend": {"connection_per_request": fresh, "kept_connections": kept},
            "whole_build": build,
        }
    finally:
        server.stop()
    shutil.rmtree(folder / "out", ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, answers 20x faster")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve:
        slots, median, sigma = options.serve
        asyncio.run(serve(int(slots), float(median), float(sigma)))
    logging.getLogger("mminstruct").setLevel(logging.ERROR)
    os.environ.setdefault("no_proxy", "127.0.0.1")
    sizes = dict(images=500, concurrency=64, shard=100, median_s=0.4, ceiling_images=1000)
    if options.quick:
        sizes = dict(images=24, concurrency=8, shard=10, median_s=0.02, ceiling_images=60)
    results = measure(argparse.Namespace(**sizes))
    print(json.dumps(results, indent=2))
    if not options.quick:
        print(f"wrote {write_results('bench_scheduler', results)}")
    return results


if __name__ == "__main__":
    main()
