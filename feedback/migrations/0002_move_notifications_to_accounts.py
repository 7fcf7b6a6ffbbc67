"""Feedback notifications now live in ``accounts.Notification`` (one model for every app).

The rows are copied (kind → verb ``feedback.status_changed`` / ``feedback.replied``, the item →
``object_type``/``object_id`` and the link), then the old table is dropped. They were e-mails only, so
they arrive read in the in-app list; unsent ones keep their error and are retried by the sweep.
"""

from django.db import migrations

VERBS = {"status": "feedback.status_changed", "reply": "feedback.replied"}
KINDS = {verb: kind for kind, verb in VERBS.items()}


def copy_to_accounts(apps, schema_editor):
    Old = apps.get_model("feedback", "Notification")
    New = apps.get_model("accounts", "Notification")
    batch = []
    for n in Old.objects.order_by("pk").iterator(chunk_size=1000):
        batch.append(
            New(
                recipient_id=n.recipient_id,
                verb=VERBS.get(n.kind, f"feedback.{n.kind}"),
                subject=n.subject,
                body=n.body,
                url=f"/feedback/{n.item_id}/",
                object_type="feedback.feedbackitem",
                object_id=str(n.item_id),
                created_at=n.created_at,
                read_at=n.created_at,
                email=True,
                sent_at=n.sent_at,
                attempts=1 if (n.sent_at or n.error) else 0,
                error=n.error,
            )
        )
        if len(batch) >= 1000:
            New.objects.bulk_create(batch)
            batch = []
    New.objects.bulk_create(batch)


def copy_back(apps, schema_editor):
    Old = apps.get_model("feedback", "Notification")
    New = apps.get_model("accounts", "Notification")
    items = apps.get_model("feedback", "FeedbackItem").objects.values_list("pk", flat=True)
    rows = New.objects.filter(
        object_type="feedback.feedbackitem",
        verb__in=list(KINDS),
        object_id__in=[str(pk) for pk in items],
    )
    for n in rows.order_by("pk"):
        Old.objects.create(
            item_id=int(n.object_id),
            recipient_id=n.recipient_id,
            kind=KINDS[n.verb],
            subject=n.subject[:200],
            body=n.body,
            sent_at=n.sent_at,
            error=n.error,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0001_initial"),
        ("accounts", "0006_notification"),
    ]

    operations = [
        migrations.RunPython(copy_to_accounts, copy_back),
        migrations.DeleteModel(name="Notification"),
    ]
