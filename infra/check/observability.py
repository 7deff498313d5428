"""Checks of what the observability overlay deploys: Grafana's dashboards and Prometheus's scrapes.

- `check_dashboards`: every `*.json` entry of a rendered ConfigMap parses; in each Grafana
  dashboard among them (a JSON object with `panels`), every series a panel's PromQL selects is
  one the services or the broker expose (`series.exposed`, read from their sources, plus the
  series Prometheus records itself, such as `up`), every data source a panel or query names by
  uid is one that Grafana's provisioning in the same render declares, and the ConfigMap is
  mounted where a provisioned dashboard provider reads its files.
- `check_scrape_targets`: in every rendered `prometheus.yml`, each static target and each DNS
  service-discovery name is a Service of the render with that port; a DNS `A` name is a headless
  Service (otherwise it resolves to one cluster IP and each scrape reaches one replica at
  random); and the render's NetworkPolicies let the pods that mount that configuration reach the
  pods behind the Service on that port (egress from Prometheus, ingress to the target).
"""

from __future__ import annotations

import json

import yaml

import manifests as m
import series

# Kubernetes' own names for a target that is not a Service of the render.
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]"}


def config_maps(resources: list) -> list[dict]:
    return [r for r in resources if r.get("kind") == "ConfigMap"]


def yaml_entries(resources: list, key: str) -> list[tuple[dict, str, object]]:
    """(ConfigMap, entry name, parsed YAML) of every ConfigMap entry holding a top-level `key`."""
    found = []
    for cm in config_maps(resources):
        for name, text in m.text_data(cm).items():
            if not name.endswith((".yaml", ".yml")):
                continue
            try:
                doc = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(doc, dict) and key in doc:
                found.append((cm, name, doc))
    return found


def check_dashboards(ctx) -> list[tuple[str, str]]:
    """Dashboards that do not parse, query series nobody exposes, or name a missing data source."""
    failures = []
    exposed = None
    for r in ctx.renders:
        uids = provisioned_datasources(r.resources)
        paths = provider_paths(r.resources)
        for cm in config_maps(r.resources):
            where = m.ref(cm)
            for entry, text in m.text_data(cm).items():
                if not entry.endswith(".json"):
                    continue
                try:
                    doc = json.loads(text)
                except json.JSONDecodeError as err:
                    failures.append((r.name, f"{where} {entry}: not JSON: {err}"))
                    continue
                if not isinstance(doc, dict) or "panels" not in doc:
                    continue
                if exposed is None:
                    exposed = series.exposed(ctx.root)
                    if exposed is None:
                        ctx.note("dashboards", "-", "no services/ under the root: the "
                                 "dashboards' series names are not checked")
                    else:
                        failures += [("-", p) for p in exposed.problems]
                found = dashboard_problems(doc, exposed, uids)
                if not mounted_at(r.resources, cm, paths):
                    found.append(f"mounted at no dashboard provider's path "
                                 f"({', '.join(sorted(paths)) or 'no provider is provisioned'})")
                failures += [(r.name, f"{where} {entry}: {p}") for p in found]
    return failures


def dashboard_problems(doc: dict, exposed, uids: set[str]) -> list[str]:
    """What is wrong with one Grafana dashboard."""
    problems = []
    for key in ("uid", "title", "schemaVersion"):
        if key not in doc:
            problems.append(f"the dashboard has no {key!r}")
    known = set(series.PROMETHEUS_SERIES) | set(exposed.names if exposed else ())
    for panel in all_panels(doc.get("panels") or []):
        title = panel.get("title") or f"panel {panel.get('id')}"
        for source in [panel.get("datasource")] + [t.get("datasource") for t in targets(panel)]:
            uid = source.get("uid") if isinstance(source, dict) else None
            if uid and not uid.startswith("$") and uid not in uids:
                problems.append(f"panel {title!r}: data source uid {uid!r} is not provisioned "
                                f"(Grafana's provisioning declares {sorted(uids) or 'none'})")
        for target in targets(panel):
            expr = target.get("expr")
            if not isinstance(expr, str):
                continue
            for name in sorted(series.promql_series(expr)):
                if exposed is not None and name not in known:
                    problems.append(f"panel {title!r} query {target.get('refId')}: series "
                                    f"{name!r} is exposed by no service nor the broker")
    return sorted(set(problems), key=problems.index)


def all_panels(panels: list) -> list[dict]:
    """The panels, and those inside collapsed rows."""
    out = []
    for p in panels:
        if isinstance(p, dict):
            out.append(p)
            out += all_panels(p.get("panels") or [])
    return out


def targets(panel: dict) -> list[dict]:
    return [t for t in panel.get("targets") or [] if isinstance(t, dict)]


def provisioned_datasources(resources: list) -> set[str]:
    """The uids of the data sources Grafana's provisioning files in the render declare."""
    uids = set()
    for _, _, doc in yaml_entries(resources, "datasources"):
        for ds in doc.get("datasources") or []:
            if isinstance(ds, dict) and ds.get("uid"):
                uids.add(str(ds["uid"]))
    return uids


def provider_paths(resources: list) -> set[str]:
    """The directories Grafana's dashboard providers in the render read."""
    paths = set()
    for _, _, doc in yaml_entries(resources, "providers"):
        for provider in doc.get("providers") or []:
            path = ((provider or {}).get("options") or {}).get("path")
            if path:
                paths.add(str(path).rstrip("/"))
    return paths


def mounted_at(resources: list, cm: dict, paths: set[str]) -> bool:
    """Whether a container mounts the ConfigMap `cm` at one of `paths`."""
    name = (cm.get("metadata") or {}).get("name")
    for _, spec in m.pod_specs(resources):
        volumes = {v.get("name") for v in spec.get("volumes") or []
                   if (v.get("configMap") or {}).get("name") == name}
        for c in m.containers(spec):
            for mount in c.get("volumeMounts") or []:
                if mount.get("name") in volumes and mount.get("mountPath", "").rstrip("/") in paths:
                    return True
    return False


def check_scrape_targets(ctx) -> list[tuple[str, str]]:
    """Scrape targets that are no Service and port of the render, or that policies refuse."""
    failures = []
    for r in ctx.renders:
        for cm, entry, doc in yaml_entries(r.resources, "scrape_configs"):
            where = f"{m.ref(cm)} {entry}"
            scrapers = [res for res, spec in m.pod_specs(r.resources) if mounts(spec, cm)]
            for job in doc.get("scrape_configs") or []:
                name = (job or {}).get("job_name")
                for target in job_targets(job, ctx, r.name, where):
                    found = target_problems(r.resources, scrapers, target)
                    failures += [(r.name, f"{where} job {name}: {p}") for p in found]
    return failures


def mounts(spec: dict, cm: dict) -> bool:
    """Whether a pod spec has the ConfigMap `cm` as a volume."""
    name = (cm.get("metadata") or {}).get("name")
    return any((v.get("configMap") or {}).get("name") == name for v in spec.get("volumes") or [])


def job_targets(job: dict, ctx, render: str, where: str) -> list[tuple[str, object, str]]:
    """(host, port number or name, how) of each target of a scrape job; how is `static`, `A`
    (DNS A/AAAA records) or `SRV`."""
    out = []
    for static in job.get("static_configs") or []:
        for target in static.get("targets") or []:
            host, _, port = str(target).rpartition(":")
            out.append((host, int(port) if port.isdigit() else port, "static"))
    for dns in job.get("dns_sd_configs") or []:
        kind = str(dns.get("type", "SRV")).upper()
        for name in dns.get("names") or []:
            if kind == "SRV":
                labels = str(name).split(".")
                port = labels[0].lstrip("_") if len(labels) > 2 else None
                out.append((".".join(labels[2:]), port, "SRV"))
            else:
                out.append((str(name), dns.get("port"), "A"))
    others = [k for k in job if k.endswith("_sd_configs") and k != "dns_sd_configs"]
    for key in others:
        ctx.note("scrape-targets", render, f"{where} job {job.get('job_name')}: {key} "
                 "targets are not checked")
    return out


def target_problems(resources: list, scrapers: list, target) -> list[str]:
    """What is wrong with one scrape target."""
    host, port, how = target
    if host in LOCAL_HOSTS:
        return []
    service_name = host.split(".")[0]
    svc = m.find(resources, "Service", service_name)
    shown = f"{host}:{port}" if how != "SRV" else f"{host} port {port!r}"
    if svc is None:
        return [f"target {shown}: the render has no Service {service_name}"]
    spec = svc.get("spec") or {}
    key = "name" if how == "SRV" else "port"
    svc_port = next((p for p in spec.get("ports") or [] if p.get(key) == port), None)
    if svc_port is None:
        have = ", ".join(str(p.get(key)) for p in spec.get("ports") or [])
        return [f"target {shown}: Service {service_name} has no port {port!r} (it has {have})"]
    problems = []
    if how == "A" and spec.get("clusterIP") != "None":
        problems.append(f"target {shown}: Service {service_name} is not headless, so its name "
                        "resolves to one cluster IP and each scrape reaches one replica at "
                        "random (give it clusterIP: None)")
    target_port = svc_port.get("targetPort", svc_port.get("port"))
    selector = spec.get("selector") or {}
    for dst, dst_spec in m.pod_specs(resources):
        labels = m.pod_template_labels(dst)
        if not m.selects(selector, labels):
            continue
        number, name = container_port(dst_spec, target_port)
        for src in scrapers:
            refused = refusal(resources, m.pod_template_labels(src), labels, number, name)
            if refused:
                problems.append(f"target {shown}: the network policies do not let "
                                f"{m.ref(src)} reach {m.ref(dst)} on port {number}: {refused}")
    return problems


def container_port(spec: dict, target) -> tuple[object, object]:
    """(number, name) of the container port a Service's targetPort means."""
    for c in m.containers(spec):
        for p in m.container_ports(c):
            if target in (p.get("containerPort"), p.get("name")):
                return p.get("containerPort"), p.get("name")
    return target, None


def refusal(resources: list, src: dict, dst: dict, number, name) -> str | None:
    """Why the NetworkPolicies refuse a TCP connection from pods labelled `src` to pods labelled
    `dst` on a port, or None when they allow it (both in the render's one namespace)."""
    if not allows(resources, src, "Egress", dst, number, name):
        return "no egress rule of a policy selecting the scraper allows it"
    if not allows(resources, dst, "Ingress", src, number, name):
        return "no ingress rule of a policy selecting the target allows it"
    return None


def allows(resources: list, pod: dict, direction: str, peer: dict, number, name) -> bool:
    """Whether the policies selecting `pod` allow traffic in `direction` with `peer`: true when
    none of them has that direction (Kubernetes then allows everything)."""
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    policies = []
    for pol in resources:
        if pol.get("kind") != "NetworkPolicy":
            continue
        spec = pol.get("spec") or {}
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec
                                            else ["Ingress"])
        if direction in types and label_selects(spec.get("podSelector") or {}, pod):
            policies.append(spec)
    if not policies:
        return True
    for spec in policies:
        for rule in spec.get(rules_key) or []:
            peers = rule.get(peers_key) or []
            peer_ok = not peers or any(
                "podSelector" in p and "namespaceSelector" not in p
                and label_selects(p["podSelector"] or {}, peer) for p in peers)
            ports = rule.get("ports") or []
            port_ok = not ports or any(
                p.get("protocol", "TCP") == "TCP" and p.get("port") in (None, number, name)
                for p in ports)
            if peer_ok and port_ok:
                return True
    return False


def label_selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) matches `labels`."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False)
        if not ok:
            return False
    return True
