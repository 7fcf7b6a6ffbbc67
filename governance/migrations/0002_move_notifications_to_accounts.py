"""Governance notifications now live in ``accounts.Notification`` (one model for every app).

The rows are copied (user → recipient, event → verb, title → subject, emailed_at → sent_at), then
the old table is dropped. Going back copies the governance verbs into the old table again.
"""

from django.db import migrations

GOVERNANCE_VERB_PREFIXES = ("agreement.", "request.", "decision.", "comment.", "entitlement.")


def copy_to_accounts(apps, schema_editor):
    Old = apps.get_model("governance", "Notification")
    New = apps.get_model("accounts", "Notification")
    batch = []
    for n in Old.objects.order_by("pk").iterator(chunk_size=1000):
        batch.append(
            New(
                recipient_id=n.user_id,
                verb=n.event,
                subject=n.title,
                body=n.body,
                url=n.url,
                created_at=n.created_at,
                read_at=n.read_at,
                email=True,
                sent_at=n.emailed_at,
                attempts=1 if n.emailed_at else 0,
            )
        )
        if len(batch) >= 1000:
            New.objects.bulk_create(batch)
            batch = []
    New.objects.bulk_create(batch)


def copy_back(apps, schema_editor):
    Old = apps.get_model("governance", "Notification")
    New = apps.get_model("accounts", "Notification")
    rows = New.objects.none()
    for prefix in GOVERNANCE_VERB_PREFIXES:
        rows = rows | New.objects.filter(verb__startswith=prefix)
    Old.objects.bulk_create(
        Old(
            user_id=n.recipient_id,
            event=n.verb,
            title=n.subject,
            body=n.body,
            url=n.url,
            created_at=n.created_at,
            read_at=n.read_at,
            emailed_at=n.sent_at,
        )
        for n in rows.order_by("pk")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0001_initial"),
        ("accounts", "0006_notification"),
    ]

    operations = [
        migrations.RunPython(copy_to_accounts, copy_back),
        migrations.DeleteModel(name="Notification"),
    ]
