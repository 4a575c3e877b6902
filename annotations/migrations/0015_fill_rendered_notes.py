"""Render every note written before notes were rendered when written (0013), in batches
by primary key so that memory stays flat however many there are."""

from django.db import migrations

from annotations.markdown import render_note

BATCH = 500


def fill(model, plain: bool) -> None:
    last = 0
    while True:
        batch = list(
            model.objects.filter(pk__gt=last).order_by("pk").only("pk", "note")[:BATCH]
        )
        if not batch:
            return
        for row in batch:
            rendered = render_note(row.note)
            row.note_rendered = rendered.html
            if plain:
                row.note_plain = rendered.plain
        fields = ["note_rendered", "note_plain"] if plain else ["note_rendered"]
        model.objects.bulk_update(batch, fields)
        last = batch[-1].pk


def forward(apps, schema_editor) -> None:
    fill(apps.get_model("annotations", "Annotation"), plain=True)
    fill(apps.get_model("annotations", "Comment"), plain=False)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0014_rendered_notes")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
