#!/usr/bin/env python3
"""Bounded load test of `sdvk serve` (ctest server_load): 4 clients x 25
requests with the demo model, then it stops by itself.

Asserts: nothing is lost (every request gets a picture or a clear error,
and here, with a queue longer than the number of clients, a picture); the
pictures for the one fixed seed are byte-identical across all requests and
clients; the server's RSS after the run is within 10 % of its RSS after the
first request; /metrics agrees with the count; the server exits 0 on
SIGTERM (under ASan: no leaks).

python3 load_test.py SDVK_BINARY [CLIENTS REQUESTS]"""
import hashlib
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sdvk_test_server import Checker, Server  # noqa: E402

BODY = {"prompt": "a yellow triangle on a purple background", "steps": 10, "seed": 1234,
        "width": 64, "height": 64, "sampler_name": "DPM++ 2M", "scheduler": "Karras"}


def main():
    sdvk = sys.argv[1]
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    per_client = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    c = Checker("server_load")
    # ASan keeps freed memory in quarantines (256 MB global, 1 MB per thread,
    # and libmicrohttpd makes a thread per connection), which reads as growth
    # until they are full: off for this server only (the other server tests
    # keep them for use-after-free detection; LeakSanitizer still runs at exit).
    env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
           ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"}
    srv = Server(sdvk, "--queue", str(clients * 2), env=env)
    try:
        st, _, first = srv.post("/sdapi/v1/txt2img", BODY)
        c.eq(st, 200, "first request")
        ref = hashlib.sha256(first["images"][0].encode()).hexdigest()
        rss_first = srv.rss_kb()

        results = [[] for _ in range(clients)]
        t0 = time.time()

        def client(k):
            for _ in range(per_client):
                try:
                    st, h, r = srv.post("/sdapi/v1/txt2img", BODY, timeout=300)
                except Exception as e:  # a lost request: no answer at all
                    results[k].append(("lost", repr(e)))
                    continue
                if st == 200 and isinstance(r, dict) and len(r.get("images", [])) == 1:
                    seed = json.loads(r["info"])["seed"]
                    results[k].append(("image", hashlib.sha256(r["images"][0].encode()).hexdigest(), seed))
                elif isinstance(r, dict) and "detail" in r:
                    results[k].append(("error", st, r["detail"]))
                else:
                    results[k].append(("unclear", st, str(r)[:200]))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        dt = time.time() - t0
        c.ok(not any(t.is_alive() for t in threads), "every client finished")
        flat = [r for rs in results for r in rs]
        n = clients * per_client
        kinds = {}
        for r in flat:
            kinds[r[0]] = kinds.get(r[0], 0) + 1
        print("load: %d requests in %.1f s (%.1f/s): %r" % (len(flat), dt, len(flat) / dt, kinds))
        c.eq(len(flat), n, "every request answered")
        c.eq(kinds.get("lost", 0) + kinds.get("unclear", 0), 0, "no lost or unclear answers")
        c.eq(kinds.get("image", 0), n, "every request got its picture (queue > clients)")
        hashes = {r[1] for r in flat if r[0] == "image"}
        c.eq(hashes, {ref}, "the fixed seed gives identical pictures everywhere")
        c.eq({r[2] for r in flat if r[0] == "image"}, {1234}, "seed reported")

        rss_end = srv.rss_kb()
        growth = (rss_end - rss_first) / rss_first
        print("load: RSS after the first request %d KiB, after the run %d KiB (%+.1f %%)" %
              (rss_first, rss_end, growth * 100))
        c.ok(abs(growth) <= 0.10, "RSS within 10 %% of after the first request (%+.1f %%)" % (growth * 100))

        _, _, m = srv.get("/metrics")
        lines = dict(l.rsplit(" ", 1) for l in m.decode().splitlines() if l and not l.startswith("#"))
        c.eq(int(lines["sdvk_images_total"]), n + 1, "metrics: images")
        c.eq(int(lines['sdvk_jobs_total{result="ok"}']), n + 1, "metrics: jobs ok")
        c.eq(int(lines["sdvk_queue_length"]), 0, "metrics: queue empty")
        c.ok(float(lines["sdvk_seconds_per_step"]) > 0, "metrics: seconds per step")
    finally:
        c.eq(srv.stop(), 0, "exit code after SIGTERM")
    c.finish(srv)


if __name__ == "__main__":
    main()
