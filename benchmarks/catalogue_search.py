"""Benchmark of the catalogue search page, the search API and the DCAT export.

Run (PostgreSQL, the target):
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/catalogue_search.py [--datasets 50000] [--repeat 30]
or on SQLite without DATABASE_URL. A throwaway test database is created and destroyed (the name
comes from TEST_DATABASE_NAME, default test_catalogue_bench); the dev database is not touched.

It bulk-inserts N published datasets (realistic, varied metadata), then measures the search page
(HTML with facet counts) and /api/datasets/ for several query kinds, printing the median and p95
latency and the number of SQL queries per request. Finally it streams the whole catalogue as
Turtle and prints the process' peak memory. Targets: p95 <= 100 ms for the page at 50,000
datasets on PostgreSQL; constant query counts; export under 300 MB peak.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "optima_portal.settings")
os.environ.setdefault("TEST_DATABASE_NAME", "test_catalogue_bench")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_test_environment,
    teardown_test_environment,
)

QUERIES = {
    "empty query": {},
    "free text": {"q": "lung cancer"},
    "one facet": {"indication": "lung"},
    "three facets": {"indication": "solid-tumours", "mode": "federated_analytics", "cdm": "5.4"},
    "text + facets": {"q": "immunotherapy", "country": "DE", "category": "clinical"},
}

WORDS = [
    ("lung", ["nsclc", "sclc"], "Lung cancer", ["immunotherapy", "EGFR", "ALK", "CT"]),
    ("breast", ["breast"], "Breast cancer", ["HER2", "mammography", "endocrine therapy"]),
    ("prostate", ["prostate"], "Prostate cancer", ["PSA", "MRI", "prostatectomy"]),
]
SETTINGS = ["registry", "cohort", "real-world outcomes", "treatment pathways", "follow-up study"]
COUNTRIES = ["DE", "FR", "NL", "SE", "BE", "IT", "ES", "PT", "AT", "DK"]
MODES = [
    ["federated_analytics"],
    ["federated_analytics", "federated_learning"],
    ["central_copy", "federated_analytics"],
    ["federated_learning"],
]
CATEGORIES = [["clinical"], ["clinical", "pathology"], ["clinical", "imaging"], ["omics"]]


def bulk_seed(n: int) -> None:
    """Insert ``n`` published datasets directly (services would take hours at this size)."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Organisation, OrganisationKind
    from catalogue import search_index
    from catalogue.models import CancerIndication, Dataset, DatasetVersion, SearchEntry, Status

    rng = random.Random(42)
    publishers = []
    for i in range(40):
        country = COUNTRIES[i % len(COUNTRIES)]
        org, _ = Organisation.objects.get_or_create(
            slug=f"bench-hospital-{i}",
            defaults={
                "name": f"Bench Hospital {i}",
                "country": country,
                "kind": OrganisationKind.HOSPITAL,
            },
        )
        publishers.append(org)
    indications = {i.code: i for i in CancerIndication.objects.all()}
    through = DatasetVersion.indications.through
    entry_through = SearchEntry.indications.through
    closure = search_index.ancestors_by_id()
    now = timezone.now()
    batch = 2000
    for start in range(0, n, batch):
        datasets, rows = [], []
        for i in range(start, min(n, start + batch)):
            org = publishers[i % len(publishers)]
            _site, codes, label, keywords = WORDS[i % len(WORDS)]
            code = rng.choice(codes)
            title = f"{label} {rng.choice(SETTINGS)} {i}"
            description = (
                f"{label} patients of {org.name}: diagnosis, treatment lines and outcomes, "
                f"harmonised to the OMOP common data model."
            )
            words = rng.sample(keywords, 2)
            modes = MODES[i % len(MODES)]
            categories = CATEGORIES[i % len(CATEGORIES)]
            cdm = "5.4" if i % 3 else "5.3"
            individuals = rng.randint(100, 50000)
            datasets.append(
                Dataset(
                    identifier=f"bench-{i}",
                    publisher=org,
                    status=Status.PUBLISHED,
                    title=title,
                    description=description,
                    keywords=words,
                    country=org.country,
                    cdm_version=cdm,
                    access_modes=modes,
                    data_categories=categories,
                    number_of_individuals=individuals,
                )
            )
            metadata = {
                "identifier": f"bench-{i}",
                "title": title,
                "description": description,
                "keywords": words,
                "contact_name": "Data office",
                "contact_email": f"data@{org.slug}.example",
                "indications": [code],
                "data_categories": categories,
                "country": str(org.country),
                "cdm_version": cdm,
                "access_modes": modes,
                "access_rights": "NON_PUBLIC",
                "number_of_individuals": individuals,
                "publisher": org.slug,
                "data_access_committee": org.slug,
                "distributions": [
                    {
                        "kind": "federated_omop",
                        "title": "Federated OMOP CDM database",
                        "description": "",
                        "access_url": "",
                        "node_ref": f"{org.slug}/omop-node",
                    }
                ],
            }
            rows.append((metadata, code, individuals))
        created = Dataset.objects.bulk_create(datasets)
        versions = DatasetVersion.objects.bulk_create(
            [
                DatasetVersion(
                    dataset=d,
                    number=1,
                    published_at=now - timedelta(minutes=int(meta["identifier"][6:])),
                    notes="Benchmark",
                    metadata=meta,
                    is_listed=True,
                    publisher_id=d.publisher_id,
                    title=d.title,
                    description=d.description,
                    keywords_text=" ".join(d.keywords),
                    country=d.country,
                    cdm_version=d.cdm_version,
                    access_modes=d.access_modes,
                    data_categories=d.data_categories,
                    number_of_individuals=individuals,
                )
                for d, (meta, _, individuals) in zip(created, rows, strict=True)
            ]
        )
        through.objects.bulk_create(
            [
                through(datasetversion_id=v.pk, cancerindication_id=indications[code].pk)
                for v, (_, code, _) in zip(versions, rows, strict=True)
            ]
        )
        entries = SearchEntry.objects.bulk_create(
            [
                search_index.entry_for(v, closure[indications[code].pk])
                for v, (_, code, _) in zip(versions, rows, strict=True)
            ]
        )
        entry_through.objects.bulk_create(
            [
                entry_through(searchentry_id=e.pk, cancerindication_id=ancestor)
                for e, (_, code, _) in zip(entries, rows, strict=True)
                for ancestor in closure[indications[code].pk]
            ]
        )
        for d, v in zip(created, versions, strict=True):
            d.current_version = v
        Dataset.objects.bulk_update(created, ["current_version"])
        print(f"  seeded {min(n, start + batch)}/{n}", end="\r", flush=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE catalogue_datasetversion SET search_vector = "
                "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
                "setweight(to_tsvector('simple', coalesce(keywords_text, '')), 'A') || "
                "setweight(to_tsvector('simple', coalesce(description, '')), 'B')"
            )
            cursor.execute(
                "UPDATE catalogue_searchentry e SET search_vector = v.search_vector "
                "FROM catalogue_datasetversion v WHERE v.id = e.version_id"
            )
            cursor.execute("VACUUM ANALYZE catalogue_datasetversion")
            cursor.execute("VACUUM ANALYZE catalogue_searchentry")
            cursor.execute("VACUUM ANALYZE catalogue_searchentry_indications")
    print()


def measure(client: Client, url: str, params: dict, repeat: int) -> tuple[float, float, int]:
    client.get(url, params)  # warm-up
    timings = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(ctx.captured_queries)
    timings.sort()
    return statistics.median(timings), timings[int(0.95 * (len(timings) - 1))], queries


def peak_mb() -> float:
    """This process' peak resident memory (VmHWM: unlike ru_maxrss it is not inherited on exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        user, host = settings.get("USER") or "postgres", settings.get("HOST") or "127.0.0.1"
        password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
        port = settings.get("PORT") or 5432
        return f"postgresql://{user}{password}@{host}:{port}/{settings['NAME']}"
    return f"sqlite:///{settings['NAME']}"


def run_export_child() -> None:
    """Stream the whole catalogue as Turtle in a fresh process, so its peak memory is the export's."""
    import subprocess

    env = {**os.environ, "DATABASE_URL": database_url()}
    subprocess.run([sys.executable, __file__, "--export-child"], env=env, check=True)


def export_child() -> int:
    from catalogue import export

    base = peak_mb()
    start = time.perf_counter()
    size = sum(len(chunk.encode()) for chunk in export.stream_turtle())
    print(
        f"export: {size / 1e6:.1f} MB Turtle in {time.perf_counter() - start:.1f} s; "
        f"peak RSS of the exporting process {peak_mb():.0f} MB (Django loaded: {base:.0f} MB; "
        f"target < 300 MB)"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=50000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--export-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        return export_child()
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        print(f"Database: {connection.vendor}; seeding {args.datasets} datasets…")
        bulk_seed(args.datasets)
        client = Client()
        worst_page = 0.0
        print(f"{'endpoint':<8} {'query kind':<14} {'median ms':>10} {'p95 ms':>8} {'SQL':>5}")
        for label, url in (("page", "/catalogue/"), ("api", "/api/datasets/")):
            for kind, params in QUERIES.items():
                median, p95, queries = measure(client, url, params, args.repeat)
                if label == "page":
                    worst_page = max(worst_page, p95)
                print(f"{label:<8} {kind:<14} {median:>10.1f} {p95:>8.1f} {queries:>5}")
        print(
            f"search page p95 target 100 ms: {'OK' if worst_page <= 100 else 'EXCEEDED'} "
            f"(worst {worst_page:.1f} ms)"
        )
        if not args.skip_export:
            run_export_child()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
