"""Communities (connected components) and money cycles (elementary directed cycles) of a
subgraph: a line-by-line port of the Rust analyzer's ``src/graph.rs``, so that both answer the
same JSON for the same request, including where a bounded cycle search stops.

The request and response shapes are the analyzer's HTTP API (see the example's README).
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Most cycles reported for one subgraph; more set ``truncated``.
MAX_CYCLES = 64
#: Longest cycle searched for, in accounts.
MAX_CYCLE_LEN = 8
#: Most accounts an analysis accepts; a larger subgraph is rejected as invalid input.
MAX_ACCOUNTS = 10_000
#: DFS steps the cycle search may take before it stops and reports ``truncated``.
MAX_STEPS = 200_000


class BadRequest(ValueError):
    """The body is not a subgraph (HTTP 400)."""


class InvalidSubgraph(ValueError):
    """A well-formed subgraph that cannot be analysed (HTTP 422)."""


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise BadRequest(f"duplicate field {key!r}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not valid JSON")


def _field(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise BadRequest(f"{where}: expected an object")
    if key not in obj:
        raise BadRequest(f"{where}: missing field {key!r}")
    return obj[key]


def _string(obj: Any, key: str, where: str) -> str:
    value = _field(obj, key, where)
    if not isinstance(value, str):
        raise BadRequest(f"{where}.{key}: expected a string")
    return value


def _number(obj: Any, key: str, where: str) -> float:
    value = _field(obj, key, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{where}.{key}: expected a number")
    try:
        return float(value)
    except OverflowError as e:
        raise BadRequest(f"{where}.{key}: {e}") from e


def _list(obj: Any, key: str, where: str) -> list[Any]:
    value = _field(obj, key, where)
    if not isinstance(value, list):
        raise BadRequest(f"{where}.{key}: expected an array")
    return value


def parse_subgraph(body: bytes) -> dict[str, Any]:
    """Parses and checks a request body; raises :class:`BadRequest` when it is not a subgraph.

    Strict like the Rust analyzer's serde model: required fields, string ids, numeric amounts,
    no duplicate keys, no ``NaN``/``Infinity``; unknown fields are ignored.
    """
    try:
        raw = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRequest(str(e)) from e
    root = _string(raw, "root", "subgraph")
    accounts = [
        {
            "id": _string(a, "id", f"accounts[{i}]"),
            "name": _string(a, "name", f"accounts[{i}]"),
            "risk_level": _string(a, "risk_level", f"accounts[{i}]"),
        }
        for i, a in enumerate(_list(raw, "accounts", "subgraph"))
    ]
    transactions = [
        {
            "from": _string(t, "from", f"transactions[{i}]"),
            "to": _string(t, "to", f"transactions[{i}]"),
            "amount": _number(t, "amount", f"transactions[{i}]"),
        }
        for i, t in enumerate(_list(raw, "transactions", "subgraph"))
    ]
    return {"root": root, "accounts": accounts, "transactions": transactions}


def round2(x: float) -> float:
    """Rounds to cents, halves away from zero (Rust's ``f64::round``, not Python's ``round``)."""
    y = abs(x) * 100.0
    if not math.isfinite(y):
        return x * 100.0 / 100.0
    whole = math.floor(y)
    if y - whole >= 0.5:
        whole += 1.0
    return math.copysign(whole, x) / 100.0


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent: list[int], a: int, b: int) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)


def _find_cycles(successors: list[list[int]]) -> tuple[list[list[int]], bool]:
    """Elementary directed cycles, each once, starting at its smallest node: from each start
    ``s``, a depth-first search through nodes greater than ``s`` back to ``s``."""
    cycles: list[list[int]] = []
    steps = 0
    on_path = [False] * len(successors)
    for start in range(len(successors)):
        path = [start]
        cursors = [0]
        on_path[start] = True
        while path:
            node = path[-1]
            steps += 1
            if steps > MAX_STEPS or len(cycles) >= MAX_CYCLES:
                return cycles, True
            k = cursors[-1]
            succ = successors[node]
            nxt = succ[k] if k < len(succ) else None
            cursors[-1] += 1
            if nxt is None:
                on_path[node] = False
                path.pop()
                cursors.pop()
            elif nxt == start:
                cycles.append(list(path))
            elif nxt > start and not on_path[nxt] and len(path) < MAX_CYCLE_LEN:
                on_path[nxt] = True
                path.append(nxt)
                cursors.append(0)
    return cycles, False


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> str:
    """Compact JSON like ``serde_json::to_vec``: a non-finite number (a sum that overflowed)
    becomes ``null`` instead of Python's invalid ``Infinity``."""
    return json.dumps(_json_safe(value), separators=(",", ":"), allow_nan=False)


def analyze(graph: dict[str, Any]) -> dict[str, Any]:
    """Finds the communities, money cycles and sinks of a parsed subgraph.

    Raises :class:`InvalidSubgraph` for more than :data:`MAX_ACCOUNTS` accounts or a
    transaction naming an account that is not in ``accounts``.
    """
    accounts = graph["accounts"]
    transactions = graph["transactions"]
    if len(accounts) > MAX_ACCOUNTS:
        raise InvalidSubgraph(
            f"{len(accounts)} accounts, at most {MAX_ACCOUNTS} are analysed"
        )
    names = sorted({a["id"] for a in accounts})
    index = {name: i for i, name in enumerate(names)}
    n = len(names)

    # Directed adjacency with the largest amount per (from, to) pair.
    out: list[dict[int, float]] = [{} for _ in range(n)]
    parent = list(range(n))
    sends = [False] * n
    receives = [False] * n
    for t in transactions:
        for end in ("from", "to"):
            if t[end] not in index:
                raise InvalidSubgraph(
                    f"transaction names unknown account {json.dumps(t[end])}"
                )
        src, dst = index[t["from"]], index[t["to"]]
        out[src][dst] = max(out[src].get(dst, 0.0), t["amount"])
        sends[src] = True
        receives[dst] = True
        _union(parent, src, dst)

    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(_find(parent, i), []).append(i)
    totals: dict[int, float] = {}
    for t in transactions:
        root = _find(parent, index[t["from"]])
        totals[root] = totals.get(root, 0.0) + t["amount"]
    communities = [
        {
            "accounts": [names[i] for i in members],
            "total_amount": round2(totals.get(root, 0.0)),
        }
        for root, members in sorted(groups.items())
    ]
    communities.sort(key=lambda c: -len(c["accounts"]))

    successors = [sorted(edges) for edges in out]
    found, truncated = _find_cycles(successors)
    cycles = []
    for c in found:
        total = 0.0
        for k, i in enumerate(c):
            total += out[i].get(c[(k + 1) % len(c)], 0.0)
        cycles.append(
            {"accounts": [names[i] for i in c], "total_amount": round2(total)}
        )
    sinks = [names[i] for i in range(n) if receives[i] and not sends[i]]
    return {
        "root": graph["root"],
        "communities": communities,
        "cycles": cycles,
        "sinks": sinks,
        "truncated": truncated,
    }
