from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("central", "0002_central_node"),
    ]

    operations = [
        migrations.AddField(
            model_name="upload",
            name="attempts",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="Times the check and load were queued (a lost worker's job is queued again).",
            ),
        ),
        migrations.AddField(
            model_name="upload",
            name="location",
            field=models.CharField(
                blank=True,
                help_text="Schema or SQLite file the current load writes to.",
                max_length=300,
            ),
        ),
    ]
