"""Runs one binary the way a container would and asks its probe endpoints; run inside namespaces.

`binaries.run_isolated` starts this script as
`unshare --net --mount --propagation private python3 netns_run.py` with a JSON request on stdin:

    {"argv": [...], "env": {...}, "cwd": "/tmp/x",
     "mounts": [{"source": "/tmp/x/vol", "target": "/etc/broker"}],
     "probes": [{"kind": "httpGet", "port": 8082, "path": "/readyz", "headers": {}}],
     "timeout": 30}

In its own network namespace nothing but loopback exists, so the binary's dependencies (database,
broker) are unreachable and it cannot disturb anything on the host; in its own mount namespace
the container's volumes are bind-mounted where the container has them. The script brings `lo`
up, mounts, starts the binary, waits for each probe's port, sends the probe (an HTTP GET for
httpGet, a connect for tcpSocket), stops the binary and prints a JSON answer on stdout:

    {"probes": [{"status": 200, "body": "...", "unknown": {"status": 404, "body": ""}}
                | {"exited": 2} | {"error": "..."}],
     "exit": null | int, "log": "...", "created": ["/etc/broker"]}

`unknown` is the answer, on the same port, to a path no server serves (`UNKNOWN_PATH`).

`created` lists the mount points it had to create on the host's file system (they outlive the
namespace as empty directories or files); the caller removes them once every run is over.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Once the binary listens on some ports and that set stays the same this long (seconds), a probe
# port still refused is taken as one it will not open.
SETTLE = 3

# A path no server of ours serves: what it answers is what the binary says to an unknown path.
UNKNOWN_PATH = "/infra-check/no-such-route"


def sh(*argv):
    """Runs a setup command; raises with its output when it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")


def mount_all(mounts, created):
    """Bind-mounts each source on its target, creating missing mount points (recorded)."""
    for mnt in mounts:
        source, target = mnt["source"], mnt["target"]
        missing = []
        parent = target if os.path.isdir(source) else os.path.dirname(target)
        while parent and not os.path.exists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for d in reversed(missing):
            try:
                os.mkdir(d)
                created.append(d)
            except FileExistsError:
                pass  # a run beside this one made it first; that run reports it for removal
        if not os.path.isdir(source) and not os.path.exists(target):
            open(target, "w").close()
            created.append(target)
        sh("mount", "--bind", source, target)


def probe_once(probe, timeout):
    """One probe attempt: {"status": n}, {"refused": msg} (retry) or {"error": msg}."""
    if probe["kind"] == "tcpSocket":
        try:
            socket.create_connection(("127.0.0.1", probe["port"]), timeout=timeout).close()
            return {"status": "connected"}
        except ConnectionRefusedError as err:
            return {"refused": str(err)}
        except OSError as err:
            return {"error": str(err)}
    conn = http.client.HTTPConnection("127.0.0.1", probe["port"], timeout=timeout)
    try:
        conn.request("GET", probe.get("path") or "/", headers=probe.get("headers") or {})
        response = conn.getresponse()
        body = response.read(2048).decode("utf-8", "replace")
        return {"status": response.status, "body": body}
    except ConnectionRefusedError as err:
        return {"refused": str(err)}
    except OSError as err:
        return {"error": f"{type(err).__name__}: {err}"}
    except http.client.HTTPException as err:
        return {"error": f"not an HTTP answer: {type(err).__name__}: {err}"}
    finally:
        conn.close()


def listening_ports():
    """The TCP ports something listens on in this network namespace."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 3 and cols[3] == "0A":  # TCP_LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def wait_and_probe(proc, probe, deadline):
    """Retries a probe while its port is refused, until it answers or there is no point."""
    settled, seen = None, None
    while True:
        result = probe_once(probe, timeout=5)
        if "refused" not in result:
            return result
        if proc.poll() is not None:
            return {"exited": proc.returncode}
        now = time.monotonic()
        ports = listening_ports()
        if ports != seen:
            seen, settled = ports, now
        if ports and now - settled > SETTLE:
            listed = ", ".join(str(p) for p in sorted(ports))
            return {"error": f"nothing listens on port {probe['port']}: the binary listens on "
                             f"{listed} (unchanged for {SETTLE} s)"}
        if now > deadline:
            return {"error": f"nothing listened on port {probe['port']} within the start "
                             "timeout (connection refused)"}
        time.sleep(0.1)


def run(request, created):
    """Starts the binary, probes it, stops it; returns the answer."""
    answer = {"probes": [], "exit": None, "log": "", "created": created}
    sh("ip", "link", "set", "lo", "up")
    mount_all(request.get("mounts") or [], created)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        request["argv"],
        env=request["env"],
        cwd=request["cwd"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + request.get("timeout", 30)
    try:
        for probe in request["probes"]:
            result = wait_and_probe(proc, probe, deadline)
            if probe["kind"] == "httpGet" and "status" in result:
                unknown = dict(probe, path=UNKNOWN_PATH)
                result["unknown"] = probe_once(unknown, timeout=5)
            answer["probes"].append(result)
    finally:
        answer["exit"] = proc.poll()
        stop(proc)
        log.seek(0)
        answer["log"] = log.read()[-3000:].decode("utf-8", "replace")
    return answer


def stop(proc):
    """SIGTERM, then SIGKILL after 5 s, to the binary's whole process group."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def main():
    request = json.load(sys.stdin)
    created = []
    try:
        answer = run(request, created)
    except (OSError, RuntimeError) as err:
        answer = {"setup_error": str(err), "probes": [], "created": created}
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
