"""The search entry carries its text vector again and a key of its indication set.

With every facet counted in one GROUP BY (``selectors._facet_counts``), a free-text search reads
one table: the separate SearchText table cost a join that PostgreSQL planned as one index probe
per matching entry (it under-estimates prefix text queries).
"""

import django.contrib.postgres.search
from django.db import migrations, models


def fill(apps, schema_editor):
    SearchEntry = apps.get_model("catalogue", "SearchEntry")
    Through = SearchEntry.indications.through
    ids: dict[int, list[int]] = {}
    for entry_id, indication_id in Through.objects.values_list(
        "searchentry_id", "cancerindication_id"
    ).iterator(chunk_size=5000):
        ids.setdefault(entry_id, []).append(indication_id)
    batch = []
    for entry in SearchEntry.objects.only("pk").iterator(chunk_size=2000):
        ordered = sorted(set(ids.get(entry.pk, [])))
        entry.indication_key = "|" + "|".join(map(str, ordered)) + "|" if ordered else ""
        batch.append(entry)
        if len(batch) >= 2000:
            SearchEntry.objects.bulk_update(batch, ["indication_key"])
            batch = []
    if batch:
        SearchEntry.objects.bulk_update(batch, ["indication_key"])
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "UPDATE catalogue_searchentry e SET search_vector = v.search_vector "
            "FROM catalogue_datasetversion v WHERE v.id = e.version_id"
        )
        # The updates above queued the deferred foreign-key checks; run them before the index.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS cat_entry_search_gin "
            "ON catalogue_searchentry USING gin (search_vector)"
        )


def unfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS cat_entry_search_gin")
        schema_editor.execute(
            "INSERT INTO catalogue_searchtext (entry_id, search_vector) "
            "SELECT version_id, search_vector FROM catalogue_searchentry "
            "ON CONFLICT (entry_id) DO NOTHING"
        )
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS cat_text_search_gin "
            "ON catalogue_searchtext USING gin (search_vector)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("catalogue", "0006_search_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="searchentry",
            name="indication_key",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="searchentry",
            name="search_vector",
            field=django.contrib.postgres.search.SearchVectorField(editable=False, null=True),
        ),
        migrations.RunPython(fill, unfill),
        migrations.DeleteModel(name="SearchText"),
        migrations.RemoveIndex(model_name="searchentry", name="cat_entry_country"),
        migrations.AddIndex(
            model_name="searchentry",
            index=models.Index(
                fields=[
                    "country",
                    "cdm_version",
                    "publisher",
                    "access_mode_bits",
                    "category_bits",
                    "indication_key",
                ],
                name="cat_entry_facets",
            ),
        ),
    ]
