"""benchmarks/catalogue_search.py at toy size, on the test database, so that the script cannot rot."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from django.conf import settings

from catalogue.models import SearchEntry


def load_benchmark():
    path = Path(settings.BASE_DIR) / "benchmarks" / "catalogue_search.py"
    spec = importlib.util.spec_from_file_location("catalogue_search_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    saved = dict(os.environ)
    try:
        spec.loader.exec_module(module)  # it sets defaults in os.environ: keep them out
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module


@pytest.mark.django_db(transaction=True)  # the seeding runs VACUUM on PostgreSQL
def test_the_catalogue_benchmark_seeds_and_measures_at_toy_size(client):
    from catalogue import demo

    demo._ensure_indications()  # a data migration's rows: gone if an earlier test flushed the db
    bench = load_benchmark()
    bench.bulk_seed(40)
    assert SearchEntry.objects.count() == 40
    assert SearchEntry.objects.exclude(indication_key="").count() == 40
    for url in ("/catalogue/", "/api/datasets/"):
        for params in bench.QUERIES.values():
            median, p95, queries = bench.measure(client, url, params, repeat=2)
            assert median > 0 and p95 > 0
            assert queries == 8  # facets and total from one GROUP BY
    response = client.get("/catalogue/", bench.QUERIES["one facet"])
    result = response.context["result"]
    lung = {f.value: f.count for f in result.facets["indication"]}["lung"]
    assert result.total == lung == 14  # every third bench dataset is a lung one (i % 3 == 0)
