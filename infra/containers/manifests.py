"""Turns rendered Kubernetes manifests into `docker run` plans.

A Kubernetes API server cannot run on the machines this project is built on, but Docker can.
This module reads what `kubectl kustomize` renders and derives, for every pod of every
StatefulSet and Deployment, the container Kubernetes would run: the same image, command, args,
environment (values, Secret and ConfigMap references, `envFrom`, the downward API's pod name and
`$(VAR)` expansion), ports, probes, security context, resource limits and volumes (ConfigMap and
Secret files, emptyDir as tmpfs, volume claims as Docker volumes). Each Service whose selector
matches the pod becomes a network alias, so `nats://broker:4222` resolves as it does in a
cluster. Anything it cannot reproduce faithfully is an error, never silently dropped.
"""

from __future__ import annotations

import base64
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

WORKLOAD_KINDS = ("StatefulSet", "Deployment")


class ManifestError(Exception):
    """The manifests ask for something the container run cannot reproduce."""


@dataclass
class Probe:
    """A probe: an HTTP GET on a container port, or a command run in the container."""

    kind: str  # "http" or "exec"
    port: int = 0
    path: str = ""
    command: list[str] = field(default_factory=list)

    def docker_exec_args(self) -> list[str]:
        """What `docker exec <container>` runs to ask the probe (no shell needed)."""
        if self.kind == "http":
            return ["healthcheck", f"http://127.0.0.1:{self.port}{self.path}"]
        return list(self.command)


@dataclass
class Mount:
    """A volume mount: `kind` is config (files), tmpfs or volume (a claim)."""

    kind: str
    target: str
    read_only: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    claim: str = ""


@dataclass
class Pod:
    """One pod of a workload with its (single) container, ready to become a `docker run`."""

    name: str
    workload: str
    kind: str
    labels: dict[str, str]
    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    ports: dict[str, int]
    readiness: Probe | None
    liveness: Probe | None
    pre_stop: list[str] | None
    grace_seconds: int
    user: str | None
    fs_group: int | None
    read_only_root: bool
    cap_drop: list[str]
    cap_add: list[str]
    no_new_privileges: bool
    run_as_non_root: bool
    memory: str | None
    cpus: str | None
    mounts: list[Mount]
    aliases: list[str] = field(default_factory=list)


def render(overlay: Path) -> list[dict]:
    """`kubectl kustomize <overlay>`, parsed."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise ManifestError(f"kubectl kustomize {overlay}: {out.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def pods(resources: list[dict]) -> list[Pod]:
    """Every pod the workloads in `resources` would run, with its Service aliases."""
    config_maps = {r["metadata"]["name"]: _config_map_data(r) for r in _of(resources, "ConfigMap")}
    secrets = {r["metadata"]["name"]: _secret_data(r) for r in _of(resources, "Secret")}
    result = []
    for workload in resources:
        if workload.get("kind") not in WORKLOAD_KINDS:
            continue
        replicas = workload["spec"].get("replicas", 1)
        for i in range(replicas):
            name = f"{workload['metadata']['name']}-{i}"
            result.append(_pod(workload, name, config_maps, secrets))
    for service in _of(resources, "Service"):
        _attach_service(service, result)
    return result


def _of(resources: list[dict], kind: str) -> list[dict]:
    return [r for r in resources if r.get("kind") == kind]


def _config_map_data(resource: dict) -> dict[str, bytes]:
    data = {k: v.encode() for k, v in (resource.get("data") or {}).items()}
    for k, v in (resource.get("binaryData") or {}).items():
        data[k] = base64.b64decode(v)
    return data


def _secret_data(resource: dict) -> dict[str, bytes]:
    data = {k: base64.b64decode(v) for k, v in (resource.get("data") or {}).items()}
    for k, v in (resource.get("stringData") or {}).items():
        data[k] = v.encode()
    return data


def _pod(workload: dict, name: str, config_maps: dict, secrets: dict) -> Pod:
    template = workload["spec"]["template"]
    spec = template["spec"]
    where = f"{workload['kind']} {workload['metadata']['name']}"
    containers = spec.get("containers", [])
    if len(containers) != 1 or spec.get("initContainers"):
        raise ManifestError(f"{where}: only pods with exactly one container are supported")
    c = containers[0]
    env = _env(c, name, config_maps, secrets, where)
    ports = {p.get("name", str(p["containerPort"])): p["containerPort"] for p in c.get("ports", [])}
    pod_sc = spec.get("securityContext") or {}
    sc = c.get("securityContext") or {}
    run_as = sc.get("runAsUser", pod_sc.get("runAsUser"))
    run_group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    user = None
    if run_as is not None:
        user = str(run_as) if run_group is None else f"{run_as}:{run_group}"
    caps = sc.get("capabilities") or {}
    limits = (c.get("resources") or {}).get("limits") or {}
    pre_stop = None
    lifecycle = (c.get("lifecycle") or {}).get("preStop")
    if lifecycle:
        if "exec" in lifecycle:
            pre_stop = lifecycle["exec"]["command"]
        elif "sleep" in lifecycle:
            pre_stop = ["sleep", str(lifecycle["sleep"]["seconds"])]
        else:
            raise ManifestError(f"{where}: only exec and sleep preStop hooks are supported")
    return Pod(
        name=name,
        workload=workload["metadata"]["name"],
        kind=workload["kind"],
        labels=(template.get("metadata") or {}).get("labels") or {},
        image=c["image"],
        command=[_expand(a, env) for a in c.get("command", [])],
        args=[_expand(a, env) for a in c.get("args", [])],
        env=env,
        ports=ports,
        readiness=_probe(c.get("readinessProbe"), ports, where),
        liveness=_probe(c.get("livenessProbe"), ports, where),
        pre_stop=pre_stop,
        grace_seconds=spec.get("terminationGracePeriodSeconds", 30),
        user=user,
        fs_group=pod_sc.get("fsGroup"),
        read_only_root=bool(sc.get("readOnlyRootFilesystem")),
        cap_drop=caps.get("drop") or [],
        cap_add=caps.get("add") or [],
        no_new_privileges=sc.get("allowPrivilegeEscalation") is False,
        run_as_non_root=bool(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))),
        memory=_memory(limits.get("memory")),
        cpus=_cpus(limits.get("cpu")),
        mounts=_mounts(workload, c, name, config_maps, secrets, where),
    )


def _env(c: dict, pod: str, config_maps: dict, secrets: dict, where: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "secretRef" in source:
            data = _lookup(secrets, source["secretRef"]["name"], "Secret", where)
        elif "configMapRef" in source:
            data = _lookup(config_maps, source["configMapRef"]["name"], "ConfigMap", where)
        else:
            raise ManifestError(f"{where}: unsupported envFrom {source}")
        prefix = source.get("prefix", "")
        env.update({prefix + k: v.decode() for k, v in data.items()})
    for var in c.get("env", []):
        name = var["name"]
        if "value" in var:
            env[name] = _expand(str(var["value"]), env)
            continue
        ref = var.get("valueFrom") or {}
        if "secretKeyRef" in ref:
            r = ref["secretKeyRef"]
            env[name] = _key(_lookup(secrets, r["name"], "Secret", where), r["key"], where)
        elif "configMapKeyRef" in ref:
            r = ref["configMapKeyRef"]
            env[name] = _key(_lookup(config_maps, r["name"], "ConfigMap", where), r["key"], where)
        elif ref.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[name] = pod
        elif ref.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[name] = "default"
        else:
            raise ManifestError(f"{where}: env {name}: unsupported valueFrom {ref}")
    return env


def _lookup(objects: dict, name: str, kind: str, where: str) -> dict[str, bytes]:
    if name not in objects:
        raise ManifestError(f"{where}: {kind} {name} is not in the rendered manifests")
    return objects[name]


def _key(data: dict[str, bytes], key: str, where: str) -> str:
    if key not in data:
        raise ManifestError(f"{where}: key {key} is missing")
    return data[key].decode()


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion (`$$(VAR)` stays literal)."""
    return re.sub(
        r"\$(\$)?\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: m.group(0)[1:] if m.group(1) else env.get(m.group(2), m.group(0)),
        text,
    )


def _probe(probe: dict | None, ports: dict[str, int], where: str) -> Probe | None:
    if not probe:
        return None
    if "httpGet" in probe:
        port = probe["httpGet"]["port"]
        number = ports.get(port) if isinstance(port, str) else int(port)
        if number is None:
            raise ManifestError(f"{where}: probe port {port!r} is not a containerPort")
        return Probe("http", port=number, path=probe["httpGet"].get("path", "/"))
    if "exec" in probe:
        return Probe("exec", command=probe["exec"]["command"])
    raise ManifestError(f"{where}: only httpGet and exec probes are supported")


def _mounts(workload, c, pod, config_maps, secrets, where) -> list[Mount]:
    spec = workload["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    mounts = []
    for m in c.get("volumeMounts", []):
        name, target = m["name"], m["mountPath"]
        if m.get("subPath"):
            raise ManifestError(f"{where}: subPath mounts are not supported")
        if name in claims:
            mounts.append(Mount("volume", target, claim=f"{pod}-{name}"))
            continue
        volume = volumes.get(name)
        if volume is None:
            raise ManifestError(f"{where}: volume {name} is not declared")
        if "emptyDir" in volume:
            mounts.append(Mount("tmpfs", target))
        elif "configMap" in volume or "secret" in volume:
            if "configMap" in volume:
                data = _lookup(config_maps, volume["configMap"]["name"], "ConfigMap", where)
                items = volume["configMap"].get("items")
            else:
                data = _lookup(secrets, volume["secret"]["secretName"], "Secret", where)
                items = volume["secret"].get("items")
            if items:
                files = {i["path"]: data[i["key"]] for i in items}
            else:
                files = dict(data)
            mounts.append(Mount("config", target, read_only=True, files=files))
        else:
            raise ManifestError(f"{where}: volume {name}: unsupported type")
    return mounts


def _memory(value: str | None) -> str | None:
    if value is None:
        return None
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    for suffix, docker in units.items():
        if str(value).endswith(suffix):
            return str(value)[: -len(suffix)] + docker
    return str(value)


def _cpus(value) -> str | None:
    if value is None:
        return None
    value = str(value)
    if value.endswith("m"):
        return str(int(value[:-1]) / 1000)
    return value


def _attach_service(service: dict, all_pods: list[Pod]) -> None:
    selector = service["spec"].get("selector") or {}
    if not selector:
        return
    name = service["metadata"]["name"]
    for pod in all_pods:
        if all(pod.labels.get(k) == v for k, v in selector.items()):
            for port in service["spec"].get("ports", []):
                target = port.get("targetPort", port["port"])
                number = pod.ports.get(target) if isinstance(target, str) else int(target)
                if number is None:
                    raise ManifestError(
                        f"Service {name}: targetPort {target!r} is not a containerPort of "
                        f"{pod.name}"
                    )
                if number != port["port"]:
                    raise ManifestError(
                        f"Service {name}: port {port['port']} maps to {number}; a Docker "
                        "network alias cannot remap ports, so the container run needs them equal"
                    )
            pod.aliases.append(name)
            if service["spec"].get("clusterIP") == "None" and pod.kind == "StatefulSet":
                pod.aliases.append(f"{pod.name}.{name}")
