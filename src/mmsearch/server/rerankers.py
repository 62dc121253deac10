"""The rerankers a server offers: loaded once at start, chosen by name per request.

A cross-attention reranker is a model (BLIP, a cross-encoder, one trained here),
so which ones a server runs is the operator's choice (``mmsearch serve --reranker
SPEC``, repeatable), never a client's: a request names one of those loaded
(``rerank: "NAME"``) or asks for all of them (``rerank: true``), and a name the
server was not started with is refused. Nothing a client sends is ever loaded or
fetched. The loaded rerankers are shared by every reader, as the encoders are.

A reranker is known by the spec it was started with and, when no other has it,
by its short ``name`` (``blip-itm``, ``cross-encoder``, ``trained``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mmsearch.search.rerank.base import Reranker
from mmsearch.server.checks import InvalidInput

MAX_NAMES = 8
"""Rerankers one request may name."""


def load_rerankers(specs: Iterable[str]) -> dict[str, Reranker]:
    """Load each spec once (raises the loader's error, naming the spec, for a bad one)."""
    from mmsearch.search.rerank.registry import load_reranker

    out: dict[str, Reranker] = {}
    for spec in specs:
        if spec not in out:
            out[spec] = load_reranker(spec)
    return out


def server_rerankers(
    given: Mapping[str, Reranker] | Sequence[Reranker] | None, specs: Iterable[str]
) -> dict[str, Reranker]:
    """The rerankers a server offers: those ``given`` loaded (by name) and ``specs``,
    loaded now; see :func:`named`."""
    pairs: list[tuple[str, Reranker]] = []
    if isinstance(given, Mapping):
        pairs += list(given.items())
    elif given is not None:
        pairs += [(r.name, r) for r in given]
    pairs += list(load_rerankers(specs).items())
    return named(pairs)


def named(pairs: Sequence[tuple[str, Reranker]]) -> dict[str, Reranker]:
    """Rerankers by every name a request may use for them: the key (spec) given, and the
    reranker's own ``name`` where it is not ambiguous."""
    out = dict(pairs)
    counts: dict[str, int] = {}
    for _, r in pairs:
        counts[r.name] = counts.get(r.name, 0) + 1
    for _, r in pairs:
        if counts[r.name] == 1:
            out.setdefault(r.name, r)
    return out


def offered(rerankers: Mapping[str, Reranker]) -> list[str]:
    """The names to show clients: one per reranker (its spec, or its name)."""
    seen: set[int] = set()
    out: list[str] = []
    for key, r in rerankers.items():
        if id(r) not in seen:
            seen.add(id(r))
            out.append(key)
    return out


def choose(rerankers: Mapping[str, Reranker], asked: Any) -> list[Reranker]:
    """The rerankers a request's ``rerank`` value asks for: ``true`` = all, a name or a
    list of names = those; ``false``/absent = none. Raises :class:`InvalidInput`."""
    if asked is None or asked is False:
        return []
    if not rerankers:
        raise InvalidInput(
            "rerank: this server has no reranker (start it with --reranker SPEC to offer one)"
        )
    if asked is True:
        chosen = {id(r): r for r in rerankers.values()}
        return list(chosen.values())
    names = [asked] if isinstance(asked, str) else list(asked)
    out: list[Reranker] = []
    for name in names:
        r = rerankers.get(name)
        if r is None:
            raise InvalidInput(
                f"rerank: no reranker {name!r} on this server; it offers "
                + ", ".join(offered(rerankers))
            )
        if r not in out:
            out.append(r)
    return out
