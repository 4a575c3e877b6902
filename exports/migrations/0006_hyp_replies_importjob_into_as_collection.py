"""An import job's requested collection (``into``) becomes its one ``collection`` field, before
``into`` is removed (0007)."""

from django.db import migrations
from django.db.models import F


def forward(apps, schema_editor):
    ImportJob = apps.get_model("exports", "ImportJob")
    # A finished import into a named collection has both set, to the same one.
    ImportJob.objects.filter(collection__isnull=True, into__isnull=False).update(
        collection=F("into")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("exports", "0005_long_work_export_jobs"),
    ]

    operations = [
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
