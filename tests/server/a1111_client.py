#!/usr/bin/env python3
"""An AUTOMATIC1111 web UI API client written only from A1111's public API
documentation, not from sdvk's code:

  - the A1111 wiki page "API" (github.com/AUTOMATIC1111/stable-diffusion-webui/wiki/API):
    the txt2img payload ("I can put in as few or as many parameters as I want";
    defaults for the rest), the response's three entries `images` (base64),
    `parameters` and `info` (a JSON string whose `infotexts` hold the PNG
    text), decoding with base64.b64decode(i.split(",", 1)[0]), the
    /sdapi/v1/png-info endpoint fed with "data:image/png;base64," + image,
    and `override_settings` (e.g. "CLIP_stop_at_last_layers") with
    `override_settings_restore_afterwards`;
  - the example script the wiki links ("txt2img and img2img example python
    script"): urllib.request only, a call_api() helper posting JSON,
    init_images as a list of base64-encoded files, denoising_strength,
    batch_size, decoding and saving each returned image;
  - the interactive schema at /docs of an A1111 instance (FastAPI/OpenAPI):
    StableDiffusionProcessingTxt2Img / Img2Img fields (sampler_name, steps,
    cfg_scale, seed, width, height, n_iter, batch_size, mask, mask_blur,
    inpainting_fill), ProgressResponse {progress, eta_relative, state,
    current_image}, SamplerItem {name, aliases, options}, SDModelItem {title,
    model_name, hash, sha256, filename, config}, GET/POST /sdapi/v1/options,
    POST /sdapi/v1/interrupt.

Nothing here knows it talks to sdvk: run it against any A1111-compatible
server. Usage: a1111_client.py BASE_URL OUT_DIR [WIDTH HEIGHT]
(64x64 suits the sdvk demo model; an A1111 server takes it too)."""
import base64
import json
import os
import sys
import threading
import time
import urllib.request

BASE = sys.argv[1].rstrip("/")
OUT = sys.argv[2]
W = int(sys.argv[3]) if len(sys.argv) > 3 else 512
H = int(sys.argv[4]) if len(sys.argv) > 4 else 512
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def call_api(api_endpoint, method="POST", **payload):
    data = json.dumps(payload).encode("utf-8") if method == "POST" else None
    request = urllib.request.Request(
        f"{BASE}/{api_endpoint}",
        headers={"Content-Type": "application/json"},
        data=data,
        method=method,
    )
    response = urllib.request.urlopen(request, timeout=300)
    return json.loads(response.read().decode("utf-8"))


def encode_file_to_base64(path):
    with open(path, "rb") as file:
        return base64.b64encode(file.read()).decode("utf-8")


def decode_and_save_base64(base64_str, save_path):
    with open(save_path, "wb") as file:
        file.write(base64.b64decode(base64_str))


def main():
    os.makedirs(OUT, exist_ok=True)

    # what the server has
    models = call_api("sdapi/v1/sd-models", method="GET")
    check(isinstance(models, list) and len(models) >= 1, "sd-models lists a model")
    check(all(k in models[0] for k in ("title", "model_name", "hash", "sha256", "filename", "config")),
          "SDModelItem fields")
    samplers = call_api("sdapi/v1/samplers", method="GET")
    names = [s["name"] for s in samplers]
    check("Euler a" in names and "Euler" in names, "samplers include Euler and Euler a")
    check(all(isinstance(s["aliases"], list) and isinstance(s["options"], dict) for s in samplers),
          "SamplerItem fields")
    options = call_api("sdapi/v1/options", method="GET")
    check("sd_model_checkpoint" in options, "options have sd_model_checkpoint")

    # txt2img, as in the wiki
    payload = {
        "prompt": "a red circle on a blue background",
        "negative_prompt": "",
        "seed": 1,
        "steps": 20,
        "width": W,
        "height": H,
        "cfg_scale": 7,
        "sampler_name": "DPM++ 2M",
        "n_iter": 1,
        "batch_size": 1,
        "override_settings": {
            "sd_model_checkpoint": models[0]["title"],
            "CLIP_stop_at_last_layers": 1,
        },
        "override_settings_restore_afterwards": True,
    }
    r = call_api("sdapi/v1/txt2img", **payload)
    check(set(r) >= {"images", "parameters", "info"}, "txt2img answers images, parameters, info")
    saved = []
    for index, image in enumerate(r["images"]):
        path = os.path.join(OUT, f"txt2img-{index}.png")
        decode_and_save_base64(image.split(",", 1)[0], path)
        saved.append(path)
        with open(path, "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", f"txt2img image {index} is a PNG")
    check(len(saved) == 1, "one image")
    info = json.loads(r["info"])
    check(info["seed"] == 1 and info["all_seeds"] == [1], "info has the seed")
    check(info["infotexts"][0].startswith(payload["prompt"]), "info has the infotext")
    check(r["parameters"]["prompt"] == payload["prompt"], "parameters echo the request")

    # PNG info, as in the wiki
    png_payload = {"image": "data:image/png;base64," + r["images"][0]}
    r2 = call_api("sdapi/v1/png-info", **png_payload)
    check(r2.get("info") == info["infotexts"][0], "png-info returns the image's parameters")

    # img2img, as in the example script
    init_images = [encode_file_to_base64(saved[0])]
    batch_size = 2
    payload = {
        "prompt": "a green square on a yellow background",
        "seed": 2,
        "steps": 20,
        "width": W,
        "height": H,
        "denoising_strength": 0.5,
        "n_iter": 1,
        "init_images": init_images,
        "batch_size": batch_size if len(init_images) == 1 else len(init_images),
    }
    r = call_api("sdapi/v1/img2img", **payload)
    check(len(r["images"]) == 2, "img2img returns batch_size images")
    for index, image in enumerate(r["images"]):
        decode_and_save_base64(image, os.path.join(OUT, f"img2img-{index}.png"))
    check(json.loads(r["info"])["all_seeds"] == [2, 3], "img2img seeds")

    # inpainting with a mask (fields from the /docs schema)
    mask_payload = dict(payload, mask=init_images[0], mask_blur=4, inpainting_fill=1, batch_size=1)
    r = call_api("sdapi/v1/img2img", **mask_payload)
    check(len(r["images"]) == 1, "inpainting returns an image")

    # progress while a longer job runs, then interrupt it
    box = {}

    def long_job():
        box["r"] = call_api("sdapi/v1/txt2img", prompt="a blue square", steps=150, width=max(W, 256),
                            height=max(H, 256))

    t = threading.Thread(target=long_job)
    t.start()
    seen = []
    shape_ok = True
    t0 = time.time()
    while t.is_alive() and time.time() - t0 < 120:
        p = call_api("sdapi/v1/progress", method="GET")
        shape_ok = shape_ok and 0.0 <= p["progress"] <= 1.0 and "eta_relative" in p and "state" in p
        if p["state"].get("sampling_step", 0) >= 2:
            seen.append(p["state"]["sampling_step"])
            call_api("sdapi/v1/interrupt")
            break
        time.sleep(0.1)
    t.join(120)
    check(shape_ok, "progress responses have progress, eta_relative, state")
    check(bool(seen), "progress showed sampling steps")
    check(not t.is_alive() and "images" in box.get("r", {}), "the interrupted request returned")

    # options round trip
    call_api("sdapi/v1/options", CLIP_stop_at_last_layers=2)
    check(call_api("sdapi/v1/options", method="GET")["CLIP_stop_at_last_layers"] == 2, "options POST")
    call_api("sdapi/v1/options", CLIP_stop_at_last_layers=1)

    print("%d failures" % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
