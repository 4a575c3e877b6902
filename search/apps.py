from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The seam: archive and annotations announce their writes (archive.signals,
        # annotations.signals); search indexes what they wrote, inside their transaction.
        from annotations.signals import annotation_written, annotations_retagged
        from archive.signals import source_written

        source_written.connect(_index_source, dispatch_uid="search.index_source")
        annotation_written.connect(_index_annotation, dispatch_uid="search.index_annotation")
        annotations_retagged.connect(
            _reindex_annotations, dispatch_uid="search.reindex_annotations"
        )


# search.index is looked up at each call, not imported here: it imports models, which an
# AppConfig module must not (and a test may stand in for its functions).
def _index_source(sender, source, **kwargs) -> None:
    from search import index

    index.index_source(source)


def _index_annotation(sender, annotation, tag_names=None, new=False, **kwargs) -> None:
    from search import index

    index.index_annotation(annotation, tag_names, new=new)


def _reindex_annotations(sender, pks, **kwargs) -> None:
    from search import index

    index.reindex_annotations(pks)
