"""JSON answers that always encode, whatever text the library holds.

File names on POSIX are bytes; Python keeps those that are not UTF-8 as lone
surrogates (``\\udcff``), which UTF-8 cannot encode, so a hit, an item, a job
report or an error message naming such a file would fail to render (a 500).
Here such a character is written as its JSON escape (``"\\udcff"``): the body is
valid UTF-8 and a client that parses it gets back exactly the text the server had.
Numbers that JSON cannot hold (NaN, infinities) become ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:  # NaN or infinity somewhere: JSON has no such numbers
            text = json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":"))
        # A lone surrogate can only sit inside a JSON string, where "\udcff" is its escape.
        return text.encode("utf-8", "backslashreplace")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
