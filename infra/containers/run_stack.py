#!/usr/bin/env python3
"""Runs the bank from its rendered Kubernetes manifests on a Docker engine, then proves it works.

The closest run to a cluster these machines allow (no Kubernetes API server can be installed):

1. render an overlay with `kubectl kustomize` and derive every pod's container (manifests.py);
2. start each on a user-defined Docker network with exactly that image, command, args, env,
   ports, security context, limits and volumes, its Service names as network aliases, and the
   published ports the console, the APIs and the broker monitor need;
3. wait until every readiness probe passes, asking each the way the kubelet would (an HTTP GET
   inside the container through its `healthcheck` binary, or the probe's command);
4. check the broker's authorization: each service's NATS user is refused when it publishes on
   another service's subjects (and the load generator on any);
5. run the load image (`load --check`) inside the network, as the load-generator Job would,
   kill (SIGKILL) an account-service container mid-load and start it again, and require every
   ordering invariant to hold;
6. check that the statement service's statements end where the account service's balances do;
7. stop every pod the way the kubelet does (preStop, then SIGTERM, SIGKILL after the grace
   period) and remove what it made, unless `--keep`.

Usage: python3 infra/containers/run_stack.py [--overlay infra/k8s/base] [--transactions N]
Needs: a Docker engine, kubectl (for kustomize), the images (infra/offline/build.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifests import ManifestError, Pod, pods, render  # noqa: E402

DOCKER = os.environ.get("DOCKER", "docker")
READY_TIMEOUT = 180
LOAD_TIMEOUT = 600
# Containers whose ports are published on loopback, for a user (or this script) to reach.
PUBLISHED = {"console": ["http"], "account-service": ["http"],
             "transaction-service": ["http"], "statement-service": ["http"],
             "broker": ["monitor", "client"]}
# How long the statements may lag behind the accounts after the load.
STATEMENT_TIMEOUT = 60


def log(message: str) -> None:
    print(f"[run-stack {time.strftime('%H:%M:%S')}] {message}", flush=True)


def docker(*args: str, check: bool = True, capture: bool = True) -> str:
    out = subprocess.run([DOCKER, *args], capture_output=capture, text=True, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}…: {out.stderr.strip()}")
    return out.stdout if capture else ""


class Stack:
    """The containers of one run, on a network of their own."""

    def __init__(self, run_id: str, pods_: list[Pod], workdir: Path):
        self.run_id = run_id
        self.network = f"bank-{run_id}"
        self.pods = pods_
        self.workdir = workdir
        self.volumes: list[str] = []

    def container(self, pod: Pod) -> str:
        return f"{self.run_id}-{pod.name}"

    def create_network(self) -> None:
        docker("network", "create", self.network)

    def run(self, pod: Pod) -> None:
        """`docker run` with exactly what the manifest says."""
        args = ["run", "-d", "--name", self.container(pod), "--hostname", pod.name,
                "--network", self.network]
        for alias in pod.aliases:
            args += ["--network-alias", alias]
        for key, value in pod.env.items():
            args += ["-e", f"{key}={value}"]
        if pod.user:
            args += ["--user", pod.user]
        if pod.fs_group is not None:
            args += ["--group-add", str(pod.fs_group)]
        if pod.read_only_root:
            args.append("--read-only")
        for cap in pod.cap_drop:
            args += ["--cap-drop", cap]
        for cap in pod.cap_add:
            args += ["--cap-add", cap]
        if pod.no_new_privileges:
            args += ["--security-opt", "no-new-privileges"]
        if pod.memory:
            args += ["--memory", pod.memory]
        if pod.cpus:
            args += ["--cpus", pod.cpus]
        for published in PUBLISHED.get(pod.workload, []):
            if published in pod.ports:
                args += ["-p", f"127.0.0.1::{pod.ports[published]}"]
        for mount in pod.mounts:
            args += self.mount_args(pod, mount)
        if pod.command:
            args += ["--entrypoint", pod.command[0]]
        args.append(pod.image)
        args += pod.command[1:] + pod.args
        docker(*args)

    def mount_args(self, pod: Pod, mount) -> list[str]:
        if mount.kind == "tmpfs":
            return ["--tmpfs", f"{mount.target}:mode=1777"]
        if mount.kind == "config":
            directory = self.workdir / pod.name / mount.target.strip("/").replace("/", "_")
            directory.mkdir(parents=True, exist_ok=True)
            for path, data in mount.files.items():
                file = directory / path
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(data)
                file.chmod(0o644)
            directory.chmod(0o755)
            return ["-v", f"{directory}:{mount.target}:ro"]
        volume = f"{self.run_id}-{mount.claim}"
        if volume not in self.volumes:
            docker("volume", "create", volume)
            self.volumes.append(volume)
            if pod.fs_group is not None or pod.user:
                # What fsGroup does on a cluster: the claim is writable by the pod's group.
                owner = (pod.user or "0").split(":")[0]
                group = pod.fs_group if pod.fs_group is not None else owner
                docker("run", "--rm", "--user", "0", "-v", f"{volume}:/claim",
                       "--entrypoint", "chown", pod.image, f"{owner}:{group}", "/claim")
        return ["-v", f"{volume}:{mount.target}"]

    def probe(self, pod: Pod, probe) -> bool:
        out = subprocess.run([DOCKER, "exec", self.container(pod), *probe.docker_exec_args()],
                             capture_output=True, text=True, check=False)
        return out.returncode == 0

    def running(self, pod: Pod) -> bool:
        state = docker("inspect", "-f", "{{.State.Running}}", self.container(pod), check=False)
        return state.strip() == "true"

    def wait_ready(self, selected: list[Pod], timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(selected)
        while waiting:
            for pod in list(waiting):
                if not self.running(pod):
                    raise RuntimeError(f"{pod.name} exited:\n{self.logs(pod)}")
                if pod.readiness is None or self.probe(pod, pod.readiness):
                    if pod.liveness and not self.probe(pod, pod.liveness):
                        raise RuntimeError(f"{pod.name}: ready but its liveness probe fails")
                    waiting.remove(pod)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(p.name for p in waiting)
                logs = "\n".join(f"--- {p.name}\n{self.logs(p)}" for p in waiting)
                raise RuntimeError(f"not ready within {timeout}s: {names}\n{logs}")
            time.sleep(0.5)

    def logs(self, pod: Pod, tail: int = 40) -> str:
        out = subprocess.run([DOCKER, "logs", "--tail", str(tail), self.container(pod)],
                             capture_output=True, text=True, check=False)
        return (out.stdout + out.stderr).strip()

    def host_port(self, pod: Pod, port: int) -> int:
        mapping = docker("port", self.container(pod), f"{port}/tcp").strip().splitlines()[0]
        return int(mapping.rsplit(":", 1)[1])

    def stop(self, pod: Pod) -> None:
        """The kubelet's stop: the preStop hook, then SIGTERM, SIGKILL after the grace period."""
        if not self.running(pod):
            return
        if pod.pre_stop:
            subprocess.run([DOCKER, "exec", self.container(pod), *pod.pre_stop],
                           capture_output=True, check=False, timeout=pod.grace_seconds)
        docker("stop", "-t", str(pod.grace_seconds), self.container(pod), check=False)

    def remove(self) -> None:
        for pod in self.pods:
            docker("rm", "-f", self.container(pod), check=False)
        docker("rm", "-f", f"{self.run_id}-load", check=False)
        for volume in self.volumes:
            docker("volume", "rm", "-f", volume, check=False)
        docker("network", "rm", self.network, check=False)


def by_workload(all_pods: list[Pod], workload: str) -> list[Pod]:
    return [p for p in all_pods if p.workload == workload]


def check_security(stack: Stack) -> None:
    """Every pod that asks for a non-root user really runs as one."""
    for pod in stack.pods:
        if not pod.run_as_non_root:
            continue
        user = docker("inspect", "-f", "{{.Config.User}}", stack.container(pod)).strip()
        uid = user.split(":")[0]
        if uid in ("", "0", "root"):
            raise RuntimeError(f"{pod.name}: runAsNonRoot, but it runs as {user or 'root'}")


def check_published(stack: Stack) -> None:
    """The console page, the APIs' /readyz and the broker's /healthz, from the host."""
    checks = {"console": "/", "account-service": "/readyz",
              "transaction-service": "/readyz", "statement-service": "/readyz",
              "broker": "/healthz"}
    for workload, path in checks.items():
        pod = by_workload(stack.pods, workload)[0]
        port = stack.host_port(pod, pod.ports[PUBLISHED[workload][0]])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            if response.status != 200:
                raise RuntimeError(f"{workload} {path} on host port {port}: {response.status}")
        log(f"{workload}: {path} answers 200 on 127.0.0.1:{port}")


def get_json(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.load(response)


def check_statements(stack: Stack, sample: int = 5) -> None:
    """The statement service projected the load: for a few accounts, its statement ends at the
    account service's last_transaction_number and balance (within STATEMENT_TIMEOUT)."""
    account = by_workload(stack.pods, "account-service")[0]
    statement = by_workload(stack.pods, "statement-service")[0]
    account_port = stack.host_port(account, account.ports["http"])
    statement_port = stack.host_port(statement, statement.ports["http"])
    accounts = get_json(account_port, f"/api/accounts?limit={sample}")["items"]
    if not accounts:
        raise RuntimeError("the account service lists no account after the load")
    deadline = time.monotonic() + STATEMENT_TIMEOUT
    for acc in accounts:
        expected = (acc["last_transaction_number"], acc["balance"])
        while True:
            try:
                answer = get_json(statement_port, f"/api/accounts/{acc['id']}/statement?limit=1")
                got = (answer["last_transaction_number"], answer["balance"])
            except urllib.error.HTTPError as err:
                got = f"HTTP {err.code}"
            if got == expected:
                break
            if time.monotonic() > deadline:
                logs = "\n".join(stack.logs(p) for p in by_workload(stack.pods,
                                                                      "statement-service"))
                raise RuntimeError(f"statement of {acc['id']}: {got}, the account service says "
                                   f"{expected}:\n{logs}")
            time.sleep(0.5)
    log(f"statement-service: {len(accounts)} statements end at the accounts' numbers and "
        "balances")
    console = by_workload(stack.pods, "console")[0]
    console_port = stack.host_port(console, console.ports["http"])
    acc = accounts[0]
    through = get_json(console_port, f"/api/accounts/{acc['id']}/statement?limit=1")
    if through.get("last_transaction_number") != acc["last_transaction_number"]:
        raise RuntimeError(f"the console's statement of {acc['id']}: {through}")
    log("console: its statement view reaches the statement service")


def check_console(stack: Stack) -> None:
    """The console follows both streams and the decision notes under its own broker user, shows
    the load in its timeline, and its broker panel shows the services' consumers."""
    pod = by_workload(stack.pods, "console")[0]
    port = stack.host_port(pod, pod.ports["http"])
    deadline = time.monotonic() + 30
    while True:
        ready = get_json(port, "/readyz")
        if ready.get("timeline_sources") == 3:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the console follows {ready} sources, not 3:\n{stack.logs(pod)}")
        time.sleep(0.5)
    items = get_json(port, "/api/timeline")["items"]
    if not items:
        raise RuntimeError("the console's timeline is empty after the load")
    panel = json.dumps(get_json(port, "/api/broker?fresh=true"))
    for consumer in ("account-service", "transaction-service-accounts",
                     "statement-service-applied"):
        if consumer not in panel:
            raise RuntimeError(f"the console's broker panel lacks {consumer}: {panel[:500]}")
    log(f"console: timeline follows 3 sources, {len(items)} recent entries, panel shows the "
        "services' consumers")


def nats_exchange(port: int, user: str, password: str, lines: list[str]) -> str:
    """Connects as `user`, sends `lines` then PING, and returns what came back up to PONG."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.settimeout(5)
        received = b""
        while b"\r\n" not in received:
            received += conn.recv(4096)
        connect = json.dumps({"user": user, "pass": password, "verbose": False,
                              "pedantic": False, "protocol": 1})
        payload = f"CONNECT {connect}\r\n" + "".join(lines) + "PING\r\n"
        conn.sendall(payload.encode())
        received = b""
        while b"PONG" not in received and b"Authorization Violation" not in received:
            chunk = conn.recv(4096)
            if not chunk:
                break
            received += chunk
        return received.decode(errors="replace")


def check_permissions(stack: Stack) -> None:
    """Each service's user may not publish another's events; the load generator none."""
    broker = by_workload(stack.pods, "broker")[0]
    users = {}
    for pod in stack.pods:
        if "NATS_USER" in pod.env and "NATS_PASSWORD" in pod.env:
            users[pod.env["NATS_USER"]] = pod.env["NATS_PASSWORD"]
    forbidden = {
        "account-service": ["transactions.created"],
        "transaction-service": ["accounts.opened", "transactions.applied",
                                "transactions.rejected"],
        # a reader: no event at all, and no other service's consumer
        "statement-service": ["accounts.opened", "transactions.created", "transactions.applied",
                              "transactions.rejected",
                              "$JS.API.CONSUMER.CREATE.TRANSACTIONS.account-service",
                              "$JS.API.CONSUMER.MSG.NEXT.TRANSACTIONS.account-service",
                              "$JS.API.CONSUMER.DELETE.TRANSACTIONS.statement-service-applied"],
        "console": ["accounts.opened", "transactions.created", "transactions.applied",
                    # the services' consumers: neither changed, deleted nor pulled from, and
                    # the unnamed create (the name in the body) is refused altogether
                    "$JS.API.CONSUMER.CREATE.TRANSACTIONS.account-service",
                    "$JS.API.CONSUMER.CREATE.TRANSACTIONS",
                    "$JS.API.CONSUMER.DELETE.TRANSACTIONS.account-service",
                    "$JS.API.CONSUMER.MSG.NEXT.TRANSACTIONS.account-service",
                    "$JS.API.CONSUMER.MSG.NEXT.TRANSACTIONS.statement-service-applied",
                    "$JS.API.CONSUMER.DELETE.ACCOUNTS.statement-service-opened"],
    }
    port = stack.host_port(broker, broker.ports["client"])
    for user, subjects in forbidden.items():
        if user not in users:
            raise RuntimeError(f"no pod logs in as {user}: is authentication on?")
        for subject in subjects:
            reply = nats_exchange(port, user, users[user], [f"PUB {subject} 2\r\nhi\r\n"])
            if f"Permissions Violation for Publish to \"{subject}\"" not in reply:
                raise RuntimeError(f"{user} published on {subject}: {reply!r}")
            log(f"{user} may not publish on {subject}: refused")
    anonymous = nats_exchange(port, "", "", [])
    if "Authorization Violation" not in anonymous:
        raise RuntimeError(f"an anonymous client was let in: {anonymous!r}")
    log("an anonymous client is refused")


def run_load(stack: Stack, transactions: int, accounts: int) -> None:
    """The load tool in its own image on the network, killing an account replica mid-load."""
    account = by_workload(stack.pods, "account-service")
    transaction = by_workload(stack.pods, "transaction-service")[0]
    console = by_workload(stack.pods, "console")[0]
    load_user = "loadgen"
    password = next((p.env.get("LOADGEN_PASSWORD") for p in stack.pods
                     if "LOADGEN_PASSWORD" in p.env), None)
    if password is None:
        raise RuntimeError("no LOADGEN_PASSWORD on the broker: the loadgen user is missing")
    name = f"{stack.run_id}-load"
    docker("run", "-d", "--name", name, "--network", stack.network, "--user", "65532:65532",
           "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
           "-e", f"ACCOUNT_URL=http://{account[0].aliases[0]}:{account[0].ports['http']}",
           "-e", f"TRANSACTION_URL=http://{transaction.aliases[0]}:{transaction.ports['http']}",
           "-e", f"NATS_URL={console.env['NATS_URL']}",
           "-e", f"NATS_USER={load_user}", "-e", f"NATS_PASSWORD={password}",
           "bank-load", "--accounts", str(accounts), "--transactions", str(transactions),
           "--concurrency", "16", "--check")
    deadline = time.monotonic() + LOAD_TIMEOUT
    while "driving" not in docker("logs", name, check=False, capture=True) + \
            subprocess.run([DOCKER, "logs", name], capture_output=True, text=True).stderr:
        if time.monotonic() > deadline or docker("inspect", "-f", "{{.State.Running}}",
                                                 name).strip() != "true":
            raise RuntimeError(f"the load never started:\n{docker_logs(name)}")
        time.sleep(0.2)
    time.sleep(1.5)
    victim = account[-1]
    log(f"killing {victim.name} (SIGKILL) mid-load")
    docker("kill", "-s", "KILL", stack.container(victim))
    time.sleep(1)
    log(f"starting {victim.name} again, as its Deployment would")
    docker("start", stack.container(victim))
    status = docker("wait", name).strip()
    output = docker_logs(name)
    print(output)
    if status != "0":
        raise RuntimeError(f"the load exited with {status}")
    if "invariants hold" not in output:
        raise RuntimeError("the load did not report the invariants")
    stack.wait_ready([victim])
    log(f"{victim.name} is ready again")


def docker_logs(name: str) -> str:
    out = subprocess.run([DOCKER, "logs", name], capture_output=True, text=True, check=False)
    return (out.stdout + out.stderr).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", default="infra/k8s/base")
    parser.add_argument("--transactions", type=int, default=3000)
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="leave the containers running")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        all_pods = pods(render(Path(args.overlay)))
    except ManifestError as err:
        print(f"run-stack: {err}", file=sys.stderr)
        return 2
    run_id = f"bank{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bank-stack-") as work:
        stack = Stack(run_id, all_pods, Path(work))
        try:
            stack.create_network()
            for pod in all_pods:
                stack.run(pod)
                log(f"{pod.name}: {pod.image} {' '.join(pod.args)} as {pod.aliases}")
            stack.wait_ready(all_pods)
            log(f"all {len(all_pods)} pods ready after {time.monotonic() - started:.1f}s")
            check_security(stack)
            check_published(stack)
            check_permissions(stack)
            run_load(stack, args.transactions, args.accounts)
            check_statements(stack)
            check_console(stack)
            # Clients first, then what they depend on: Deployments, then StatefulSets.
            for pod in sorted(all_pods, key=lambda p: p.kind == "StatefulSet"):
                began = time.monotonic()
                stack.stop(pod)
                log(f"{pod.name} stopped in {time.monotonic() - began:.1f}s")
        except Exception as err:  # noqa: BLE001 - report, clean up, fail
            print(f"run-stack: FAILED: {err}", file=sys.stderr)
            if not args.keep:
                stack.remove()
            return 1
        if not args.keep:
            stack.remove()
    log(f"passed in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
