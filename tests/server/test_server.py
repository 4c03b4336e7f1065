#!/usr/bin/env python3
"""Integration tests of `sdvk serve` with the demo model (ctest label
`server`): python3 test_server.py SDVK_BINARY CASE.

Each case starts its own server on a free loopback port, checks what the
issue's acceptance list asks, and stops the server with SIGTERM (exit 0
expected: under ASan a leak would make it non-zero)."""
import base64
import json
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sdvk_test_server import Checker, Server, b64, png_decode, png_encode  # noqa: E402

PROMPT = "a red circle on a blue background"
LONG = {"prompt": PROMPT, "steps": 40, "width": 256, "height": 256, "seed": 7}  # a few seconds


def decode_images(c, resp, n, size, what):
    imgs = resp.get("images") if isinstance(resp, dict) else None
    if not c.ok(isinstance(imgs, list) and len(imgs) == n, "%s: %d images" % (what, n)):
        return []
    out = []
    for i, s in enumerate(imgs):
        w, h, ch, px, texts = png_decode(base64.b64decode(s, validate=True))
        c.eq((w, h), size, "%s image %d size" % (what, i))
        c.ok("parameters" in texts, "%s image %d has a parameters chunk" % (what, i))
        out.append((px, texts.get("parameters", "")))
    return out


def wait_running(srv, min_step=1, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        _, _, p = srv.get("/sdapi/v1/progress?skip_current_image=true")
        if p["state"]["sampling_step"] >= min_step:
            return p
        time.sleep(0.02)
    raise AssertionError("no job reached step %d" % min_step)


def in_thread(fn, *args):
    box = {}

    def run():
        try:
            box["r"] = fn(*args)
        except Exception as e:  # reported by the caller
            box["e"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, box


# ---- cases ------------------------------------------------------------------------------

def case_api(sdvk):
    c = Checker("server_api")
    srv = Server(sdvk)
    try:
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 20, "seed": 42,
                                                   "width": 64, "height": 64, "unknown_field": 1,
                                                   "alwayson_scripts": {}})
        c.eq(st, 200, "txt2img status")
        imgs = decode_images(c, r, 1, (64, 64), "txt2img")
        if imgs:
            text = imgs[0][1]
            c.ok(text.startswith(PROMPT), "parameters start with the prompt: %r" % text)
            for frag in ("Steps: 20", "Seed: 42", "Size: 64x64", "Sampler: Euler", "CFG scale: 7"):
                c.ok(frag in text, "parameters contain %r: %r" % (frag, text))
        c.eq(r["parameters"]["prompt"], PROMPT, "parameters echo the prompt")
        c.eq(r["parameters"]["steps"], 20, "parameters echo steps")
        c.ok("unknown_field" not in r["parameters"], "unknown fields are ignored")
        info = json.loads(r["info"])
        c.eq(info["seed"], 42, "info.seed")
        c.eq(info["all_seeds"], [42], "info.all_seeds")
        c.eq(info["sd_model_name"], "sdvk-demo", "info.sd_model_name")
        c.eq(info["infotexts"][0], imgs[0][1] if imgs else None, "info.infotexts = PNG text")
        c.eq(info["sampler_name"], "Euler", "info.sampler_name (A1111 default)")

        # the same seed gives the same picture
        st, _, r2 = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 20, "seed": 42,
                                                    "width": 64, "height": 64})
        c.eq(r2["images"], r["images"], "same seed, same PNG")

        # batch_size x n_iter, seeds seed+k
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 8, "seed": 100,
                                                   "batch_size": 2, "n_iter": 2,
                                                   "sampler_name": "DPM++ 2M", "scheduler": "Karras",
                                                   "width": 64, "height": 64})
        c.eq(st, 200, "batch status")
        decode_images(c, r, 4, (64, 64), "batch")
        info = json.loads(r["info"])
        c.eq(info["all_seeds"], [100, 101, 102, 103], "batch seeds")
        c.ok("Schedule type: Karras" in info["infotexts"][0], "scheduler in infotext: %r" % info["infotexts"][0])

        # random seed: resolved in info, -1 echoed in parameters as A1111 does
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 4, "seed": -1,
                                                   "width": 64, "height": 64, "sampler_index": "Euler a"})
        info = json.loads(r["info"])
        c.ok(info["seed"] >= 0 and r["parameters"]["seed"] == -1, "seed -1: random, echoed as -1")
        c.eq(info["sampler_name"], "Euler a", "sampler_index is honoured")

        # hires fix and clip skip through override_settings
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 6, "seed": 3,
                                                   "width": 64, "height": 64, "enable_hr": True,
                                                   "hr_scale": 2, "denoising_strength": 0.5,
                                                   "override_settings": {"CLIP_stop_at_last_layers": 2}})
        c.eq(st, 200, "hires status")
        imgs = decode_images(c, r, 1, (128, 128), "hires")
        c.ok(imgs and "Hires" in imgs[0][1], "hires in infotext")
        c.eq(json.loads(r["info"])["clip_skip"], 2, "clip skip from override_settings")

        # send_images false
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 2, "width": 64,
                                                   "height": 64, "send_images": False})
        c.eq((st, r["images"]), (200, []), "send_images false")

        # OpenAI
        st, _, r = srv.post("/v1/images/generations", {"prompt": PROMPT, "n": 2, "size": "64x64",
                                                        "response_format": "b64_json", "seed": 5,
                                                        "model": "dall-e-2"})
        c.eq(st, 200, "openai status")
        c.ok(isinstance(r.get("created"), int), "openai created")
        data = r.get("data", [])
        c.eq(len(data), 2, "openai n=2")
        for d in data:
            w, h, _, _, texts = png_decode(base64.b64decode(d["b64_json"]))
            c.eq((w, h), (64, 64), "openai size")
            c.ok(texts.get("parameters", "").startswith(PROMPT), "openai parameters chunk")
        st, _, r = srv.post("/v1/images/generations", {"prompt": PROMPT, "size": "64x64"})
        c.ok(st == 200 and r["data"][0]["url"].startswith("data:image/png;base64,"),
             "openai url format is a data: URL")
        st, _, r = srv.post("/v1/images/generations", {"prompt": PROMPT, "size": "huge"})
        c.ok(st == 400 and r["error"]["param"] == "size", "openai bad size -> 400 naming size")
        st, _, r = srv.post("/v1/images/generations", {"n": 1})
        c.ok(st == 400 and r["error"]["param"] == "prompt", "openai missing prompt -> 400")
        st, _, r = srv.get("/v1/models")
        c.ok(st == 200 and r["data"][0]["id"] == "sdvk-demo", "openai models")

        # lists
        st, _, r = srv.get("/sdapi/v1/samplers")
        names = [s["name"] for s in r]
        c.ok(st == 200 and "Euler a" in names and "DPM++ 2M" in names and
             all(set(s) == {"name", "aliases", "options"} for s in r), "samplers")
        st, _, r = srv.get("/sdapi/v1/schedulers")
        c.ok(st == 200 and "karras" in [s["name"] for s in r] and all("label" in s for s in r),
             "schedulers")
        st, _, r = srv.get("/sdapi/v1/sd-models")
        c.ok(st == 200 and r[0]["model_name"] == "sdvk-demo" and r[0]["title"] and
             "/" not in r[0]["filename"], "sd-models (no server path shown)")
        st, _, r = srv.get("/sdapi/v1/options")
        c.ok(st == 200 and r["sd_model_checkpoint"] == "sdvk-demo.safetensors", "options GET")
        st, _, r = srv.post("/sdapi/v1/options", {"CLIP_stop_at_last_layers": 2, "unknown_opt": 1})
        c.eq(st, 200, "options POST")
        st, _, r = srv.get("/sdapi/v1/options")
        c.eq(r["CLIP_stop_at_last_layers"], 2, "options POST took effect")
        st, _, r = srv.post("/sdapi/v1/options", {"CLIP_stop_at_last_layers": "x"})
        c.eq(st, 422, "options POST wrong type -> 422")
        st, _, r = srv.post("/sdapi/v1/options", {"sd_model_checkpoint": "other.safetensors"})
        c.eq(st, 404, "options POST unknown model -> 404")
        srv.post("/sdapi/v1/options", {"CLIP_stop_at_last_layers": 1})
        st, _, r = srv.get("/sdapi/v1/loras")
        c.eq((st, r), (200, []), "loras (no --lora-dir)")
        st, _, r = srv.get("/sdapi/v1/upscalers")
        c.ok(st == 200 and "Lanczos" in [u["name"] for u in r], "upscalers")

        # png-info round trip
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "negative_prompt": "green",
                                                   "steps": 3, "seed": 9, "width": 64, "height": 64})
        st, _, pi = srv.post("/sdapi/v1/png-info", {"image": "data:image/png;base64," + r["images"][0]})
        c.ok(st == 200 and pi["info"] == json.loads(r["info"])["infotexts"][0], "png-info info")
        c.ok(pi["parameters"].get("Prompt") == PROMPT and pi["parameters"].get("Negative prompt") == "green"
             and pi["parameters"].get("Seed") == "9", "png-info parsed: %r" % pi.get("parameters"))

        # the page, health, metrics, 404, 405
        st, h, page = srv.get("/")
        c.ok(st == 200 and h["content-type"].startswith("text/html") and b"id=\"generate\"" in page,
             "web page")
        st, _, r = srv.get("/health")
        c.ok(st == 200 and r["status"] == "ok" and r["native_width"] == 64, "health")
        st, h, m = srv.get("/metrics")
        text = m.decode()
        c.ok(st == 200 and h["content-type"].startswith("text/plain"), "metrics content type")
        for name in ("sdvk_http_requests_total{endpoint=\"txt2img\"}", "sdvk_queue_length",
                     "sdvk_images_total", "sdvk_seconds_per_step", "sdvk_http_errors_total",
                     "process_resident_memory_bytes"):
            c.ok(name in text, "metrics has " + name)
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                try:
                    float(value)
                except ValueError:
                    c.ok(False, "metrics line %r has a number" % line)
        images = [l for l in text.splitlines() if l.startswith("sdvk_images_total ")]
        c.ok(images and int(images[0].split()[1]) >= 11, "images counted: %r" % images)
        st, _, r = srv.get("/nope")
        c.eq(st, 404, "unknown path -> 404")
        st, h, r = srv.get("/sdapi/v1/txt2img")
        c.ok(st == 405 and "POST" in h.get("allow", ""), "GET on a POST endpoint -> 405 with Allow")
    finally:
        c.eq(srv.stop(), 0, "exit code after SIGTERM")
    c.finish(srv)


def case_img2img(sdvk):
    c = Checker("server_img2img")
    srv = Server(sdvk)
    try:
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 10, "seed": 1,
                                                   "width": 64, "height": 64})
        init = r["images"][0]
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": "a green square on a yellow background",
                                                   "init_images": [init], "denoising_strength": 0.6,
                                                   "steps": 10, "seed": 2})
        c.eq(st, 200, "img2img status: %r" % (r if st != 200 else ""))
        imgs = decode_images(c, r, 1, (64, 64), "img2img")
        c.ok(imgs and "Denoising strength: 0.6" in imgs[0][1], "img2img infotext: %r" % (imgs[0][1] if imgs else ""))
        c.eq(r["parameters"]["init_images"], None, "init images not echoed (A1111)")
        # a data: URL, another size (resized), mask (inpainting), inverted mask
        w = h = 48
        px = bytes([200, 30, 30] * (w * h))
        init2 = "data:image/png;base64," + b64(png_encode(w, h, px))
        mask = b64(png_encode(64, 64, bytes(([255] * 3 * 32 + [0] * 3 * 32) * 64)))
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [init2],
                                                   "mask": mask, "mask_blur": 2, "steps": 6,
                                                   "width": 64, "height": 64, "seed": 3,
                                                   "inpainting_fill": 1, "inpaint_full_res": False})
        c.eq(st, 200, "inpainting status: %r" % (r if st != 200 else ""))
        imgs = decode_images(c, r, 1, (64, 64), "inpainting")
        if imgs:
            # the left half is repainted, the right half (black in the mask) kept near the init
            px_out = imgs[0][0]
            right = [px_out[(y * 64 + x) * 3] for y in range(64) for x in range(48, 64)]
            c.ok(sum(right) / len(right) > 120, "kept half stays red-ish (mean R %.0f)" % (sum(right) / len(right)))
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [init2],
                                                   "mask": mask, "inpainting_mask_invert": 1,
                                                   "steps": 4, "width": 64, "height": 64})
        c.eq(st, 200, "inverted mask")
        # without width/height: the init image's size, rounded down to 8
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [init2], "steps": 4})
        c.ok(st == 200 and r["parameters"]["width"] == 48, "img2img size from the init image")
        # errors
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "steps": 4})
        c.eq(st, 404, "no init_images -> 404 (A1111)")
        png = png_encode(64, 64, bytes(64 * 64 * 3))
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [b64(png[:len(png) // 2])]})
        c.ok(st == 422 and r["detail"][0]["loc"] == ["body", "init_images", 0],
             "truncated image -> 422 naming init_images[0]: %r" % (r,))
        for junk in (b"GIF89a not really", b"\xff\xd8\xff\xe0 not a jpeg", b"BM" + bytes(60), b"plain text"):
            st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [b64(junk)]})
            c.ok(st == 422 and r["detail"][0]["loc"] == ["body", "init_images", 0],
                 "garbage image %r -> 422 (%d %r)" % (junk[:6], st, r))
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [init], "mask": "@@@@"})
        c.ok(st == 422 and r["detail"][0]["loc"] == ["body", "mask"], "bad base64 mask -> 422 naming mask")
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [init],
                                                   "denoising_strength": 0})
        c.eq(st, 422, "denoising_strength 0 -> 422")
        st, _, r = srv.get("/health")
        c.eq(st, 200, "still answering")
    finally:
        c.eq(srv.stop(), 0, "exit code after SIGTERM")
    c.finish(srv)


def case_progress(sdvk):
    c = Checker("server_progress")
    srv = Server(sdvk)
    try:
        st, _, p = srv.get("/sdapi/v1/progress")
        c.ok(st == 200 and p["progress"] == 0 and p["state"]["job_count"] == 0, "idle progress")
        body = dict(LONG, steps=20, force_task_id="progress-test-1")
        t, box = in_thread(srv.post, "/sdapi/v1/txt2img", body)
        steps_seen, progress_seen = [], []
        task_seen = False
        t0 = time.time()
        while t.is_alive() and time.time() - t0 < 120:
            st, _, p = srv.get("/sdapi/v1/progress")
            if p["state"]["sampling_steps"]:
                steps_seen.append(p["state"]["sampling_step"])
                progress_seen.append(p["progress"])
                c.ok(set(p["state"]) >= {"job", "job_count", "sampling_step", "sampling_steps",
                                         "interrupted", "skipped", "job_no"}, "state fields")
            st, _, tp = srv.post("/internal/progress", {"id_task": "progress-test-1"})
            if tp.get("active"):
                task_seen = True
            time.sleep(0.05)
        t.join()
        c.eq(box.get("r", (None,))[0], 200, "the job finished")
        distinct = sorted(set(steps_seen))
        c.ok(len(distinct) >= 3, "progress advanced through several steps: %r" % distinct)
        c.ok(steps_seen == sorted(steps_seen), "steps never go back")
        c.ok(progress_seen == sorted(progress_seen) and progress_seen and progress_seen[-1] > 0.3,
             "progress grows: %r" % progress_seen[-5:])
        c.ok(task_seen, "/internal/progress saw the task active")
        st, _, tp = srv.post("/internal/progress", {"id_task": "progress-test-1"})
        c.ok(tp["completed"] and not tp["active"], "task completed afterwards")
        st, _, tp = srv.post("/internal/progress", {"id_task": "never-seen"})
        c.ok(not (tp["completed"] or tp["active"] or tp["queued"]), "unknown task")
        # live previews (A1111's show_progress_every_n_steps): current_image is
        # a PNG of the latent being sampled, and it changes as sampling goes on
        st, _, _ = srv.post("/sdapi/v1/options", {"show_progress_every_n_steps": 2})
        c.eq(st, 200, "options: previews every 2 steps")
        t, box = in_thread(srv.post, "/sdapi/v1/txt2img", dict(LONG, steps=20))
        images = []
        t0 = time.time()
        while t.is_alive() and time.time() - t0 < 120:
            st, _, p = srv.get("/sdapi/v1/progress")
            img = p.get("current_image")
            if img and (not images or images[-1] != img):
                images.append(img)
            time.sleep(0.05)
        t.join()
        c.eq(box.get("r", (None,))[0], 200, "the job with previews finished")
        pngs = [base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images]
        c.ok(len(images) >= 2 and all(pngs), "previews seen: %d distinct PNGs" % len(images))
    finally:
        c.eq(srv.stop(), 0, "exit code after SIGTERM")
    c.finish(srv)


def case_interrupt(sdvk):
    c = Checker("server_interrupt")
    srv = Server(sdvk, "--max-steps", "1000")
    try:
        t, box = in_thread(srv.post, "/sdapi/v1/txt2img", dict(LONG, steps=200))
        wait_running(srv, 1)
        t_int = time.time()
        st, _, r = srv.post("/sdapi/v1/interrupt")
        c.eq(st, 200, "interrupt status")
        t.join(60)
        c.ok(not t.is_alive(), "the interrupted request returned")
        c.ok(time.time() - t_int < 10, "promptly (%.1f s)" % (time.time() - t_int))
        st, _, r = box["r"]
        c.eq(st, 200, "interrupted job answered 200 as A1111 does")
        c.ok(json.loads(r["info"])["interrupted"] is True, "info says interrupted")
        # cancel a queued job by task id, and the running one
        ta, ba = in_thread(srv.post, "/sdapi/v1/txt2img", dict(LONG, steps=200, force_task_id="run-a"))
        wait_running(srv, 1)
        tb, bb = in_thread(srv.post, "/sdapi/v1/txt2img", dict(LONG, force_task_id="queued-b"))
        t0 = time.time()
        while time.time() - t0 < 20:
            _, _, tp = srv.post("/internal/progress", {"id_task": "queued-b"})
            if tp["queued"]:
                break
            time.sleep(0.02)
        c.ok(tp["queued"], "job b is queued")
        st, _, r = srv.post("/sdvk/v1/cancel", {"id_task": "queued-b"})
        c.eq(st, 200, "cancel queued job")
        tb.join(20)
        c.ok(not tb.is_alive() and bb["r"][0] == 200 and bb["r"][2]["images"] == [],
             "cancelled queued job answered without images")
        st, _, r = srv.post("/sdvk/v1/cancel", {"id_task": "run-a"})
        c.eq(st, 200, "cancel running job")
        ta.join(60)
        c.ok(not ta.is_alive() and ba["r"][0] == 200, "cancelled running job answered")
        st, _, r = srv.post("/sdvk/v1/cancel", {"id_task": "run-a"})
        c.eq(st, 404, "cancel of a finished task -> 404")
        # the server still generates
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 4, "width": 64, "height": 64})
        c.ok(st == 200 and len(r["images"]) == 1, "generates after interrupts")
        # a client that goes away cancels its job
        s = socket.create_connection((srv.host, srv.port))
        body = json.dumps(dict(LONG, steps=300)).encode()
        s.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        wait_running(srv, 1)
        s.close()
        t0 = time.time()
        busy = True
        while time.time() - t0 < 30 and busy:
            _, _, hl = srv.get("/health")
            busy = hl["busy"]
            time.sleep(0.05)
        c.ok(not busy, "the worker is free after the client left (%.1f s)" % (time.time() - t0))
        _, _, m = srv.get("/metrics")
        c.ok(b'sdvk_jobs_total{result="client_gone"} 1' in m, "metrics count the client that left")
    finally:
        c.eq(srv.stop(), 0, "exit code after SIGTERM")
    c.finish(srv)


def case_queue(sdvk):
    c = Checker("server_queue")
    srv = Server(sdvk, "--queue", "1", "--max-steps", "1000")
    try:
        ta, ba = in_thread(srv.post, "/sdapi/v1/txt2img", dict(LONG, steps=300))
        wait_running(srv, 1)
        tb, bb = in_thread(srv.post, "/sdapi/v1/txt2img", dict(LONG, steps=4))
        t0 = time.time()
        while time.time() - t0 < 20:
            _, _, hl = srv.get("/health")
            if hl["queue"] == 1:
                break
            time.sleep(0.02)
        c.eq(hl["queue"], 1, "one job queued")
        st, h, r = srv.post("/sdapi/v1/txt2img", dict(LONG, steps=4))
        c.eq(st, 503, "full queue -> 503")
        c.ok(int(h.get("retry-after", "0")) >= 1, "Retry-After: %r" % h.get("retry-after"))
        st, h, r = srv.post("/v1/images/generations", {"prompt": PROMPT})
        c.ok(st == 503 and "error" in r, "full queue -> 503 for OpenAI too")
        srv.post("/sdapi/v1/interrupt")
        ta.join(60)
        tb.join(60)
        c.eq(ba["r"][0], 200, "running job answered")
        c.eq(bb["r"][0], 200, "queued job ran")
        _, _, m = srv.get("/metrics")
        c.ok(b'sdvk_jobs_total{result="rejected_queue_full"} 2' in m, "rejections counted")
        # a duplicate task id
        ta, ba = in_thread(srv.post, "/sdapi/v1/txt2img", dict(LONG, steps=300, force_task_id="dup"))
        wait_running(srv, 1)
        st, _, r = srv.post("/sdapi/v1/txt2img", dict(LONG, force_task_id="dup"))
        c.eq(st, 409, "task id in use -> 409")
        srv.post("/sdapi/v1/interrupt")
        ta.join(60)
    finally:
        c.eq(srv.stop(), 0, "exit code after SIGTERM")
    # --queue 0: a job only when the worker is idle
    srv0 = Server(sdvk, "--queue", "0", "--max-steps", "1000")
    try:
        st, _, r = srv0.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 2, "width": 64, "height": 64})
        c.eq(st, 200, "--queue 0, idle worker: runs")
        ta, ba = in_thread(srv0.post, "/sdapi/v1/txt2img", dict(LONG, steps=300))
        wait_running(srv0, 1)
        st, _, r = srv0.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 2, "width": 64, "height": 64})
        c.eq(st, 503, "--queue 0, busy worker: 503")
        srv0.post("/sdapi/v1/interrupt")
        ta.join(60)
    finally:
        c.eq(srv0.stop(), 0, "exit code after SIGTERM (--queue 0)")
    c.finish(srv)


def case_bad_input(sdvk):
    c = Checker("server_bad_input")
    srv = Server(sdvk, "--max-body", "200000", "--max-width", "1024", "--max-height", "1024",
                 "--max-steps", "100", "--max-images", "4")

    def alive(what):
        st, _, r = srv.get("/health")
        c.eq(st, 200, "still answering after " + what)

    def locs(r):
        return [d["loc"] for d in r.get("detail", [])] if isinstance(r, dict) and isinstance(r.get("detail"), list) else []

    try:
        for raw in (b"{", b"{\"prompt\": }", b"not json", b"\xff\xfe", b"[1,2]", b"\"str\"", b"",
                    b"{\"a\":1,\"a\":2}"):
            st, _, r = srv.request("POST", "/sdapi/v1/txt2img", raw=raw,
                                   headers={"Content-Type": "application/json"})
            c.ok(st == 422 and "detail" in r, "malformed JSON %r -> 422 (%d)" % (raw[:10], st))
        alive("malformed JSON")
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": 5, "steps": "twenty", "width": [64],
                                                   "cfg_scale": {}, "seed": 1.5, "enable_hr": "maybe"})
        c.eq(st, 422, "wrong types -> 422")
        want = [["body", k] for k in ("prompt", "steps", "width", "cfg_scale", "seed", "enable_hr")]
        c.ok(all(w in locs(r) for w in want), "every wrong field named: %r" % locs(r))
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "override_settings": {"CLIP_stop_at_last_layers": "a"}})
        c.ok(st == 422 and ["body", "override_settings", "CLIP_stop_at_last_layers"] in locs(r),
             "nested wrong type named: %r" % locs(r))
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": "12", "width": 64.0,
                                                   "height": "64", "seed": "3"})
        c.eq(st, 200, "numeric strings and integral floats accepted (pydantic)")
        alive("wrong types")
        for body, field in (({"width": 100000}, "width"), ({"height": 1000000000}, "height"),
                            ({"width": 2048}, "width"), ({"width": 65}, "width"), ({"steps": 100000}, "steps"),
                            ({"steps": 0}, "steps"), ({"batch_size": 100}, "batch_size"),
                            ({"batch_size": 3, "n_iter": 3}, "batch_size"), ({"cfg_scale": 1e9}, "cfg_scale"),
                            ({"enable_hr": True, "hr_scale": 8, "width": 256, "height": 256}, "hr_scale"),
                            ({"seed": -5}, "seed"), ({"scheduler": "nope"}, "scheduler"),
                            ({"prompt": "<lora:../../etc/passwd:1>"}, "prompt"),
                            ({"force_task_id": "a/b"}, "force_task_id")):
            b = dict({"prompt": PROMPT, "steps": 4, "width": 64, "height": 64}, **body)
            st, _, r = srv.post("/sdapi/v1/txt2img", b)
            c.ok(st == 422 and ["body", field] in locs(r), "%r -> 422 naming %s (%d %r)" % (body, field, st, r))
        alive("huge sizes")
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "sampler_name": "Nope"})
        c.eq(st, 404, "unknown sampler -> 404 (A1111)")
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "override_settings": {"sd_model_checkpoint": "x"}})
        c.eq(st, 404, "unknown model -> 404 (A1111)")
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "script_name": "x/y plot"})
        c.eq(st, 422, "scripts -> 422")
        # bad base64 in every flavour
        good = b64(png_encode(8, 8, bytes(8 * 8 * 3)))
        for bad in ("abc", "ab=c", "a" * 5, good[:-1], good + "A", good.replace("A", "*", 1),
                    "data:image/png,abcd", good[:8] + " " + good[9:], good[:-2] + "\n"):
            st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [bad]})
            c.ok(st == 422 and ["body", "init_images", 0] in locs(r), "bad base64 %r -> 422 (%d)" % (bad[:12], st))
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [5]})
        c.ok(st == 422 and ["body", "init_images", 0] in locs(r), "init image not a string -> 422")
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": "abc"})
        c.ok(st == 422 and ["body", "init_images"] in locs(r), "init_images not a list -> 422")
        alive("bad base64")
        # truncated and oversized images
        png = png_encode(64, 64, bytes(range(256)) * 48)
        for cut in (20, 40, len(png) - 20):
            st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [b64(png[:cut])]})
            c.ok(st == 422 and ["body", "init_images", 0] in locs(r), "truncated image (%d bytes) -> 422 (%d)" % (cut, st))
        big = png_encode(8, 8, bytes(8 * 8 * 3))
        big = big[:16] + (100000).to_bytes(4, "big") + (100000).to_bytes(4, "big") + big[24:]
        st, _, r = srv.post("/sdapi/v1/img2img", {"prompt": PROMPT, "init_images": [b64(big)]})
        c.ok(st == 422 and ["body", "init_images", 0] in locs(r), "image of 10^10 pixels -> 422 (%d %r)" % (st, r))
        alive("truncated images")
        # oversized bodies: with Content-Length (read and dropped), far over (refused at once)
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": "x" * 300000})
        c.eq(st, 413, "oversized body -> 413")
        try:
            st, _, r = srv.request("POST", "/sdapi/v1/txt2img", raw=b"x" * 3000000)
            c.eq(st, 413, "far oversized body -> 413")
        except (ConnectionError, OSError):
            c.ok(True, "far oversized body: connection closed")
        # chunked body over the limit
        s = socket.create_connection((srv.host, srv.port), timeout=30)
        s.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"y" * 65536
        try:
            for _ in range(8):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
            resp = s.recv(4096)
            c.ok(resp.startswith(b"HTTP/1.1 413"), "chunked oversized body -> 413: %r" % resp[:40])
        except OSError:
            c.ok(True, "chunked oversized body: connection closed")
        s.close()
        alive("oversized bodies")
        # a slow, broken client does not wedge the server
        s = socket.create_connection((srv.host, srv.port))
        s.sendall(b"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro")
        s.close()
        s = socket.create_connection((srv.host, srv.port))
        s.sendall(b"GARBAGE\r\n\r\n")
        s.recv(100)
        s.close()
        alive("broken clients")
        st, _, r = srv.post("/sdapi/v1/png-info", {"image": "%%%"})
        c.eq(st, 422, "png-info bad base64 -> 422")
        st, _, r = srv.post("/sdapi/v1/png-info", {"image": b64(b"not a png at all")})
        c.eq(st, 422, "png-info not a PNG -> 422")
        st, _, r = srv.post("/internal/progress", {"id_task": 5})
        c.eq(st, 422, "progress id_task not a string -> 422")
        st, _, r = srv.post("/v1/images/generations", {"prompt": 5})
        c.ok(st == 400 and r["error"]["param"] == "prompt", "openai wrong type -> 400 naming prompt")
        st, _, r = srv.request("POST", "/v1/images/generations", raw=b"{oops")
        c.eq(st, 400, "openai malformed JSON -> 400")
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 4, "width": 64, "height": 64})
        c.eq(st, 200, "a good request still works")
        _, _, m = srv.get("/metrics")
        errs = [l for l in m.decode().splitlines() if l.startswith("sdvk_http_errors_total ")]
        c.ok(errs and int(errs[0].split()[1]) > 40, "errors counted: %r" % errs)
    finally:
        c.eq(srv.stop(), 0, "exit code after SIGTERM")
    c.finish(srv)


def case_auth(sdvk):
    c = Checker("server_auth")
    srv = Server(sdvk, "--api-key", "s3cret")
    try:
        for path in ("/sdapi/v1/samplers", "/sdapi/v1/progress", "/metrics", "/v1/models", "/sdapi/v1/options"):
            st, h, r = srv.get(path)
            c.ok(st == 401 and h.get("www-authenticate") == "Bearer", "%s without a key -> 401" % path)
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 2})
        c.eq(st, 401, "txt2img without a key -> 401")
        st, _, r = srv.get("/sdapi/v1/samplers", headers={"Authorization": "Bearer wrong"})
        c.eq(st, 401, "wrong key -> 401")
        st, _, r = srv.get("/sdapi/v1/samplers", headers={"Authorization": "Bearer s3cre"})
        c.eq(st, 401, "prefix of the key -> 401")
        st, _, r = srv.get("/sdapi/v1/samplers", headers={"Authorization": "Basic czNjcmV0"})
        c.eq(st, 401, "basic auth -> 401")
        st, _, r = srv.get("/sdapi/v1/samplers", headers={"Authorization": "Bearer s3cret"})
        c.eq(st, 200, "right key -> 200")
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 2, "width": 64, "height": 64},
                            headers={"Authorization": "Bearer s3cret"})
        c.eq(st, 200, "txt2img with the key")
        c.eq(srv.get("/")[0], 200, "the page needs no key")
        c.eq(srv.get("/health")[0], 200, "/health needs no key")
    finally:
        c.eq(srv.stop(), 0, "exit code after SIGTERM")
    c.finish(srv)


def case_shutdown(sdvk):
    c = Checker("server_shutdown")
    # the running job gets 0.5 s, then it is cancelled
    srv = Server(sdvk, "--grace", "0.5", "--max-steps", "1000")
    ta, ba = in_thread(srv.post, "/sdapi/v1/txt2img", dict(LONG, steps=300))
    wait_running(srv, 1)
    tb, bb = in_thread(srv.post, "/sdapi/v1/txt2img", dict(LONG, steps=4))
    t0 = time.time()
    while time.time() - t0 < 20 and srv.get("/health")[2]["queue"] < 1:
        time.sleep(0.02)
    t0 = time.time()
    code = srv.stop(signal.SIGTERM, timeout=60)
    c.eq(code, 0, "exit code 0 after SIGTERM")
    c.ok(time.time() - t0 < 30, "exits promptly (%.1f s)" % (time.time() - t0))
    ta.join(10)
    tb.join(10)
    c.eq(bb.get("r", (None,))[0], 503, "queued job answered 503")
    c.eq(ba.get("r", (None,))[0], 503, "running job cancelled after the grace time: 503")
    # a running job that fits in the grace time finishes
    srv2 = Server(sdvk, "--grace", "60")
    ta, ba = in_thread(srv2.post, "/sdapi/v1/txt2img", dict(LONG, steps=10))
    wait_running(srv2, 1)
    c.eq(srv2.stop(signal.SIGTERM, timeout=90), 0, "exit code 0 (SIGTERM, job finishing)")
    ta.join(10)
    c.eq(ba.get("r", (None,))[0], 200, "running job finished within the grace time")
    # SIGINT too, idle
    srv3 = Server(sdvk)
    c.eq(srv3.stop(signal.SIGINT), 0, "exit code 0 after SIGINT")
    # request timeout
    srv4 = Server(sdvk, "--timeout", "1", "--max-steps", "1000")
    st, _, r = srv4.post("/sdapi/v1/txt2img", dict(LONG, steps=300))
    c.eq(st, 504, "request over --timeout -> 504")
    st, _, r = srv4.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 4, "width": 64, "height": 64})
    c.eq(st, 200, "next request fine")
    c.eq(srv4.stop(), 0, "exit code")
    c.finish(srv if c.failed else None)


def case_loras(sdvk):
    """--lora-dir: /sdapi/v1/loras lists the folder's LoRA files; a broken
    LoRA named in a prompt is a clear error, and the server goes on."""
    import tempfile
    import shutil
    c = Checker("server_loras")
    d = tempfile.mkdtemp(prefix="sdvk-loras-")
    for name in ("style_a.safetensors", "style_b.pt", "notes.txt", ".hidden.safetensors"):
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"not a real LoRA")
    srv = Server(sdvk, "--lora-model-dir", d)
    try:
        st, _, r = srv.get("/sdapi/v1/loras")
        c.eq(st, 200, "loras status")
        c.eq(sorted(x["name"] for x in r), ["style_a", "style_b"], "LoRA files listed by name")
        c.ok(all("/" not in x["path"] for x in r), "no server path shown")
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": "a red circle <lora:style_a:0.8>", "steps": 2,
                                                   "width": 64, "height": 64})
        c.ok(st in (422, 500) and "detail" in r, "a broken LoRA file -> a clear error (%d %r)" % (st, r))
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": "<lora:../style_a:1>", "steps": 2})
        c.eq(st, 422, "a LoRA name with a path -> 422")
        st, _, r = srv.post("/sdapi/v1/txt2img", {"prompt": PROMPT, "steps": 2, "width": 64, "height": 64})
        c.eq(st, 200, "generates afterwards")
    finally:
        c.eq(srv.stop(), 0, "exit code after SIGTERM")
        shutil.rmtree(d, ignore_errors=True)
    c.finish(srv)


def case_a1111_compat(sdvk):
    """tests/server/a1111_client.py, written from A1111's documentation only,
    run unchanged against sdvk serve."""
    import subprocess
    import tempfile
    c = Checker("server_a1111_compat")
    srv = Server(sdvk)
    try:
        client = os.path.join(os.path.dirname(os.path.abspath(__file__)), "a1111_client.py")
        out = tempfile.mkdtemp(prefix="sdvk-a1111-")
        env = dict(os.environ, no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
        p = subprocess.run([sys.executable, client, "http://127.0.0.1:%d" % srv.port, out, "64", "64"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        print(p.stdout.decode(errors="replace"))
        c.eq(p.returncode, 0, "the A1111 client passed")
        import shutil
        shutil.rmtree(out, ignore_errors=True)
    finally:
        c.eq(srv.stop(), 0, "exit code after SIGTERM")
    c.finish(srv)


CASES = {"api": case_api, "img2img": case_img2img, "progress": case_progress,
         "interrupt": case_interrupt, "queue": case_queue, "bad_input": case_bad_input,
         "auth": case_auth, "shutdown": case_shutdown, "a1111_compat": case_a1111_compat,
         "loras": case_loras}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print("usage: test_server.py SDVK_BINARY {%s}" % "|".join(CASES))
        sys.exit(2)
    CASES[sys.argv[2]](sys.argv[1])
