"""The node API's rate limit: per node token, in the shared cache (see ``accounts.throttles``)."""

from __future__ import annotations

from accounts.throttles import CacheRateThrottle


class NodeRateThrottle(CacheRateThrottle):
    """Per-node rate limit (``NODE_API_RATE``, default 300/min; an agent polls every 30 s)."""

    scope = "node"
    rate_setting = "NODE_API_RATE"
    default_rate = "300/min"

    def get_cache_key(self, request, view) -> str | None:
        node = request.auth
        return self.cache_format % {"scope": self.scope, "ident": node.pk} if node else None
