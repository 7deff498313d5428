"""Tests of manifests.py: what a rendered pod becomes, and what it refuses to fake.

Run: python3 -m unittest discover -s infra/containers -p 'test_*.py'
"""

import base64
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifests import ManifestError, pods, render  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def secret(name, **data):
    return {"kind": "Secret", "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def deployment(container, replicas=1, **spec):
    return {
        "kind": "Deployment", "metadata": {"name": "api"},
        "spec": {"replicas": replicas, "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {"containers": [container], **spec}}},
    }


def service(port=8080, target="http", **extra):
    return {"kind": "Service", "metadata": {"name": "api-svc"},
            "spec": {"selector": {"app": "api"},
                     "ports": [{"port": port, "targetPort": target}], **extra}}


BASE_CONTAINER = {
    "name": "api", "image": "bank-api",
    "ports": [{"name": "http", "containerPort": 8080}],
    "env": [
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "URL", "value": "nats://u:$(PASSWORD)@broker:4222"},
        {"name": "LITERAL", "value": "$$(PASSWORD)"},
    ],
    "envFrom": [{"secretRef": {"name": "db"}}],
    "args": ["--id", "$(POD)"],
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
    "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]}},
    "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}},
}


class PodsTest(unittest.TestCase):
    def resources(self, container=None, **kw):
        return [secret("s", pw="hunter2"), secret("db", DATABASE_URL="postgres://x"),
                deployment(container or BASE_CONTAINER, **kw), service()]

    def test_env_secrets_downward_api_and_expansion(self):
        pod = pods(self.resources(replicas=2))[1]
        self.assertEqual(pod.name, "api-1")
        self.assertEqual(pod.env["PASSWORD"], "hunter2")
        self.assertEqual(pod.env["POD"], "api-1")
        self.assertEqual(pod.env["URL"], "nats://u:hunter2@broker:4222")
        self.assertEqual(pod.env["LITERAL"], "$(PASSWORD)")
        self.assertEqual(pod.env["DATABASE_URL"], "postgres://x")
        self.assertEqual(pod.args, ["--id", "api-1"])

    def test_probe_security_limits_and_aliases(self):
        pod = pods(self.resources())[0]
        self.assertEqual(pod.readiness.docker_exec_args(),
                         ["healthcheck", "http://127.0.0.1:8080/readyz"])
        self.assertTrue(pod.read_only_root and pod.no_new_privileges)
        self.assertEqual(pod.cap_drop, ["ALL"])
        self.assertEqual((pod.memory, pod.cpus), ("256m", "0.5"))
        self.assertEqual(pod.aliases, ["api-svc"])

    def test_a_missing_secret_a_probe_port_and_a_target_port_are_refused(self):
        with self.assertRaisesRegex(ManifestError, "Secret s is not in the rendered"):
            pods(self.resources()[1:])
        bad_probe = dict(BASE_CONTAINER,
                         readinessProbe={"httpGet": {"path": "/readyz", "port": "web"}})
        with self.assertRaisesRegex(ManifestError, "probe port 'web' is not a containerPort"):
            pods(self.resources(bad_probe))
        resources = self.resources()
        resources[-1] = service(target="metrics")
        with self.assertRaisesRegex(ManifestError, "targetPort 'metrics'"):
            pods(resources)
        resources[-1] = service(port=80, target="http")
        with self.assertRaisesRegex(ManifestError, "cannot remap ports"):
            pods(resources)

    def test_the_real_base_renders_into_pods_with_authentication(self):
        all_pods = {p.name: p for p in pods(render(ROOT / "infra/k8s/base"))}
        self.assertIn("broker-0", all_pods)
        self.assertEqual(len([n for n in all_pods if n.startswith("account-service-")]), 2)
        for name in ("account-service-0", "transaction-service-0", "console-0"):
            self.assertIn("NATS_USER", all_pods[name].env, name)
            self.assertIn("broker", " ".join(all_pods["broker-0"].aliases))


if __name__ == "__main__":
    unittest.main()
