"""Cross-checks between the rendered manifests, skaffold.yaml and the binaries.

Each `check_*` takes the context (`check.Context`) and returns (render, message) per failure:

- `check_images`: every image a container uses is a skaffold artifact, or a third-party image in
  `THIRD_PARTY_IMAGES` with a pinned tag.
- `check_probe_ports`: every probe's (and lifecycle hook's) port, number or name, is a
  containerPort of that container.
- `check_service_ports`: every Service selects some pod, and each port's targetPort (number or
  name) is a containerPort of every workload it selects.
- `check_env`: every environment variable set on one of our containers is one its binary reads:
  the `[env: NAME=]` list of `<binary> --help`, plus `PROCESS_ENV`, plus, for the broker, the
  `$NAME` variables its mounted configuration files reference.
"""

from __future__ import annotations

import re

import manifests as m

# Images not built here, which the manifests may use; matched on the repository name, with any
# pinned tag (a missing tag or `latest` fails).
THIRD_PARTY_IMAGES = {
    "postgres": "PostgreSQL, the services' databases",
    "nats": "the official NATS image, for the nats overlay's nats-server cluster",
    "prom/prometheus": "Prometheus, the observability overlay's metrics store and scraper",
    "grafana/grafana": "Grafana, the observability overlay's dashboards",
}

# Variables every one of our binaries reads besides its flags: `RUST_LOG` (the log filter of
# tracing-subscriber) and `RUST_BACKTRACE` (the standard library, on a panic).
PROCESS_ENV = {"RUST_LOG", "RUST_BACKTRACE"}

# The binary whose configuration files may reference environment variables (`$NAME`).
CONFIG_FILE_BINARY = "broker"


def normalise(repository: str) -> str:
    """`docker.io/library/postgres` -> `postgres`, for comparing with the allowlist."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "library/"):
        if repository.startswith(prefix):
            return repository[len(prefix):]
    return repository


def check_images(ctx) -> list[tuple[str, str]]:
    """Images that are neither skaffold artifacts nor allowed third-party images."""
    ours = {a.image for a in ctx.artifacts}
    failures = []
    for r in ctx.renders:
        for res, spec in m.pod_specs(r.resources):
            for c in m.containers(spec):
                image = c.get("image") or ""
                repo = m.image_repository(image)
                where = f"{m.ref(res)} container {c.get('name')}"
                if repo in ours:
                    continue
                if normalise(repo) in THIRD_PARTY_IMAGES:
                    tag = image[len(repo):]
                    if not tag or tag == ":latest":
                        failures.append((r.name, f"{where}: third-party image {image!r} has no "
                                         "pinned tag (name a version, e.g. postgres:17.2)"))
                    continue
                failures.append(
                    (
                        r.name,
                        f"{where}: image {image!r} is not a skaffold artifact "
                        f"({', '.join(sorted(ours)) or 'none'}) nor an allowed third-party image "
                        f"({', '.join(sorted(THIRD_PARTY_IMAGES))}; see cross.THIRD_PARTY_IMAGES)",
                    )
                )
    return failures


def check_probe_ports(ctx) -> list[tuple[str, str]]:
    """Probe and hook ports that are not containerPorts of their container."""
    failures = []
    for r in ctx.renders:
        for res, spec in m.pod_specs(r.resources):
            for c in m.containers(spec):
                for where, handler in m.probes(c):
                    kind_port = m.probe_port(handler)
                    if kind_port is None:
                        continue
                    kind, port = kind_port
                    if m.resolve_port(c, port) is None:
                        failures.append(
                            (
                                r.name,
                                f"{m.ref(res)} container {c.get('name')}: {where} {kind} port "
                                f"{port!r} is not a containerPort of the container "
                                f"({describe_ports(c)})",
                            )
                        )
    return failures


def describe_ports(container: dict) -> str:
    """`8082 "http", 9090` for messages."""
    ports = m.container_ports(container)
    if not ports:
        return "it declares none"
    return "it has " + ", ".join(
        f"{p.get('containerPort')}" + (f" {p['name']!r}" if p.get("name") else "") for p in ports
    )


def check_service_ports(ctx) -> list[tuple[str, str]]:
    """Services that select no pod, and targetPorts the selected pods do not declare."""
    failures = []
    for r in ctx.renders:
        workloads = m.pod_specs(r.resources)
        for svc in r.resources:
            if svc.get("kind") != "Service" or svc.get("apiVersion") != "v1":
                continue
            spec = svc.get("spec") or {}
            selector = spec.get("selector") or {}
            if spec.get("type") == "ExternalName" or not selector:
                continue
            selected = [
                (res, pod)
                for res, pod in workloads
                if m.namespace(res) == m.namespace(svc)
                and m.selects(selector, m.pod_template_labels(res))
            ]
            if not selected:
                failures.append((r.name, f"{m.ref(svc)}: its selector {selector} selects no pod"))
                continue
            for port in spec.get("ports") or []:
                target = port.get("targetPort", port.get("port"))
                for res, pod in selected:
                    if not any(m.resolve_port(c, target) for c in pod.get("containers") or []):
                        failures.append(
                            (
                                r.name,
                                f"{m.ref(svc)} port {port.get('name') or port.get('port')}: "
                                f"targetPort {target!r} is not a containerPort of "
                                f"{m.ref(res)}, which it selects",
                            )
                        )
    return failures


def check_env(ctx) -> list[tuple[str, str]]:
    """Variables set on our containers that their binaries do not read."""
    failures = []
    for r in ctx.renders:
        for res, spec in m.pod_specs(r.resources):
            for c in m.containers(spec):
                binary = ctx.binary_for(c)
                if binary is None:
                    continue
                command = c.get("command") or []
                if command and command[0].rsplit("/", 1)[-1] != binary:
                    ctx.note("env", r.name, f"{m.ref(res)} container {c.get('name')}: runs "
                             f"{command[0]}, not {binary}: its variables are not checked")
                    continue
                reads = ctx.binaries.env_vars(binary)
                if reads is None:
                    continue  # the binary could not be had; check_binaries says so
                allowed = reads | PROCESS_ENV
                if binary == CONFIG_FILE_BINARY:
                    allowed |= config_variables(r.resources, spec, c)
                for name, source in set_variables(r.resources, c):
                    if name not in allowed:
                        failures.append(
                            (
                                r.name,
                                f"{m.ref(res)} container {c.get('name')}: sets {name}{source}, "
                                f"which `{binary} --help` does not list as read "
                                f"(it reads: {', '.join(sorted(reads)) or 'no variable'}; "
                                f"plus {', '.join(sorted(allowed - reads))})",
                            )
                        )
    return failures


def set_variables(resources: list, container: dict) -> list[tuple[str, str]]:
    """(name, where from) of every variable a container gets from env and envFrom."""
    found = [(e.get("name"), "") for e in container.get("env") or [] if isinstance(e, dict)]
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in src:
                name = src[key].get("name")
                obj = m.find(resources, kind, name)
                for var in sorted(m.text_data(obj)):
                    found.append((prefix + var, f" (envFrom {kind}/{name})"))
    return found


def config_variables(resources: list, pod_spec: dict, container: dict) -> set:
    """`$NAME` references in the ConfigMaps and Secrets mounted into the container."""
    mounted = {vm.get("name") for vm in container.get("volumeMounts") or []}
    names = set()
    for vol in pod_spec.get("volumes") or []:
        if vol.get("name") not in mounted:
            continue
        sources = [vol] + [s for s in (vol.get("projected") or {}).get("sources") or []]
        for src in sources:
            if "configMap" in src:
                obj = m.find(resources, "ConfigMap", src["configMap"].get("name"))
            elif "secret" in src:
                obj = m.find(resources, "Secret", src["secret"].get("secretName")
                           or src["secret"].get("name"))
            else:
                continue
            for text in m.text_data(obj).values():
                names |= nats_config_variables(text)
    return names


def nats_config_variables(text: str) -> set:
    """The `$NAME` variables a NATS configuration file references (not in strings or comments)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            end = text.find(ch, i + 1)
            i = n if end < 0 else end + 1
        elif ch == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        else:
            out.append(ch)
            i += 1
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", "".join(out)))
