"""Tags made before a tag needed a letter or a digit (annotations.w3c.tag_name_error) could
have an empty slug: their page had no address, and every page linking them failed. Each
gets ``tag-<id>``, or the first free ``tag-<id>_1``, ``tag-<id>_2``..."""

from django.db import migrations


def give_slugs(apps, schema_editor):
    Tag = apps.get_model("taggit", "Tag")
    for tag in Tag.objects.filter(slug=""):
        base = slug = f"tag-{tag.pk}"
        i = 0
        while Tag.objects.filter(slug=slug).exists():
            i += 1
            slug = f"{base}_{i}"
        tag.slug = slug
        tag.save(update_fields=["slug"])


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0003_tagged_annotation_with_tag_index"),
        ("taggit", "0006_rename_taggeditem_content_type_object_id_taggit_tagg_content_8fc721_idx"),
    ]

    operations = [migrations.RunPython(give_slugs, migrations.RunPython.noop)]
