"""The Prometheus series the project's programs expose, read from their Rust sources.

The dashboards check needs the names every `/metrics` can answer with. They are read from the
registrations in the source rather than from a running binary's `/metrics`: the listener, outbox
and parking families only appear once a service has reached its broker and database, which the
offline checks do not start, and a prebuilt binary (`--binaries`) may be older than the source
the dashboards are written against. The registrations follow a few shapes, all through the
service kit's `Metrics` (services/kit/src/metrics.rs):

- `metrics.counter_fn("name", ..)`, `.counters_fn(..)`: a counter, exposed as `name_total`;
- `metrics.gauge_fn("name", ..)`: a gauge, exposed as `name`;
- `metrics.register("name", help, value)`: the kind of `value` (a `Counter`, `Gauge` or
  `Histogram`, or a `Family` of one) is read from the declaration of the field or variable it
  is cloned from, through `type` aliases of the same file; a histogram is exposed as
  `name_bucket`, `name_sum` and `name_count`;
- any of those with the name in a variable bound by `for (name, ..) in ARRAY`, where ARRAY is
  a `let` array of tuples whose first element is the name's literal;
- `metrics.atomic_counters(stats, &ARRAY)`: a counter for each tuple of such an ARRAY.

The broker's monitor writes its text by hand: every string literal that is a name with its
prefix in HAND_WRITTEN, or a `# HELP`/`# TYPE` line of one, is a series name as it stands. `#[cfg(test)]` modules are left
out. A registration whose name or kind cannot be told this way is reported, so a new shape of
registration shows up as a failure instead of a name silently missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# Sources whose text is written by hand: file -> the prefix of every series name in it.
HAND_WRITTEN = {
    "broker/src/monitor/metrics.rs": "broker_",
}

# The kit's registry itself: its methods pass names through, they register nothing.
REGISTRY = "services/kit/src/metrics.rs"

# Series Prometheus records itself for every target it scrapes.
PROMETHEUS_SERIES = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}

CALL = re.compile(r"\.(register|counter_fn|gauge_fn|counters_fn|atomic_counters)\(")
TEST_MODULE = re.compile(r"^\s*#\[cfg\(test\)\]\s*\n\s*(pub\s+)?mod\s+\w+", re.MULTILINE)
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
KINDS = ("Histogram", "Counter", "Gauge")
CHAR = re.compile(r"'(?:[^'\\]|\\.[^']*)'")


@dataclass
class Exposed:
    """Series names and where each family is registered; `problems` are registrations that
    could not be read."""

    names: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def exposed(root: Path) -> Exposed | None:
    """Every series name the services and the broker expose, None without their sources."""
    services = root / "services"
    if not services.is_dir():
        return None
    out = Exposed()
    for path in sorted(services.glob("*/src/**/*.rs")):
        rel = path.relative_to(root).as_posix()
        if rel == REGISTRY or rel in HAND_WRITTEN:
            continue
        read_registrations(rel, without_tests(path.read_text()), out)
    for rel, prefix in HAND_WRITTEN.items():
        path = root / rel
        if path.is_file():
            name = re.escape(prefix) + r"[a-z0-9_]+"
            for literal in STRING.findall(without_tests(path.read_text())):
                found = re.fullmatch(f"(?:# (?:HELP|TYPE) )?({name})(?: .*)?", literal, re.DOTALL)
                if found:
                    out.names.setdefault(found.group(1), rel)
    return out


def without_tests(text: str) -> str:
    """The source up to its first `#[cfg(test)] mod`."""
    found = TEST_MODULE.search(text)
    return text[: found.start()] if found else text


def read_registrations(rel: str, text: str, out: Exposed) -> None:
    """Adds the families registered in one source file."""
    for call in CALL.finditer(text):
        method = call.group(1)
        args, _ = split_args(text, call.end() - 1)
        if method == "register" and len(args) != 3:
            continue  # `stats.register(metrics)`: a type's own method, which calls these
        line = text.count("\n", 0, call.start()) + 1
        where = f"{rel}:{line}"
        if method == "atomic_counters":
            table = args[1].lstrip("&").strip() if len(args) == 2 else ""
            names = array_names(text[: call.start()], table)
        else:
            names = family_names(text[: call.start()], args[0] if args else "")
        if not names:
            out.problems.append(f"{where}: cannot tell the name of the family {method} "
                                f"registers ({args[0] if args else 'no argument'})")
            continue
        if method == "register":
            kind = value_kind(text, args[2])
            if kind is None:
                out.problems.append(f"{where}: cannot tell whether {args[2]!r} (family "
                                    f"{names[0]}) is a Counter, Gauge or Histogram")
                continue
        else:
            kind = "Gauge" if method == "gauge_fn" else "Counter"
        for name in names:
            for series in series_of(name, kind):
                out.names.setdefault(series, where)


def series_of(family: str, kind: str) -> list[str]:
    """The series names prometheus-client writes for a family of that kind."""
    if kind == "Counter":
        return [f"{family}_total"]
    if kind == "Histogram":
        return [f"{family}_bucket", f"{family}_sum", f"{family}_count"]
    return [family]


def family_names(before: str, arg: str) -> list[str]:
    """The family name(s) of a call's first argument: a literal, or a loop variable over an
    array of tuples that start with literals."""
    literal = STRING.fullmatch(arg)
    if literal:
        return [literal.group(1)]
    if not re.fullmatch(r"[a-z_]\w*", arg):
        return []
    loops = list(re.finditer(r"for\s*\(\s*" + arg + r"\b[^)]*\)\s*in\s+(\w+)", before))
    if not loops:
        return []
    return array_names(before, loops[-1].group(1))


def array_names(before: str, array: str) -> list[str]:
    """The first literals of the tuples of the last `let ARRAY .. = [..]` in `before`."""
    if not re.fullmatch(r"[a-z_]\w*", array):
        return []
    lets = list(re.finditer(r"let\s+" + array + r"\b[^=]*=\s*\[", before))
    if not lets:
        return []
    elements, _ = split_args(before, lets[-1].end() - 1)
    names = []
    for element in elements:
        first = STRING.search(element)
        if not first:
            return []
        names.append(first.group(1))
    return names


def value_kind(text: str, expr: str) -> str | None:
    """Counter, Gauge or Histogram: the kind of the value `expr` (`families.handled.clone()`)
    by the declarations of its last identifier and the file's type aliases."""
    words = [w for w in re.findall(r"[A-Za-z_]\w*", expr) if w not in ("clone", "self")]
    if not words:
        return None
    ident = words[-1]
    declared = re.findall(r"\b" + ident + r"\s*:\s*([^;=\n]+)", text)
    declared += re.findall(r"let\s+(?:mut\s+)?" + ident + r"\s*=\s*([^;]+);", text)
    declared.append(expr)
    aliases = dict(re.findall(r"\btype\s+(\w+)\s*=\s*([^;]+);", text))
    for alias, definition in aliases.items():
        if any(re.search(r"\b" + alias + r"\b", d) for d in declared):
            declared.append(definition)
    kinds = {k for k in KINDS for d in declared if re.search(r"\b" + k + r"\b", d)}
    return kinds.pop() if len(kinds) == 1 else None


def split_args(text: str, open_at: int) -> tuple[list[str], int]:
    """The top-level comma-separated parts between the bracket at `open_at` and its match."""
    closing = {"(": ")", "[": "]", "{": "}"}
    depth, parts, start, i = 0, [], open_at + 1, open_at
    while i < len(text):
        ch = text[i]
        literal = CHAR.match(text, i) if ch == "'" else STRING.match(text, i) if ch == '"' else None
        if literal:
            i = literal.end()
            continue
        if ch in closing:
            depth += 1
        elif ch in closing.values():
            depth -= 1
            if depth == 0:
                parts.append(text[start:i])
                return [p.strip() for p in parts if p.strip()], i
        elif ch == "," and depth == 1:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    return [p.strip() for p in parts if p.strip()], i


# Words of PromQL that are not series names: aggregations, operators and literals.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile", "limitk", "limit_ratio", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "and", "or", "unless", "offset", "atan2", "inf", "nan", "start",
    "end",
}


def promql_series(expr: str) -> set[str]:
    """The series names a PromQL expression selects (Grafana's `$variables` removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "1", text)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for found in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        word, call = found.group(1), found.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names
