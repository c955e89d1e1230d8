"""bench/isolation.sh: the cost of a run's own process, and a service run against the CLI."""
import json, os, statistics, subprocess, sys, tempfile, time, urllib.request, uuid

BIN = sys.argv[1]

def ms(f, n):
    times = []
    for _ in range(n):
        t = time.perf_counter(); f(); times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times)

spec = json.dumps({"schema": 0}).encode()
def start():
    p = subprocess.run([BIN, "run-job"], input=spec, capture_output=True, env={"PATH": os.environ["PATH"]})
    assert p.returncode == 2, p.stderr
print("| what | median | fastest |\n|---|---:|---:|")
print("| start `run-job`, hand it a spec, read and check it (50 starts) | %.1f ms | %.1f ms |" % ms(start, 50))

with tempfile.TemporaryDirectory() as tmp:
    def cli():
        subprocess.run([BIN, "agent", "--llm", "off", "--out", os.path.join(tmp, "cli")], check=True, capture_output=True)
    print("| the sample on the command line (`agent --llm off --out`, 10 runs) | %.0f ms | %.0f ms |" % ms(cli, 10))
    svc = subprocess.Popen([BIN, "serve", "--bind", "127.0.0.1:0", "--data-dir", os.path.join(tmp, "data")], stderr=subprocess.PIPE, text=True)
    base = svc.stderr.readline().split()[3]
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="sample"\r\n\r\ntrue\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="llm"\r\n\r\nrules\r\n--{boundary}--\r\n').encode()
    def service():
        req = urllib.request.Request(base + "/v1/runs", data=body, method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        rid = json.load(urllib.request.urlopen(req))["id"]
        while True:
            run = json.load(urllib.request.urlopen(f"{base}/v1/runs/{rid}"))["run"]
            if run["status"] in ("done", "failed"):
                assert run["status"] == "done", run
                return
            time.sleep(0.005)
    print("| the sample through the service, upload to done (10 runs) | %.0f ms | %.0f ms |" % ms(service, 10))
    svc.terminate(); svc.wait(timeout=30)
