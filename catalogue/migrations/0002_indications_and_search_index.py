"""Seed the cancer indication hierarchy; on PostgreSQL add the GIN index for full-text search."""

from django.db import migrations

INDICATIONS = [
    # code, name, parent code, concept URI, sort order
    ("solid-tumours", "Solid tumours", None, "", 10),
    ("lung", "Lung cancer", "solid-tumours", "http://snomed.info/id/363358000", 20),
    ("nsclc", "Non-small cell lung cancer (NSCLC)", "lung", "http://snomed.info/id/254637007", 21),
    ("sclc", "Small cell lung cancer (SCLC)", "lung", "http://snomed.info/id/254632001", 22),
    ("breast", "Breast cancer", "solid-tumours", "http://snomed.info/id/254837009", 30),
    ("prostate", "Prostate cancer", "solid-tumours", "http://snomed.info/id/399068003", 40),
]


def seed_indications(apps, schema_editor):
    CancerIndication = apps.get_model("catalogue", "CancerIndication")
    by_code = {}
    for code, name, parent, uri, order in INDICATIONS:
        obj, _ = CancerIndication.objects.get_or_create(
            code=code,
            defaults={"name": name, "parent": by_code.get(parent), "uri": uri, "sort_order": order},
        )
        by_code[code] = obj


def gin_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS cat_version_search_gin "
            "ON catalogue_datasetversion USING gin (search_vector)"
        )


def drop_gin_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS cat_version_search_gin")


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0001_initial")]

    operations = [
        migrations.RunPython(seed_indications, migrations.RunPython.noop),
        migrations.RunPython(gin_index, drop_gin_index),
    ]
