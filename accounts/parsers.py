"""The API's JSON parser: DRF's, with a limit on nesting depth.

``[[[[...]]]]`` a hundred thousand levels deep is a few hundred kilobytes, inside every body-size
limit, and made ``json.load`` (or, below its limit, the serializers, ``JSONField`` and the audit
log walking the value) raise ``RecursionError``: a 500. No payload of the portal nests anywhere
near :data:`MAX_DEPTH` (CDS Hooks prefetch bundles, the deepest, stay under 15 levels).
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 64
TOO_DEEP = "JSON nested too deeply."


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests lists/dicts more than ``limit`` levels (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads(data: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` for JSON the portal fetches itself; ``ValueError`` when too deep."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    if depth_exceeds(value, limit):
        raise ValueError(TOO_DEEP)
    return value


class DepthLimitedJSONParser(JSONParser):
    """Answers 400 "JSON nested too deeply." instead of a RecursionError."""

    max_depth = MAX_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if depth_exceeds(data, self.max_depth):
            raise ParseError(TOO_DEEP)
        return data
