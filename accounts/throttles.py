"""API rate limits, counted in the shared cache (``CACHE_URL``) so every server process sees one count.

One mechanism for every limit: a sliding-window counter per (scope, client) in Django's default
cache. Each request increments the current window's counter atomically (``cache.incr``: atomic in
Redis), so concurrent requests in several gunicorn workers cannot both take the last slot; a
refused request gives its slot back, so a client flooding the API still gets exactly its rate.
The previous window's count is weighted by how much of it still lies within the last ``duration``.

With the in-process default cache (development) each process counts alone: production must set
``CACHE_URL`` to Redis (``manage.py check --deploy`` warns otherwise, see ``accounts.checks``).
Rates are read from settings on every request (``API_ANON_RATE``, ``API_USER_RATE``, ...), an empty
rate switches a limit off.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class CacheRateThrottle(SimpleRateThrottle):
    """A limit named by ``scope`` whose rate is the Django setting ``rate_setting``."""

    rate_setting: str = ""
    default_rate: str | None = None

    def get_rate(self) -> str | None:
        return getattr(settings, self.rate_setting, self.default_rate) or None

    def counter_keys(self, now: float) -> tuple[str, str, float]:
        window = int(now // self.duration)
        elapsed = now - window * self.duration
        return f"{self.key}:{window}", f"{self.key}:{window - 1}", elapsed

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        current_key, previous_key, self.elapsed = self.counter_keys(self.timer())
        self.previous = int(self.cache.get(previous_key) or 0)
        # Counters outlive their window by one window, for the weighting above.
        self.cache.add(current_key, 0, timeout=2 * self.duration)
        try:
            count = self.cache.incr(current_key)
        except ValueError:  # expired between add and incr
            self.cache.add(current_key, 1, timeout=2 * self.duration)
            count = 1
        weight = 1 - self.elapsed / self.duration
        if self.previous * weight + count > self.num_requests:
            with contextlib.suppress(ValueError):  # expired meanwhile: nothing to give back
                self.cache.decr(current_key)
            self.current = count - 1
            return self.throttle_failure()
        return True

    def wait(self) -> float:
        """Seconds until one more request fits (the Retry-After header)."""
        limit, duration, elapsed = self.num_requests, self.duration, self.elapsed
        if self.current < limit and self.previous:
            # Within this window, once enough of the previous one has slid out.
            fits_at = duration * (1 - (limit - self.current - 1) / self.previous)
            if fits_at < duration:
                return max(fits_at - elapsed, 1.0)
        # In the next window, this window's count becomes the weighted previous one.
        fits_at = duration * (1 - (limit - 1) / self.current) if self.current else 0.0
        return duration - elapsed + max(fits_at, 0.0)


class AnonRateThrottle(CacheRateThrottle):
    """Anonymous API callers, per client address (``NUM_PROXIES`` says which address to trust)."""

    scope = "anon"
    rate_setting = "API_ANON_RATE"
    default_rate = "120/min"

    def get_cache_key(self, request, view) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        if request.auth is not None:  # a machine credential (a node) has its own limit
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UserRateThrottle(CacheRateThrottle):
    """Logged-in people (session or API token), per user."""

    scope = "user"
    rate_setting = "API_USER_RATE"
    default_rate = "600/min"

    def get_cache_key(self, request, view) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
