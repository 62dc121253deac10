"""``HEAD`` for every ``GET`` route: the same answer without its body.

FastAPI routes answer only the methods they name, so ``HEAD /health`` (what
load balancers and uptime checks send) was a 405. Each GET route gets a twin
that answers HEAD with the same endpoint, left out of the OpenAPI schema; the
server sends the headers (``Content-Length`` included) and drops the body.
Routes that already answer HEAD themselves (originals, with ranges) are kept.
Twins are added to each router before the app includes it (FastAPI keeps an
included router as one entry, not as its routes).
"""

from __future__ import annotations

from fastapi.routing import APIRoute, APIRouter


def add_head_routes(router: APIRouter) -> int:
    """Add the HEAD twins to ``router`` (again is harmless); returns how many were added."""
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    has_head = {r.path for r in routes if "HEAD" in (r.methods or ())}
    added = 0
    for route in routes:
        if "GET" not in (route.methods or ()) or route.path in has_head:
            continue
        router.add_api_route(
            route.path.removeprefix(router.prefix),  # add_api_route puts the prefix back
            route.endpoint,
            methods=["HEAD"],
            include_in_schema=False,
            response_class=route.response_class,
            response_model=route.response_model,
            dependencies=route.dependencies,
            name=f"{route.name}_head",
        )
        has_head.add(route.path)
        added += 1
    return added
