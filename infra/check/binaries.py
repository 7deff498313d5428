"""The project's binaries, as the checks ask them: what they read and what they serve.

- `Binaries` finds (and, in a Cargo workspace, builds with `cargo build`) the host binary of each
  image target, and reads the environment variables it accepts from its `--help`
  (`[env: NAME=]`, or `[env: NAME]` for hidden values, printed by clap for each flag with one).
- `check_probe_paths` starts each of our containers' binaries on the host, with the container's
  args, env and volumes, inside a network and mount namespace of its own (`netns_run.py`, as root),
  and sends each probe: an httpGet probe passes unless nothing listens on the port, the answer is
  404, or the answer is exactly (status and body) what the binary answers to a path no server
  serves (a service still starting answers every path but its own /healthz and /readyz with the
  same 503 "starting"); a tcpSocket probe passes when the port accepts. The databases and the
  broker are unreachable in there, which is fine: the services bind HTTP first and answer
  /healthz 200 and /readyz 503 while they retry. Third-party images are not run (a note says so).
  The image's ENTRYPOINT, CMD, ENV and WORKDIR come from its Dockerfile stage.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import manifests as m

HERE = Path(__file__).resolve().parent
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Dockerfile target -> (Cargo package, binary): what each image runs.
TARGET_BINARIES = {
    "broker": ("broker", "broker"),
    "account-service": ("account", "account-service"),
    "transaction-service": ("transaction", "transaction-service"),
    "statement-service": ("statement", "statement-service"),
    "console": ("console", "console"),
    "load": ("e2e-tests", "load"),
}

# Held while binaries run, so that two check runs on one machine take turns.
LOCK_FILE = Path(tempfile.gettempdir()) / "infra-check-probe-paths.lock"

# How long a binary gets to listen on a probe's port.
START_TIMEOUT = 30


class Binaries:
    """Host builds of the binaries, from `bin_dir` or built by cargo in the workspace at `root`."""

    def __init__(self, root: Path, bin_dir: Path | None):
        self.root = root
        self.bin_dir = bin_dir
        self.errors: list[str] = []
        self._build_failed = False
        self._built = False
        self.build_note: str | None = None
        self.stale: list[str] = []
        self._newest: tuple[float, str] | None | bool = False
        self._env: dict[str, set | None] = {}

    def directory(self) -> Path:
        """Where the binaries are: --binaries, else the workspace's debug target directory."""
        if self.bin_dir is not None:
            return self.bin_dir
        target = os.environ.get("CARGO_TARGET_DIR")
        return Path(target) / "debug" if target else self.root / "target" / "debug"

    def build(self, names: set[str]) -> None:
        """Builds the binaries `names` (once), unless --binaries points at prebuilt ones."""
        if self._built or self.bin_dir is not None or not names:
            return
        self._built = True
        if not (self.root / "Cargo.toml").is_file():
            self.errors.append(f"{self.root} is not a Cargo workspace: pass --binaries DIR")
            self._build_failed = True
            return
        cmd = ["cargo", "build", "--quiet"]
        for package, binary in TARGET_BINARIES.values():
            if binary in names:
                cmd += ["-p", package, "--bin", binary]
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, check=False)
        self.build_note = f"`{' '.join(cmd)}` took {time.monotonic() - started:.1f}s"
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            self.errors.append(f"`{' '.join(cmd)}` failed:\n{tail}")
            self._build_failed = True

    def path(self, name: str) -> Path | None:
        """The binary's path, or None (with the reason in `errors`)."""
        p = self.directory() / name
        if p.is_file() and os.access(p, os.X_OK):
            newer = self.newest_source()
            if self.bin_dir is not None and newer and newer[0] > p.stat().st_mtime:
                note = (f"{p} is older than {newer[1]}: with --binaries, rebuild first or the "
                        "answers may be stale")
                if note not in self.stale:
                    self.stale.append(note)
            return p
        message = f"binary {name} not found at {p}"
        if not self._build_failed and message not in self.errors:
            self.errors.append(message)
        return None

    def newest_source(self) -> tuple[float, str] | None:
        """(mtime, path) of the workspace's most recently changed Rust source or manifest."""
        if self._newest is False:
            self._newest = None
            if (self.root / "Cargo.toml").is_file():
                for dirpath, dirnames, filenames in os.walk(self.root):
                    dirnames[:] = [d for d in dirnames if d not in ("target", ".git", "infra")]
                    for f in filenames:
                        if f.endswith(".rs") or f in ("Cargo.toml", "Cargo.lock"):
                            path = os.path.join(dirpath, f)
                            mtime = os.stat(path).st_mtime
                            if self._newest is None or mtime > self._newest[0]:
                                rel = os.path.relpath(path, self.root)
                                self._newest = (mtime, rel)
        return self._newest

    def env_vars(self, name: str) -> set | None:
        """The variables `<name> --help` lists as `[env: NAME=]`; None if it cannot be run."""
        if name not in self._env:
            p = self.path(name)
            if p is None:
                self._env[name] = None
            else:
                # A clean environment, so clap prints no values (`[env: NAME=]`); with
                # hide_env_values it prints `[env: NAME]`.
                proc = subprocess.run([str(p), "--help"], capture_output=True, text=True,
                                      check=False, timeout=30, env={"PATH": os.defpath})
                text = proc.stdout + proc.stderr
                names = re.findall(r"\[env:\s*([A-Za-z_][A-Za-z0-9_]*)[=\]]", text)
                self._env[name] = set(names)
        return self._env[name]


def check_probe_paths(ctx) -> list[tuple[str, str]]:
    """Probe paths and ports our binaries do not serve, per render."""
    with tempfile.TemporaryDirectory(prefix="infra-check-") as scratch:
        runs, failures = plan_runs(ctx, Path(scratch))
        if not runs:
            return failures
        if os.geteuid() != 0:
            return failures + [("-", "probe paths need root (unshare --net --mount): run as root")]
        # One check run at a time on a machine: a run removes the mount points it created on
        # the host, which must not pull them from under another run's namespaces.
        with open(LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
                answers = list(pool.map(run_isolated, [req for req, _ in runs.values()]))
            remove_created([p for a in answers for p in a.get("created") or []])
    for (request, users), answer in zip(runs.values(), answers):
        for render, label, probe_labels in users:
            for message in judge(request, answer, probe_labels):
                failures.append((render, f"{label}: {message}"))
            if ctx.verbose:
                got = ", ".join(f"{p} -> {r.get('status', r.get('error', r.get('exited')))}"
                                for p, r in zip(probe_labels, answer.get("probes") or []))
                ctx.note("probe-paths", render, f"{label}: ran `{shown(request)}`: {got}")
    return failures


def plan_runs(ctx, scratch: Path):
    """The runs to make, {key: (request, [(render, label, probe labels)])} with identical
    containers (the base's, in every overlay) run once, and the containers that cannot run."""
    runs, failures, count = {}, [], 0
    for r in ctx.renders:
        for res, spec in m.pod_specs(r.resources):
            for c in m.containers(spec):
                count += 1
                plan = plan_run(ctx, r, res, spec, c, scratch / f"run{count}")
                label = f"{m.ref(res)} container {c.get('name')}"
                if isinstance(plan, str):
                    failures.append((r.name, f"{label}: {plan}"))
                elif plan is not None:
                    request, labels = plan
                    key = json.dumps(request_key(request), sort_keys=True)
                    runs.setdefault(key, (request, []))[1].append((r.name, label, labels))
    return runs, failures


def request_key(request: dict) -> dict:
    """A run request with its scratch paths replaced by what they hold, so identical
    containers run once."""
    key = dict(request)
    key["mounts"] = [(mnt["target"], tree(Path(mnt["source"]))) for mnt in request["mounts"]]
    key["argv"] = [Path(a).name if i == 0 else a for i, a in enumerate(request["argv"])]
    key.pop("cwd")  # a scratch directory where the image's is /; "workdir" stays
    return key


def tree(path: Path) -> dict | str:
    """A scratch file's text, or a directory's files and their texts."""
    if path.is_file():
        return path.read_text(errors="replace")
    return {str(p.relative_to(path)): p.read_text(errors="replace")
            for p in sorted(path.rglob("*")) if p.is_file()}


def plan_run(ctx, render, res, spec, c, scratch: Path):
    """The netns_run request for one container and a label per probe; None to skip it; a
    message when it cannot be run."""
    binary = ctx.binary_for(c)
    handlers = [(where, h, m.probe_port(h)) for where, h in m.probes(c)]
    handlers = [(w, h, kp) for w, h, kp in handlers if kp and kp[0] in ("httpGet", "tcpSocket")]
    if not handlers:
        return None
    if binary is None:
        ctx.note("probe-paths", render.name, f"{m.ref(res)} container {c.get('name')}: image "
                 f"{c.get('image')} is not built here, its probes are not run")
        return None
    path = ctx.binaries.path(binary)
    probes, labels = probe_requests(c, handlers)
    if path is None or not probes:
        return None
    image = ctx.image_config(c, binary)
    env = dict(image["env"])
    env.update(container_env(render.resources, res, c))
    if c.get("command"):
        argv = list(c["command"]) + list(c.get("args") or [])
    else:
        argv = image["entrypoint"] + list(c["args"] if "args" in c else image["cmd"])
    argv = [expand(a, env) for a in argv]
    if not argv or Path(argv[0]).name != binary:
        return f"runs {argv[:3]}, not {binary}: its probes cannot be run (start {binary} itself)"
    argv[0] = str(path)
    scratch.mkdir(parents=True)
    mounts = volume_mounts(render.resources, res, spec, c, scratch)
    workdir = cwd = c.get("workingDir") or image["workdir"]
    (scratch / "workdir").mkdir()
    if workdir == "/":
        cwd = str(scratch / "workdir")  # the host's / is not the image's
    elif workdir not in (mnt["target"] for mnt in mounts):
        mounts.append({"source": str(scratch / "workdir"), "target": workdir})
    request = {"argv": argv, "env": env, "cwd": cwd, "workdir": workdir, "mounts": mounts,
               "probes": probes, "timeout": START_TIMEOUT}
    return request, labels


def probe_requests(c: dict, handlers: list) -> tuple[list[dict], list[str]]:
    """What netns_run sends for each probe whose port resolves, and a label for each."""
    probes, labels = [], []
    for where, handler, (kind, port) in handlers:
        number = m.resolve_port(c, port)
        if number is None:
            continue  # probe-ports reports it
        body = handler[kind]
        headers = {h["name"]: h.get("value", "") for h in body.get("httpHeaders") or []}
        probes.append({"kind": kind, "port": number, "path": body.get("path"),
                       "headers": headers})
        labels.append(f"{where} {kind} {body.get('path', '')} on port {port!r}".replace("  ", " "))
    return probes, labels


def container_env(resources: list, res: dict, c: dict) -> dict:
    """The environment Kubernetes would give the container (valueFrom resolved from the render)."""
    pod = f"{(res.get('metadata') or {}).get('name', 'pod')}-0"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOSTNAME": pod, "HOME": "/tmp"}
    for src in c.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in src:
                for k, v in m.text_data(m.find(resources, kind, src[key].get("name"))).items():
                    env[prefix + k] = v
    fields = {"metadata.name": pod, "metadata.namespace": "default", "status.podIP": "127.0.0.1",
              "status.hostIP": "127.0.0.1", "spec.nodeName": "node", "spec.serviceAccountName":
              "default"}
    for e in c.get("env") or []:
        name, value_from = e.get("name"), e.get("valueFrom") or {}
        if "value" in e or not value_from:
            env[name] = expand(str(e.get("value", "")), env)
        elif "fieldRef" in value_from:
            env[name] = fields.get(value_from["fieldRef"].get("fieldPath"), "")
        elif "resourceFieldRef" in value_from:
            env[name] = "1"
        else:
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if key in value_from:
                    data = m.text_data(m.find(resources, kind, value_from[key].get("name")))
                    env[name] = data.get(value_from[key].get("key"), "")
    return env


def expand(text: str, env: dict) -> str:
    """Kubernetes' `$(VAR)` expansion in args and values (`$$` escapes)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda mt: "$" if mt.group(0) == "$$" else env.get(mt.group(1), mt.group(0)),
                  text)


def volume_mounts(resources, res, spec, c, scratch: Path) -> list[dict]:
    """Each volumeMount as a scratch directory with the volume's files, to bind on its path."""
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    mounts = []
    for i, vm in enumerate(c.get("volumeMounts") or []):
        d = scratch / f"vol{i}"
        d.mkdir()
        vol = volumes.get(vm.get("name")) or {}
        for rel, content in volume_files(resources, vol).items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_text(content)
        source = d / vm["subPath"] if vm.get("subPath") else d
        if vm.get("subPath") and not source.exists():
            source.mkdir(parents=True)
        mounts.append({"source": str(source), "target": vm["mountPath"]})
    return mounts


def volume_files(resources: list, vol: dict) -> dict:
    """The files (relative path -> text) a configMap, secret or projected volume holds."""
    sources = [vol] + list((vol.get("projected") or {}).get("sources") or [])
    files = {}
    for src in sources:
        if "configMap" in src:
            ref, data = src["configMap"], m.text_data(
                m.find(resources, "ConfigMap", src["configMap"].get("name")))
        elif "secret" in src:
            ref = src["secret"]
            name = ref.get("secretName") or ref.get("name")
            data = m.text_data(m.find(resources, "Secret", name))
        else:
            continue
        items = ref.get("items")
        if items:
            files.update({it["path"]: data.get(it["key"], "") for it in items})
        else:
            files.update(data)
    return files


def run_isolated(request: dict) -> dict:
    """Runs netns_run.py on `request` in fresh network and mount namespaces."""
    if shutil.which("unshare") is None:
        return {"setup_error": "unshare (util-linux) is not installed"}
    cmd = ["unshare", "--net", "--mount", "--propagation", "private",
           sys.executable, str(HERE / "netns_run.py")]
    proc = subprocess.run(cmd, input=json.dumps(request), capture_output=True, text=True,
                          check=False, timeout=START_TIMEOUT * len(request["probes"]) + 60)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"setup_error": f"{' '.join(cmd[:5])} failed: {proc.stderr.strip()[-500:]}"}


def judge(request: dict, answer: dict, labels: list[str]) -> list[str]:
    """Failure messages for one run's probes."""
    name = Path(request["argv"][0]).name
    started = f"started as `{shown(request)}`"
    log = "\n      ".join(ANSI.sub("", answer.get("log", "")).strip().splitlines()[-8:])
    if answer.get("setup_error"):
        return [f"could not run {name}: {answer['setup_error']}"]
    exited = [r["exited"] for r in answer.get("probes") or [] if "exited" in r]
    if exited:
        return [f"{name} exited with code {exited[0]} before it served its probes "
                f"({'; '.join(labels)}); {started}, its output ends:\n      {log}"]
    failures = []
    for label, result in zip(labels, answer.get("probes") or []):
        status = result.get("status")
        unknown = result.get("unknown") or {}
        if status is None:
            failures.append(f"{label}: {result.get('error')}; {started}")
        elif status == 404:
            failures.append(f"{label}: {name} answers 404 (it does not serve that path)")
        elif unknown.get("status") == status and unknown.get("body") == result.get("body"):
            failures.append(f"{label}: {name} answers it exactly as it answers a path it does not "
                            f"serve ({status} {result.get('body', '')[:120]!r}): not one of its "
                            "routes")
    return failures


def shown(request: dict) -> str:
    """The command line of a run, with the binary's name instead of its host path."""
    return " ".join([Path(request["argv"][0]).name] + request["argv"][1:])


def remove_created(paths: list[str]) -> None:
    """Removes the empty mount points the runs created on the host, deepest first."""
    for p in sorted(set(paths), key=len, reverse=True):
        try:
            if os.path.isdir(p):
                os.rmdir(p)
            elif os.path.isfile(p) and os.path.getsize(p) == 0:
                os.unlink(p)
        except OSError:
            pass
