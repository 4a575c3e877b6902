from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("exports", "0006_hyp_replies_importjob_into_as_collection"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="importjob",
            name="into",
        ),
    ]
