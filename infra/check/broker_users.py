"""The broker logins of the rendered manifests agree with the broker's configuration.

`check_broker_users(ctx)` returns (render, message) per failure. A broker container is one whose
mounted ConfigMaps or Secrets hold a NATS configuration with an `authorization` block (the
bundled broker and the nats overlay's nodes both mount broker.conf/nats.conf with auth.conf);
a client is any other container that gets `NATS_USER` from `env` or `envFrom`. For each client
and each broker of the same render:

- its user is one of the configuration's users;
- that user's password variable (`password: $NAME`) is set on the broker container from the
  same Secret and key as the client's `NATS_PASSWORD`, so each password is written down once
  and both sides roll together;
- when the client sets `NATS_INBOX_PREFIX`, it is `_INBOX.<user>` and the user may subscribe
  to `_INBOX.<user>.>` (the replies of every JetStream call it makes arrive there).

What each user may publish is checked where it can be: by the container run
(infra/containers/run_stack.py), against the real broker.
"""

from __future__ import annotations

import re

import manifests as m

USER = re.compile(r"\buser\s*[:=]\s*\"?([A-Za-z0-9_.-]+)\"?")
PASSWORD = re.compile(r"\bpassword\s*[:=]\s*\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def without_comments(text: str) -> str:
    """The configuration without `#` and `//` comments (quoted strings kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            end = text.find(ch, i + 1)
            end = n if end < 0 else end + 1
            out.append(text[i:end])
            i = end
        elif ch == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def users(config: str) -> dict[str, tuple[str | None, str]]:
    """{user: (password variable or None, the text of its entry)} of an authorization block."""
    text = without_comments(config)
    if not re.search(r"\bauthorization\s*[:=]?\s*\{", text):
        return {}
    found = {}
    matches = list(USER.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        entry = text[match.start():end]
        password = PASSWORD.search(entry)
        found[match.group(1)] = (password.group(1) if password else None, entry)
    return found


def mounted_config(resources: list, pod_spec: dict, container: dict) -> str:
    """The text of every ConfigMap and Secret file mounted into the container."""
    mounted = {vm.get("name") for vm in container.get("volumeMounts") or []}
    texts = []
    for vol in pod_spec.get("volumes") or []:
        if vol.get("name") not in mounted:
            continue
        sources = [vol] + list((vol.get("projected") or {}).get("sources") or [])
        for src in sources:
            if "configMap" in src:
                obj = m.find(resources, "ConfigMap", src["configMap"].get("name"))
            elif "secret" in src:
                obj = m.find(resources, "Secret", src["secret"].get("secretName")
                             or src["secret"].get("name"))
            else:
                continue
            texts += list(m.text_data(obj).values())
    return "\n".join(texts)


def variable_source(resources: list, container: dict, name: str):
    """Where a container's variable comes from: ("value", text), ("secret", (secret, key)), or
    None when it is not set. `env` wins over `envFrom`, as in Kubernetes."""
    for e in container.get("env") or []:
        if isinstance(e, dict) and e.get("name") == name:
            ref = m.dig(e, ("valueFrom", "secretKeyRef"))
            if isinstance(ref, dict):
                return "secret", (ref.get("name"), ref.get("key"))
            return "value", e.get("value")
    for src in container.get("envFrom") or []:
        ref = src.get("secretRef")
        if not ref:
            continue
        key = name[len(src.get("prefix", "")):] if name.startswith(src.get("prefix", "")) else None
        if key and key in m.text_data(m.find(resources, "Secret", ref.get("name"))):
            return "secret", (ref.get("name"), key)
    return None


def nats_user(resources: list, container: dict) -> str | None:
    """The NATS_USER a container logs in as, None when it sets none."""
    source = variable_source(resources, container, "NATS_USER")
    if source is None:
        return None
    kind, where = source
    if kind == "value":
        return where
    secret, key = where
    return m.text_data(m.find(resources, "Secret", secret)).get(key)


def check_broker_users(ctx) -> list[tuple[str, str]]:
    """Client logins the broker's configuration and environment do not match."""
    failures = []
    for r in ctx.renders:
        brokers, clients = [], []
        for res, spec in m.pod_specs(r.resources):
            for c in m.containers(spec):
                config = users(mounted_config(r.resources, spec, c))
                if config:
                    brokers.append((f"{m.ref(res)} container {c.get('name')}", c, config))
                elif nats_user(r.resources, c):
                    clients.append((f"{m.ref(res)} container {c.get('name')}", c))
        for where, client in clients:
            user = nats_user(r.resources, client)
            password = variable_source(r.resources, client, "NATS_PASSWORD")
            prefix = variable_source(r.resources, client, "NATS_INBOX_PREFIX")
            for broker_where, broker, config in brokers:
                if user not in config:
                    failures.append((r.name, f"{where} logs in as {user!r}, which the "
                                     f"configuration of {broker_where} does not list "
                                     f"(it has {', '.join(sorted(config))})"))
                    continue
                variable, entry = config[user]
                given = variable_source(r.resources, broker, variable) if variable else None
                if variable is None:
                    failures.append((r.name, f"{broker_where}: user {user!r} has no "
                                     "`password: $NAME` in its configuration"))
                elif given is None:
                    failures.append((r.name, f"{broker_where}: sets no {variable}, the password "
                                     f"of user {user!r} (its configuration reads ${variable})"))
                elif given != password:
                    failures.append((r.name, f"{broker_where}: {variable} (user {user!r}) comes "
                                     f"from {describe(given)}, but {where} logs in with "
                                     f"NATS_PASSWORD from {describe(password)}"))
                if prefix is not None:
                    inbox = f"_INBOX.{user}"
                    if prefix != ("value", inbox):
                        failures.append((r.name, f"{where}: NATS_INBOX_PREFIX is "
                                         f"{describe(prefix)}, not {inbox!r}, the only inbox "
                                         f"user {user!r} may subscribe to"))
                    elif f'"{inbox}.>"' not in entry and f"'{inbox}.>'" not in entry:
                        failures.append((r.name, f"{broker_where}: user {user!r} may not "
                                         f"subscribe to {inbox}.>, where {where} takes its "
                                         "replies (NATS_INBOX_PREFIX)"))
    return failures


def describe(source) -> str:
    """A variable's source for messages."""
    if source is None:
        return "nowhere"
    kind, where = source
    if kind == "value":
        return repr(where)
    return f"Secret {where[0]} key {where[1]}"

