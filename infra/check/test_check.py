"""Each offline check fails on a deliberately broken copy of the infra, and only that check.

Run from the repository root:

    python3 -m unittest discover -s infra/check -v

Every test copies the repository's infra (infra/Dockerfile, .dockerignore, infra/k8s and
skaffold.yaml, and the services' and the broker monitor's sources, where the series the
dashboards may use are registered) into a temporary directory, breaks one thing, runs every
check on the copy and asserts that exactly the expected check fails, with a message naming
what is wrong. Where one of
those parts is not in the repository yet, the copy takes it from `fixture/` beside this file
(a minimal stand-in); INFRA_CHECK_FIXTURE=1 takes every part from there, and
INFRA_CHECK_SOURCE=DIR takes them from another copy of the repository.

The binaries are built once (`cargo build` of the six binaries in the repository), unless
INFRA_CHECK_BINARIES names a directory with prebuilt ones.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURE = HERE / "fixture"
sys.path.insert(0, str(HERE))

import binaries as b  # noqa: E402
import check  # noqa: E402

# The parts of the repository the checks read: (paths, the file that says the part is there).
PARTS = [
    (["infra/Dockerfile", ".dockerignore"], "infra/Dockerfile"),
    (["infra/k8s", "skaffold.yaml"], "skaffold.yaml"),
    # The sources the dashboards check reads the exposed series from.
    (["services", "broker/src/monitor"], "services/kit/src/metrics.rs"),
]


def source_of(marker: str) -> Path:
    """Where a part comes from: the repository (or INFRA_CHECK_SOURCE) when it has it, else the
    fixture."""
    source = Path(os.environ.get("INFRA_CHECK_SOURCE") or REPO)
    if os.environ.get("INFRA_CHECK_FIXTURE") != "1" and (source / marker).exists():
        return source
    return FIXTURE


def copy_infra(dest: Path) -> None:
    """Copies the checked parts (repository or fixture) to `dest`."""
    for paths, marker in PARTS:
        src = source_of(marker)
        for rel in paths:
            s, d = src / rel, dest / rel
            d.parent.mkdir(parents=True, exist_ok=True)
            if s.is_dir():
                shutil.copytree(s, d)
            elif s.exists():
                shutil.copy2(s, d)


def bin_dir() -> Path:
    """The host binaries: INFRA_CHECK_BINARIES, or built once in the repository."""
    given = os.environ.get("INFRA_CHECK_BINARIES")
    if given:
        return Path(given)
    built = b.Binaries(REPO, None)
    built.build({binary for _, binary in b.TARGET_BINARIES.values()})
    if built.errors:
        raise RuntimeError("\n".join(built.errors))
    return built.directory()


class BrokenCopy:
    """A copy of the infra in a temporary directory, with helpers that break one thing."""

    def __init__(self, root: Path):
        self.root = root

    def yaml_files(self, under: str) -> list[Path]:
        return sorted(p for p in (self.root / under).rglob("*")
                      if p.suffix in (".yaml", ".yml") and p.is_file())

    def edit_resource(self, predicate, change) -> dict:
        """Applies `change` to the first resource of the base that `predicate` accepts."""
        for path in self.yaml_files("infra/k8s/base"):
            docs = list(yaml.safe_load_all(path.read_text()))
            for doc in docs:
                if isinstance(doc, dict) and "kind" in doc and predicate(doc):
                    change(doc)
                    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
                    return doc
        raise AssertionError("no resource in infra/k8s/base matches")

    def edit_container(self, image: str, change) -> None:
        """Applies `change` to the base's first container running the skaffold image `image`."""
        def has(doc):
            return any(c.get("image", "").split(":")[0] == image for c in pod(doc))

        def apply(doc):
            change(next(c for c in pod(doc) if c.get("image", "").split(":")[0] == image))
        self.edit_resource(has, apply)

    def add_to_base(self, name: str, text: str) -> None:
        """Adds a file of resources to the base kustomization."""
        base = self.root / "infra/k8s/base"
        (base / name).write_text(text)
        path = base / "kustomization.yaml"
        kustomization = yaml.safe_load(path.read_text())
        kustomization.setdefault("resources", []).append(name)
        path.write_text(yaml.safe_dump(kustomization, sort_keys=False))

    def replace_in(self, rel: str, old: str, new: str) -> None:
        """Replaces the first `old` in the copy's file `rel` by `new`."""
        path = self.root / rel
        text = path.read_text()
        assert old in text, f"{old!r} is not in {rel}"
        path.write_text(text.replace(old, new, 1))

    def edit_skaffold(self, change) -> None:
        path = self.root / "skaffold.yaml"
        docs = list(yaml.safe_load_all(path.read_text()))
        change(docs[0])
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


# Two APIs Kubernetes no longer serves (removed in 1.22 and 1.25), as a broken copy adds them.
REMOVED_APIS = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: legacy}
spec:
  backend: {serviceName: console, servicePort: 80}
---
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {name: legacy}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: legacy}}
"""


# The overlay with Prometheus and Grafana, and its dashboard.
OBSERVABILITY = "infra/k8s/overlays/observability"
DASHBOARD = f"{OBSERVABILITY}/dashboards/bank.json"


def pod(doc: dict) -> list:
    """The containers of a workload in the base (none for other kinds)."""
    spec = doc.get("spec") or {}
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return (spec.get("template") or {}).get("spec", {}).get("containers") or []
    return []


def load_artifact(skaffold: dict) -> dict:
    """The load tool's artifact: the one to break in skaffold.yaml, since its Job has no probe
    (another image's missing stage would also leave probe-paths without its ENTRYPOINT, such
    as the broker's `-m 8222`)."""
    return next(a for a in skaffold["build"]["artifacts"] if a["image"] == "bank-load")


def http_probe(container: dict) -> dict:
    """The container's readiness probe's httpGet (every service of ours has one)."""
    return container["readinessProbe"]["httpGet"]


class OfflineChecks(unittest.TestCase):
    """One test per check: break one thing, see that check, and only it, fail."""

    @classmethod
    def setUpClass(cls):
        cls.binaries = bin_dir()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="infra-check-test-")
        self.copy = BrokenCopy(Path(self.tmp.name))
        copy_infra(self.copy.root)

    def tearDown(self):
        self.tmp.cleanup()

    def failures(self) -> dict[str, list[str]]:
        results = check.run_all(self.copy.root, self.binaries)
        return {name: fails for name, (fails, _) in results.items() if fails}

    def assert_only(self, name: str, *fragments: str) -> None:
        """Exactly the check `name` fails, and one of its messages holds every fragment."""
        failed = self.failures()
        self.assertEqual(set(failed), {name}, f"failures: {failed}")
        text = "\n".join(failed[name])
        self.assertTrue(any(all(f in line for f in fragments) for line in failed[name]),
                        f"no {name} message has {fragments}:\n{text}")

    def needs_broker_users(self) -> None:
        """Skips a test of the broker logins on a copy whose broker has none (the fixture)."""
        if not (self.copy.root / "infra/k8s/base/broker/auth.conf").is_file():
            self.skipTest("the copy's broker has no users (fixture)")

    def needs_observability(self) -> None:
        """Skips a test of the observability overlay on a copy without it (the fixture)."""
        if not (self.copy.root / OBSERVABILITY).is_dir():
            self.skipTest("the copy has no observability overlay (fixture)")

    def test_the_unbroken_copy_passes_every_check(self):
        self.assertEqual(self.failures(), {})

    def test_an_unknown_field_fails_the_kubernetes_schema(self):
        self.copy.edit_container("bank-account-service", lambda c: c.update(restartPolicyy="x"))
        self.assert_only("kubernetes-schema", "restartPolicyy", "was unexpected")

    def test_removed_api_versions_fail_the_kubernetes_schema(self):
        self.copy.add_to_base("legacy.yaml", REMOVED_APIS)
        self.assert_only("kubernetes-schema", "extensions/v1beta1 kind Ingress",
                         "not served by Kubernetes 1.32")
        self.assert_only("kubernetes-schema", "policy/v1beta1 kind PodDisruptionBudget")

    def test_a_schema_violation_in_skaffold_yaml_fails_the_skaffold_schema(self):
        self.copy.edit_skaffold(lambda doc: doc["build"]["artifacts"][0].update(dockr={}))
        self.assert_only("skaffold-schema", "build.artifacts.0", "dockr")

    def test_a_hadolint_violation_fails_hadolint(self):
        path = self.copy.root / "infra/Dockerfile"
        lines = path.read_text().splitlines()
        first_from = next(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
        lines.insert(first_from + 1, "MAINTAINER someone@example.com")
        path.write_text("\n".join(lines) + "\n")
        self.assert_only("hadolint", "DL4000")

    def test_an_image_that_is_no_skaffold_artifact_fails_images(self):
        self.copy.edit_container("bank-console", lambda c: c.update(image="bank-konsole"))
        self.assert_only("images", "bank-konsole", "is not a skaffold artifact")

    def test_a_missing_dockerfile_fails_skaffold_refs(self):
        def move(doc):
            load_artifact(doc)["docker"]["dockerfile"] = "infra/Dockerfile.gone"
        self.copy.edit_skaffold(move)
        self.assert_only("skaffold-refs", "infra/Dockerfile.gone does not exist")

    def test_a_target_that_is_no_stage_fails_skaffold_refs(self):
        self.copy.edit_skaffold(
            lambda doc: load_artifact(doc)["docker"].update(target="no-such-stage"))
        self.assert_only("skaffold-refs", "'no-such-stage' is not a stage")

    def test_a_port_forward_to_a_port_the_service_lacks_fails_skaffold_refs(self):
        self.copy.edit_skaffold(lambda doc: doc["portForward"][0].update(port=9997))
        self.assert_only("skaffold-refs", "port 9997", "the Service has ports")

    def test_an_overlay_that_does_not_render_fails_render(self):
        path = self.copy.root / "infra/k8s/overlays/dev/kustomization.yaml"
        kustomization = yaml.safe_load(path.read_text())
        kustomization.setdefault("resources", []).append("no-such-file.yaml")
        path.write_text(yaml.safe_dump(kustomization, sort_keys=False))
        self.assert_only("render", "overlays/dev", "no-such-file.yaml")

    def test_a_probe_port_that_is_no_container_port_fails_probe_ports(self):
        self.copy.edit_container("bank-transaction-service",
                                 lambda c: http_probe(c).update(port=9999))
        self.assert_only("probe-ports", "readinessProbe httpGet port 9999")

    def test_a_target_port_that_is_no_container_port_fails_service_ports(self):
        def selects_transaction_service(doc):
            return doc["kind"] == "Service" and "transaction" in doc["metadata"]["name"]

        def retarget(doc):
            doc["spec"]["ports"][0]["targetPort"] = "no-such-port"
        self.copy.edit_resource(selects_transaction_service, retarget)
        self.assert_only("service-ports", "targetPort 'no-such-port'")

    def test_a_broker_password_from_another_secret_fails_broker_users(self):
        self.needs_broker_users()
        def is_broker(doc):
            return doc["kind"] == "StatefulSet" and doc["metadata"]["name"] == "broker"

        def swap(doc):
            for e in pod(doc)[0].get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref.get("name") == "statement-service-nats":
                    ref["name"] = "console-nats"
                    return
            self.skipTest("no broker password comes from statement-service-nats")
        self.copy.edit_resource(is_broker, swap)
        self.assert_only("broker-users", "STATEMENT_SERVICE_PASSWORD", "user 'statement-service'",
                         "Secret console-nats")

    def test_a_foreign_inbox_prefix_fails_broker_users(self):
        self.needs_broker_users()
        def share_inbox(c):
            env = [e for e in c.get("env") or [] if e["name"] != "NATS_INBOX_PREFIX"]
            c["env"] = env + [{"name": "NATS_INBOX_PREFIX", "value": "_INBOX.account-service"}]
        self.copy.edit_container("bank-statement-service", share_inbox)
        self.assert_only("broker-users", "NATS_INBOX_PREFIX", "'_INBOX.statement-service'")

    def test_a_variable_the_binary_does_not_read_fails_env(self):
        def add(c):
            c.setdefault("env", []).append({"name": "ACCOUNT_SERVICE_COLOUR", "value": "blue"})
        self.copy.edit_container("bank-account-service", add)
        self.assert_only("env", "ACCOUNT_SERVICE_COLOUR", "account-service --help")

    def test_a_probe_path_the_binary_does_not_serve_fails_probe_paths(self):
        self.copy.edit_container("bank-console", lambda c: http_probe(c).update(path="/ready"))
        self.assert_only("probe-paths", "/ready", "console answers 404")

    def test_a_service_listening_elsewhere_than_its_probe_port_fails_probe_paths(self):
        def listen_elsewhere(c):
            env = [e for e in c.get("env") or [] if e["name"] != "HTTP_ADDR"]
            c["env"] = env + [{"name": "HTTP_ADDR", "value": "0.0.0.0:8099"}]
        self.copy.edit_container("bank-transaction-service", listen_elsewhere)
        self.assert_only("probe-paths", "nothing listens on port", "listens on 8099")

    def test_a_probe_path_a_starting_service_does_not_serve_fails_probe_paths(self):
        # While it waits for its database and broker, a service answers every path but its
        # own /healthz and /readyz with one 503 "starting": the probe gets no 404, yet the
        # path is no route of the service.
        self.copy.edit_container("bank-account-service",
                                 lambda c: http_probe(c).update(path="/ready"))
        self.assert_only("probe-paths", "/ready", "not one of its routes")

    def test_a_dashboard_query_of_a_series_nobody_exposes_fails_dashboards(self):
        self.needs_observability()
        self.copy.replace_in(DASHBOARD, "outbox_lag_seconds_bucket", "outbox_delay_seconds_bucket")
        self.assert_only("dashboards", "'outbox_delay_seconds_bucket' is exposed by no service")

    def test_a_counter_queried_without_its_total_suffix_fails_dashboards(self):
        self.needs_observability()
        self.copy.replace_in(DASHBOARD, "rate(listener_redeliveries_total[",
                             "rate(listener_redeliveries[")
        self.assert_only("dashboards", "'listener_redeliveries' is exposed by no service")

    def test_a_series_renamed_in_the_source_fails_dashboards(self):
        self.needs_observability()
        self.copy.replace_in("services/kit/src/outbox.rs", '"outbox_lag_seconds"',
                             '"outbox_delay_seconds"')
        self.assert_only("dashboards", "'outbox_lag_seconds_bucket' is exposed by no service")

    def test_a_series_renamed_in_an_atomic_counter_table_fails_dashboards(self):
        self.needs_observability()
        self.copy.replace_in("services/account/src/parked.rs", '"account_unknown_account"',
                             '"account_unknown"')
        self.assert_only("dashboards",
                         "'account_unknown_account_total' is exposed by no service")

    def test_a_registration_the_check_cannot_read_fails_dashboards(self):
        self.needs_observability()
        self.copy.replace_in("services/kit/src/listener_stats.rs", '"listener_consumer_pending"',
                             "PENDING_FAMILY")
        self.assert_only("dashboards", "listener_stats.rs", "cannot tell the name")

    def test_a_dashboard_on_a_data_source_grafana_lacks_fails_dashboards(self):
        self.needs_observability()
        self.copy.replace_in(DASHBOARD, '"uid": "prometheus"', '"uid": "prom"')
        self.assert_only("dashboards", "data source uid 'prom' is not provisioned")

    def test_a_dashboard_that_is_not_json_fails_dashboards(self):
        self.needs_observability()
        self.copy.replace_in(DASHBOARD, "{", "{,")
        self.assert_only("dashboards", "bank.json: not JSON")

    def test_a_scrape_target_port_the_service_lacks_fails_scrape_targets(self):
        self.needs_observability()
        self.copy.replace_in(f"{OBSERVABILITY}/prometheus.yml", "port: 8080", "port: 9100")
        self.assert_only("scrape-targets", "job account-service", "has no port 9100")

    def test_a_scrape_through_a_service_with_a_cluster_ip_fails_scrape_targets(self):
        self.needs_observability()
        self.copy.replace_in(f"{OBSERVABILITY}/prometheus.yml", "[account-service-metrics]",
                             "[account-service]")
        self.assert_only("scrape-targets", "account-service is not headless")

    def test_a_scrape_the_network_policies_refuse_fails_scrape_targets(self):
        self.needs_observability()
        self.copy.replace_in(f"{OBSERVABILITY}/network-policies.yaml", "port: 8222", "port: 8223")
        self.assert_only("scrape-targets", "job broker", "StatefulSet/broker on port 8222",
                         "no egress rule")


if __name__ == "__main__":
    unittest.main()
