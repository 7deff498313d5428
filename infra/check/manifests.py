"""Rendering the kustomizations and walking what they render.

`render` runs `kubectl kustomize` on the base and on each overlay; the rest of the checks read the
resulting resources through the helpers here (`pod_specs`, `containers`, `resolve_port`, ...), so
that "where are the containers of this resource" is answered once, for every workload kind.

`check_kubernetes_schema` validates each rendered resource against the Kubernetes JSON schemas
bundled by the `kubernetes-validate` package, in strict mode: a field the API does not have fails,
and so does a kind/apiVersion the Kubernetes version no longer serves (a removed API such as
`extensions/v1beta1` Ingress has no schema there).
"""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# The Kubernetes version the manifests are validated against: the kubectl on the machines is
# 1.32 (kustomize 5.5), and kubernetes-validate 1.32.0 bundles the schemas up to 1.32.
KUBERNETES_VERSION = "1.32"

# Workload kinds and where their pod spec sits.
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


@dataclass
class Render:
    """One kustomization's output: `name` is its directory relative to infra/k8s."""

    name: str
    path: Path
    resources: list = field(default_factory=list)


def kustomizations(root: Path) -> list[tuple[str, Path]]:
    """The base and every overlay under infra/k8s, as (name, directory), base first."""
    k8s = root / "infra" / "k8s"
    found = []
    base = k8s / "base"
    if is_kustomization(base):
        found.append(("base", base))
    overlays = k8s / "overlays"
    if overlays.is_dir():
        for d in sorted(overlays.iterdir()):
            if is_kustomization(d):
                found.append((f"overlays/{d.name}", d))
    return found


def is_kustomization(directory: Path) -> bool:
    """Whether `directory` holds a kustomization file under any of its accepted names."""
    names = ("kustomization.yaml", "kustomization.yml", "Kustomization")
    return directory.is_dir() and any((directory / n).is_file() for n in names)


def render(name: str, directory: Path) -> tuple[Render | None, str | None]:
    """Renders one kustomization; returns (render, None) or (None, kubectl's error)."""
    proc = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None, proc.stderr.strip() or f"kubectl kustomize exited {proc.returncode}"
    try:
        docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    except yaml.YAMLError as err:
        return None, f"kubectl kustomize printed YAML that does not parse: {err}"
    return Render(name, directory, docs), None


def ref(resource: dict) -> str:
    """`Kind/name` of a resource, for messages."""
    meta = resource.get("metadata") or {}
    return f"{resource.get('kind', '?')}/{meta.get('name', '?')}"


def namespace(resource: dict) -> str | None:
    """The resource's namespace, None when it leaves it to the deploy."""
    return (resource.get("metadata") or {}).get("namespace")


def dig(obj, path):
    """`obj[path[0]][path[1]]...`, or None where a step is missing."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def pod_template_labels(resource: dict) -> dict:
    """The labels the pods of a workload get."""
    if resource.get("kind") == "Pod":
        return dig(resource, ("metadata", "labels")) or {}
    path = POD_SPEC_PATHS.get(resource.get("kind"))
    if not path:
        return {}
    template = dig(resource, path[:-1]) or {}
    return dig(template, ("metadata", "labels")) or {}


def pod_specs(resources: list) -> list[tuple[dict, dict]]:
    """Every (workload, pod spec) in a render."""
    found = []
    for res in resources:
        path = POD_SPEC_PATHS.get(res.get("kind"))
        spec = dig(res, path) if path else None
        if isinstance(spec, dict):
            found.append((res, spec))
    return found


def containers(pod_spec: dict) -> list[dict]:
    """The init containers and the containers of a pod spec."""
    return list(pod_spec.get("initContainers") or []) + list(pod_spec.get("containers") or [])


def image_repository(image: str) -> str:
    """An image reference without its tag or digest (`nats:2.10` -> `nats`)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def container_ports(container: dict) -> list[dict]:
    """The container's declared ports."""
    return list(container.get("ports") or [])


def resolve_port(container: dict, port) -> int | None:
    """A probe or targetPort value (number or name) as the container port number it means."""
    for p in container_ports(container):
        if isinstance(port, int) and p.get("containerPort") == port:
            return port
        if isinstance(port, str) and p.get("name") == port:
            return p.get("containerPort")
    return None


def probes(container: dict) -> list[tuple[str, dict]]:
    """(where, handler) for each probe and lifecycle hook handler with a port."""
    found = []
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(name)
        if isinstance(probe, dict):
            found.append((name, probe))
    for hook in ("postStart", "preStop"):
        handler = dig(container, ("lifecycle", hook))
        if isinstance(handler, dict):
            found.append((f"lifecycle.{hook}", handler))
    return found


def probe_port(handler: dict):
    """(kind, port) of a probe or hook handler: kind is httpGet, tcpSocket or grpc; None if exec."""
    for kind in ("httpGet", "tcpSocket", "grpc"):
        if isinstance(handler.get(kind), dict):
            return kind, handler[kind].get("port")
    return None


def selects(selector: dict, labels: dict) -> bool:
    """Whether a Service's equality selector matches a set of pod labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def find(resources: list, kind: str, name: str | None) -> dict | None:
    """The rendered resource of that kind and name."""
    for res in resources:
        if res.get("kind") == kind and (res.get("metadata") or {}).get("name") == name:
            return res
    return None


def text_data(obj: dict | None) -> dict:
    """A ConfigMap's or Secret's entries as text (Secret data decoded)."""
    if not obj:
        return {}
    out = {}
    for k, v in (obj.get("data") or {}).items():
        if obj.get("kind") == "Secret":
            v = base64.b64decode(v).decode("utf-8", "replace")
        out[k] = v
    out.update(obj.get("stringData") or {})
    return out


def check_kubernetes_schema(renders: list[Render]) -> list[tuple[str, str]]:
    """Validates every rendered resource, strictly; returns (render, message) per failure.
    A resource the base and its overlays render alike is validated once."""
    failures = []
    verdicts: dict[str, str | None] = {}
    for r in renders:
        for res in r.resources:
            if not isinstance(res, dict) or "kind" not in res or "apiVersion" not in res:
                failures.append((r.name, f"a document without kind/apiVersion: {str(res)[:80]}"))
                continue
            key = json.dumps(res, sort_keys=True, default=str)
            if key not in verdicts:
                verdicts[key] = schema_error(res)
            if verdicts[key]:
                failures.append((r.name, f"{ref(res)}: {verdicts[key]}"))
    return failures


def schema_error(res: dict) -> str | None:
    """Why one resource is not valid for KUBERNETES_VERSION in strict mode, or None."""
    import kubernetes_validate as kv  # imported here so --help works without it

    try:
        kv.validate(res, KUBERNETES_VERSION, strict=True)
    except kv.ValidationError as err:
        where = ".".join(str(p) for p in err.path) or "(top level)"
        return f"{where}: {err.message}"
    except kv.SchemaNotFoundError:
        return (f"apiVersion {res['apiVersion']} kind {res['kind']} is not served by Kubernetes "
                f"{KUBERNETES_VERSION} (a removed or unknown API; use the current apiVersion, "
                "e.g. networking.k8s.io/v1 Ingress, policy/v1 PodDisruptionBudget)")
    return None
