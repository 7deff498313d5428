#!/usr/bin/env python3
"""Offline checks of the container and Kubernetes deliverables: infra/ and skaffold.yaml.

Run from the repository root (or point --root at a copy of it):

    python3 infra/check/check.py            # every check; exits 1 if any fails
    python3 infra/check/check.py --only env --only probe-paths

Each check prints `ok` or one `FAIL` line per problem; a problem found in several renders (the base
and the overlays built on it) is printed once with every render it is in. The checks:

    render             every kustomization (infra/k8s/base, infra/k8s/overlays/*) renders
    kubernetes-schema  every rendered resource is valid, strictly, for Kubernetes 1.32
    skaffold-schema    skaffold.yaml is valid against the skaffold v4beta14 schema
    skaffold-refs      skaffold's Dockerfiles, targets (stages), kustomize paths and
                       port-forwarded Service ports exist
    hadolint           hadolint passes on the Dockerfiles
    images             every image is a skaffold artifact or an allowed third-party image
    probe-ports        every probe's port is a containerPort of its container
    service-ports      every Service's targetPort is a containerPort of the pods it selects
    broker-users       every broker login is a user of the broker's configuration, its password
                       comes to both sides from one Secret, and its inbox is its own
    env                every variable set on our containers is one the binary reads
    probe-paths        every probe of our containers is answered (not 404) by the real binary
    dashboards         every Grafana dashboard parses, queries only series the services and the
                       broker expose, and uses a provisioned data source
    scrape-targets     every Prometheus scrape target is a Service and port of the render, and
                       the network policies let Prometheus reach it

The modules beside this file hold them: manifests.py (render, kubernetes-schema), build_config.py
(skaffold-*, hadolint), cross.py (images, ports, env), broker_users.py, binaries.py and
netns_run.py (probe-paths), observability.py and series.py (dashboards, scrape-targets).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import binaries as b  # noqa: E402
import broker_users  # noqa: E402
import build_config as bc  # noqa: E402
import cross  # noqa: E402
import manifests as m  # noqa: E402
import observability  # noqa: E402

CHECKS = [
    "render",
    "kubernetes-schema",
    "skaffold-schema",
    "skaffold-refs",
    "hadolint",
    "images",
    "probe-ports",
    "service-ports",
    "broker-users",
    "env",
    "probe-paths",
    "dashboards",
    "scrape-targets",
]


class Context:
    """What the checks share: the repository, its renders, skaffold's artifacts, the binaries."""

    def __init__(self, root: Path, bin_dir: Path | None, verbose: bool = False):
        self.root = root
        self.verbose = verbose
        self.renders: list[m.Render] = []
        self.render_failures: list[tuple[str, str]] = []
        self.skaffold, self.skaffold_error = bc.load_skaffold(root)
        self.artifacts = bc.artifacts(root, self.skaffold or [])
        self.binaries = b.Binaries(root, bin_dir)
        self.notes: list[tuple[str, str, str]] = []
        self.unknown_targets: list[tuple[str, str]] = []
        started = time.monotonic()
        kustomizations = m.kustomizations(root)
        if not kustomizations:
            self.render_failures.append(("-", "no kustomization in infra/k8s/base or "
                                         "infra/k8s/overlays/*"))
        for name, directory in kustomizations:
            render, error = m.render(name, directory)
            if render is None:
                self.render_failures.append((name, f"kubectl kustomize failed: {error}"))
            else:
                self.renders.append(render)
        self.render_seconds = time.monotonic() - started

    def note(self, check: str, where: str, message: str) -> None:
        """Something a check did not do, printed under it."""
        self.notes.append((check, where, message))

    def artifact_for(self, container: dict) -> bc.Artifact | None:
        """The skaffold artifact whose image the container runs, None for a third-party image."""
        repo = m.image_repository(container.get("image") or "")
        return next((art for art in self.artifacts if art.image == repo), None)

    def binary_for(self, container: dict) -> str | None:
        """The binary our image runs (by its artifact's target, or, when that target is not a
        stage, by its image name `bank-<binary>`), None for a third-party image."""
        art = self.artifact_for(container)
        if art is None:
            return None
        if art.target in b.TARGET_BINARIES:
            return b.TARGET_BINARIES[art.target][1]
        is_stage = art.dockerfile.is_file() and art.target in bc.dockerfile_stages(art.dockerfile)
        by_name = art.image.rsplit("/", 1)[-1].removeprefix("bank-")
        if not is_stage and by_name in b.TARGET_BINARIES:
            return b.TARGET_BINARIES[by_name][1]
        self.unknown_targets.append(
            ("-", f"artifact {art.image}: target {art.target!r} runs no binary the checks know "
             f"(binaries.TARGET_BINARIES has {', '.join(b.TARGET_BINARIES)})"))
        return None

    def image_config(self, container: dict, binary: str) -> dict:
        """Entrypoint, cmd, env and workdir of the container's image, from its Dockerfile; when
        that is missing, the image is taken to run the binary with no arguments."""
        art = self.artifact_for(container)
        if (art and art.target and art.dockerfile.is_file()
                and art.target in bc.dockerfile_stages(art.dockerfile)):
            return bc.image_config(art.dockerfile, art.target)
        self.note("probe-paths", "-", f"{container.get('image')}: its Dockerfile target is "
                  f"missing; run as if its ENTRYPOINT were [{binary!r}]")
        return {"entrypoint": [binary], "cmd": [], "env": {}, "workdir": "/"}

    def our_binaries(self) -> set[str]:
        """The binaries of the images the renders use."""
        names = set()
        for r in self.renders:
            for _, spec in m.pod_specs(r.resources):
                for c in m.containers(spec):
                    name = self.binary_for(c)
                    if name:
                        names.add(name)
        return names


def run_check(name: str, ctx: Context) -> list[tuple[str, str]]:
    """The failures of one check, as (render or file, message)."""
    no_skaffold = [("skaffold.yaml", ctx.skaffold_error)] if ctx.skaffold is None else None
    if name == "render":
        return ctx.render_failures
    if name == "kubernetes-schema":
        return m.check_kubernetes_schema(ctx.renders)
    if name == "skaffold-schema":
        return no_skaffold or [("skaffold.yaml", f) for f in bc.check_skaffold_schema(ctx.skaffold)]
    if name == "skaffold-refs":
        if no_skaffold:
            return no_skaffold
        renders = {r.path.resolve(): r.resources for r in ctx.renders}
        found = bc.check_skaffold_refs(ctx.root, ctx.skaffold)
        found += bc.check_port_forwards(ctx.root, ctx.skaffold, renders)
        return [("skaffold.yaml", f) for f in found]
    if name == "hadolint":
        files = bc.dockerfiles(ctx.root, ctx.skaffold)
        return [("Dockerfile", f) for f in bc.check_hadolint(ctx.root, files)]
    if name == "images":
        return cross.check_images(ctx)
    if name == "probe-ports":
        return cross.check_probe_ports(ctx)
    if name == "service-ports":
        return cross.check_service_ports(ctx)
    if name == "broker-users":
        return broker_users.check_broker_users(ctx)
    if name == "dashboards":
        return observability.check_dashboards(ctx)
    if name == "scrape-targets":
        return observability.check_scrape_targets(ctx)
    if name in ("env", "probe-paths"):
        ctx.binaries.build(ctx.our_binaries())
        if ctx.binaries.build_note and name == "env":
            ctx.note(name, "-", ctx.binaries.build_note)
        found = cross.check_env(ctx) if name == "env" else b.check_probe_paths(ctx)
        for stale in ctx.binaries.stale:
            ctx.note(name, "-", stale)
        return [("binaries", e) for e in ctx.binaries.errors] + ctx.unknown_targets + found
    raise ValueError(name)


def group(failures: list[tuple[str, str]]) -> list[str]:
    """One line per distinct message, naming every render it appears in."""
    by_message: dict[str, list[str]] = {}
    for where, message in failures:
        places = by_message.setdefault(message, [])
        if where not in places:
            places.append(where)
    return [f"{', '.join(p for p in places if p != '-') or '-'}: {msg}".removeprefix("-: ")
            for msg, places in by_message.items()]


def run_all(root: Path, bin_dir: Path | None = None, only: list[str] | None = None,
            report=None, verbose: bool = False) -> dict[str, tuple[list[str], list[str]]]:
    """Runs the checks; returns {check: (failure lines, note lines)}, calling `report` on each."""
    ctx = Context(root.resolve(), bin_dir.resolve() if bin_dir else None, verbose)
    results = {}
    for name in only or CHECKS:
        t = time.monotonic()
        failures = group(run_check(name, ctx))
        notes = group([(where, msg) for check, where, msg in ctx.notes if check == name])
        results[name] = (failures, notes)
        if report:
            took = time.monotonic() - t + (ctx.render_seconds if name == "render" else 0)
            report(name, failures, notes, took)
    return results


def print_result(name: str, failures: list[str], notes: list[str], seconds: float) -> None:
    """One check's outcome on stdout."""
    print(f"{'FAIL' if failures else 'ok':4} {name} ({seconds:.1f}s)", flush=True)
    for line in failures:
        print(f"     [{name}] {line}")
    for note in notes:
        print(f"     note: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="the repository (or a copy of it) to check; default: .")
    parser.add_argument("--only", action="append", choices=CHECKS, metavar="CHECK",
                        help=f"run only this check (repeatable): {', '.join(CHECKS)}")
    parser.add_argument("--binaries", type=Path, default=None,
                        help="directory with prebuilt host binaries (default: cargo build them "
                        "in --root and use target/debug)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="say how each binary was run and what each probe got")
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = run_all(args.root, args.binaries, args.only, report=print_result,
                      verbose=args.verbose)
    failed = [name for name, (failures, _) in results.items() if failures]
    took = f"{time.monotonic() - started:.1f}s"
    if failed:
        print(f"infra check: {len(failed)} of {len(results)} checks failed "
              f"({', '.join(failed)}) in {took}")
        return 1
    print(f"infra check: all {len(results)} checks ok in {took}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
