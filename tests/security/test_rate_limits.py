"""Probe finding: the node API's rate limit was counted per gunicorn worker (899 of 1,450 claims
accepted against 300/min), and the API's anonymous and per-user rates were configured but applied
by no throttle class.

Every limit now counts in the default cache (``accounts.throttles``): one count for all server
processes when the cache is shared (Redis: ``CACHE_URL``; CI's second pass), with an atomic
increment so concurrent requests cannot share the last slot. ``check --deploy`` warns when the cache
is per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
from django.core.cache import cache, caches
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.checks import check_shared_cache
from accounts.models import ApiToken
from federation.throttles import NodeRateThrottle
from tests.factories import UserFactory
from tests.federation.factories import make_node
from tests.processes import ROOT

pytestmark = pytest.mark.django_db

SHARED_CACHE_URL = os.environ.get("CACHE_URL", "")
needs_shared_cache = pytest.mark.skipif(
    not SHARED_CACHE_URL.startswith("redis"),
    reason="a cache shared between processes (CACHE_URL=redis://…, CI's second pass)",
)


def node_client(token: str) -> APIClient:
    """A fresh client: another connection, as a request served by another worker would be."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Node {token}")
    return client


def node_request(node) -> SimpleNamespace:
    return SimpleNamespace(auth=node)


def test_the_node_limit_holds_across_workers_and_lives_in_the_cache(hospital_a, settings):
    settings.NODE_API_RATE = "4/min"
    node, token = make_node(hospital_a, "a-omop")
    worker_1, worker_2 = node_client(token), node_client(token)
    for client in (worker_1, worker_2, worker_1, worker_2):
        assert client.post("/api/node/runs/claim/", {}, format="json").status_code == 204
    for client in (worker_1, worker_2):
        refused = client.post("/api/node/runs/claim/", {}, format="json")
        assert refused.status_code == 429
        assert int(refused["Retry-After"]) >= 1

    # The count is in the cache, not in the process: a limiter built afresh (another process
    # would build its own) on a separately opened cache connection sees the spent budget ...
    other_process_cache = caches.create_connection("default")
    fresh = NodeRateThrottle()
    fresh.cache = other_process_cache
    assert fresh.allow_request(node_request(node), None) is False
    keys_of_this_node = [k for k in _keys() if f"throttle_node_{node.pk}:" in k]
    assert keys_of_this_node, "the counter is not in the cache"
    # ... and emptying the cache gives the budget back.
    cache.clear()
    assert worker_1.post("/api/node/runs/claim/", {}, format="json").status_code == 204


def _keys() -> list[str]:
    backend = caches["default"]
    if hasattr(backend, "_cache") and isinstance(backend._cache, dict):  # locmem
        return [str(k) for k in backend._cache]
    return [k.decode() for k in backend._cache.get_client(None, write=False).keys("*")]


def test_concurrent_requests_cannot_share_the_last_slot(hospital_a, settings):
    """Eight threads, one node, 40 attempts: exactly the rate is accepted."""
    settings.NODE_API_RATE = "25/min"
    node, _token = make_node(hospital_a, "a-omop")
    accepted = []
    barrier = threading.Barrier(8)

    def worker():
        throttle = NodeRateThrottle()
        barrier.wait()
        accepted.extend(throttle.allow_request(node_request(node), None) for _ in range(5))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(accepted) == 25


SPEND_BUDGET = """
import os, sys, types
os.environ["DJANGO_SETTINGS_MODULE"] = "optima_portal.settings"
import django
django.setup()
from federation.throttles import NodeRateThrottle
request = types.SimpleNamespace(auth=types.SimpleNamespace(pk=int(sys.argv[1])))
print(sum(NodeRateThrottle().allow_request(request, None) for _ in range(int(sys.argv[2]))))
"""


@needs_shared_cache
def test_two_server_processes_share_one_node_budget(hospital_a, settings):
    """The probe's attack: claims spread over two processes still get the rate, not twice it."""
    settings.NODE_API_RATE = "30/min"
    node, token = make_node(hospital_a, "a-omop")
    env = {**os.environ, "CACHE_URL": SHARED_CACHE_URL, "NODE_API_RATE": "30/min"}
    env.pop("PYTEST_CURRENT_TEST", None)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", SPEND_BUDGET, str(node.pk), "25"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    accepted = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        accepted.append(int(out.strip().splitlines()[-1]))
    assert sum(accepted) == 30
    # This process (a third worker) sees the spent budget too.
    assert node_client(token).post("/api/node/runs/claim/", {}, format="json").status_code == 429


def test_a_user_over_the_api_rate_gets_429(settings, researcher, steward_a):
    settings.API_USER_RATE = "5/min"
    _token, raw = ApiToken.issue(user=researcher, name="script")
    by_token, by_session = APIClient(), APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    by_session.force_login(researcher)
    answers = [c.get("/api/me/").status_code for c in (by_token, by_session) * 3]
    assert answers == [200] * 5 + [429]  # token and session share the person's budget
    limited = by_token.get("/api/datasets/")
    assert limited.status_code == 429 and limited.json()["error"]["status"] == 429
    assert "Retry-After" in limited
    other = APIClient()
    other.force_login(steward_a)
    assert other.get("/api/me/").status_code == 200  # another person's budget is their own


def test_anonymous_callers_are_limited_by_address_and_cannot_forge_one(settings):
    settings.API_ANON_RATE = "3/min"
    client = APIClient()
    for n in range(3):
        assert (
            client.get("/api/organisations/", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code == 200
        )
    assert client.get("/api/organisations/", HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429
    assert client.get("/api/organisations/", REMOTE_ADDR="192.0.2.7").status_code == 200
    # Logging in moves the caller to the (larger) per-user budget.
    client.force_login(UserFactory())
    assert client.get("/api/organisations/").status_code == 200


def test_check_deploy_warns_when_the_cache_is_per_process():
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ):
        assert [w.id for w in check_shared_cache()] == ["accounts.W001"]
    with override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:6379/14",
            }
        }
    ):
        assert check_shared_cache() == []
