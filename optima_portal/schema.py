"""What the OpenAPI document at /api/schema/ describes: the API for people (session or API token).

The node agents' API (/api/node/) is left out: its wire format is the pydantic models of
``optima_node.schemas`` (docs/node-agent.md, "Wire protocol"), and a node token, not a person,
authenticates there.
"""

from __future__ import annotations

NODE_API_PREFIX = "/api/node/"


def exclude_node_api(endpoints, **kwargs):
    """drf-spectacular preprocessing hook."""
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith(NODE_API_PREFIX)]
