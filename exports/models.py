"""Imports: the ones people ask for on the import page (run by the background worker), and
what an unfinished import has written, hidden until it is complete."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

from annotations.models import Annotation
from archive.blobstore import archive_storage
from archive.jobs import Job
from archive.models import Collection, Source

INTERRUPTED = (
    "The import stopped before it finished, because the worker running it was stopped"
    " (for example by a server restart). Nothing from it is shown to anyone, and what it had"
    " written is deleted when it is tried again."
)
UNEXPECTED_ERROR = (
    "The import failed because of an error on the server, not in your package; nothing was"
    " imported. The administrators can find the details in the worker's log."
)


def package_storage() -> Storage:
    """Where uploaded packages wait for the worker, which may run on another machine: the
    "imports" storage where one is configured (the bucket, with S3), else
    SCHOLION_IMPORTS_DIR (read per call, so tests can move it)."""
    if "imports" in settings.STORAGES:
        return storages["imports"]
    return FileSystemStorage(location=settings.SCHOLION_IMPORTS_DIR)


class ImportJobQuerySet(models.QuerySet):
    def visible_to(self, user) -> ImportJobQuerySet:
        """The requester sees their imports; curators see everyone's."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        return self.filter(user=user)

    def recent_for(self, user, limit: int = 10) -> ImportJobQuerySet:
        return self.filter(user=user).select_related("collection")[:limit]

    def hypothesis_into(self, collection, user, limit: int = 10) -> ImportJobQuerySet:
        """The person's latest Hypothesis imports into the collection."""
        return self.filter(user=user, kind=ImportJob.Kind.HYPOTHESIS, collection=collection)[:limit]


class ImportJob(Job):
    """One uploaded package and what became of it.

    The package is stored once under SCHOLION_IMPORTS_DIR when the job is created and deleted
    when the import has finished, done or failed. A job whose worker was stopped keeps its
    package, so that it can be run again (``retry``).
    """

    class Kind(models.TextChoices):
        PACKAGE = "package", "Scholion package"
        HYPOTHESIS = "hypothesis", "Hypothesis annotations"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PACKAGE)
    filename = models.CharField(max_length=255, help_text="The uploaded file's own name.")
    size = models.PositiveBigIntegerField(help_text="Bytes uploaded.")
    # Relative to SCHOLION_IMPORTS_DIR, so that the data directory can move; "" once deleted.
    package_name = models.CharField(max_length=100, blank=True)
    summary = models.TextField(blank=True)
    # What an import kept otherwise or not at all (a REFI-QDA project's): a list of
    # {"what": kind, "items": [...], "more": count left out}, shown on the job's page.
    report = models.JSONField(default=list, blank=True)
    # The collection the import goes into: the one named at upload (a Hypothesis file's
    # always, a REFI-QDA project's when one was chosen), else the one the package made, set
    # when it is done. One field, not "asked for" and "got": where both exist they are the
    # same collection, and the worker reads a named one from here.
    collection = models.ForeignKey(
        "archive.Collection",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = ImportJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="importjob_user_recent")]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_state_display().lower()})"

    def get_absolute_url(self) -> str:
        return reverse("exports:job", args=[self.uuid])

    @classmethod
    def submit(
        cls,
        user,
        upload: UploadedFile,
        collection: Collection | None = None,
        *,
        kind: str = Kind.PACKAGE,
    ) -> ImportJob:
        """Store the uploaded file and queue its import once the job is committed: a package
        (into ``collection`` for a REFI-QDA project, if one is named), or a Hypothesis file
        into ``collection``."""
        assert upload.size is not None, "an upload read from a request knows its size"
        job = cls(
            user=user,
            kind=kind,
            collection=collection,
            filename=(upload.name or "package.zip")[:255],
            size=upload.size,
        )
        extension = "json" if kind == cls.Kind.HYPOTHESIS else "zip"
        # Moved, not copied, when Django spooled the upload to a file (FILE_UPLOAD_TEMP_DIR is
        # under the data directory too); the name is the job's, never the uploader's.
        job.package_name = package_storage().save(f"{job.uuid}.{extension}", upload)
        try:
            with transaction.atomic():
                job.save()
                transaction.on_commit(job.enqueue)
        except BaseException:
            job.delete_package()
            raise
        return job

    def enqueue(self) -> None:
        from exports.tasks import run_import  # the task module imports this one

        run_import.enqueue(str(self.uuid), self.attempt)

    def open_package_file(self) -> IO[bytes]:
        if not self.package_name:
            raise FileNotFoundError(f"The package of import {self.uuid} has been deleted.")
        return package_storage().open(self.package_name, "rb")

    # --- What the requester sees ----------------------------------------------------------

    @property
    def may_retry(self) -> bool:
        return self.stalled and bool(self.package_name)

    @property
    def status_text(self) -> str:
        if self.stalled:
            return INTERRUPTED
        if self.state == self.State.QUEUED:
            return "Waiting for the worker to start it."
        if self.state == self.State.RUNNING:
            return self.progress or "Reading the package."
        if self.state == self.State.DONE:
            return self.summary
        return self.error

    def status(self) -> dict[str, Any]:
        """The state as the status page shows it, for its script."""
        return {
            "state": self.display_state,
            "label": self.status_label,
            "text": self.status_text,
            "finished": self.finished,
            "may_retry": self.may_retry,
            "report": self.report if self.state == self.State.DONE else [],
            "collection": (
                {"title": self.collection.title, "url": self.collection.get_absolute_url()}
                if self.collection is not None
                else None
            ),
        }

    # --- What the worker records (exports.tasks) ------------------------------------------

    def succeed(self, summary: str, collection, report: list | None = None) -> None:
        self._finish(
            state=self.State.DONE, summary=summary, collection=collection, report=report or []
        )

    def delete_package(self) -> None:
        if self.package_name:
            package_storage().delete(self.package_name)
            if self.pk is not None:
                ImportJob.objects.filter(pk=self.pk).update(package_name="")
            self.package_name = ""


# --- Exports prepared by the worker ----------------------------------------------------------

EXPORT_INTERRUPTED = (
    "The export stopped before it finished, because the worker preparing it was stopped"
    " (for example by a server restart). Ask for it again from the collection's Export menu."
)
EXPORT_UNEXPECTED_ERROR = (
    "The export failed because of an error on the server. The administrators can find the"
    " details in the worker's log."
)


def export_storage() -> Storage:
    """Where finished exports wait to be fetched, readable from every web server: the
    "exports" storage where one is configured (the bucket, with S3), else
    SCHOLION_EXPORTS_DIR (read per call, so tests can move it)."""
    if "exports" in settings.STORAGES:
        return storages["exports"]
    return FileSystemStorage(location=settings.SCHOLION_EXPORTS_DIR)


class ExportJobQuerySet(models.QuerySet):
    def visible_to(self, user) -> ExportJobQuerySet:
        """Only the person who asked: the file holds what they could see, which may be more
        than anyone else may (curators included: they did not ask for it)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def expired(self, now=None) -> ExportJobQuerySet:
        return self.filter(expires_at__lt=now or timezone.now())


class ExportJob(Job):
    """A collection's export in a format too long to write within a request, written by the
    worker to the exports storage, fetched by its requester until it expires.

    The scope is recorded as asked (collection, filters, the requester) and read again by
    the worker, so the file holds what the requester may see when it is written; the
    download checks again that they may still see the collection.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs"
    )
    collection = models.ForeignKey("archive.Collection", on_delete=models.CASCADE, related_name="+")
    format = models.CharField(max_length=20)
    filters = models.JSONField(default=dict, blank=True)
    bom = models.BooleanField(default=False)
    base_url = models.CharField(max_length=300)
    # Relative to the exports storage; "" until written, and again once removed.
    file_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = ExportJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["expires_at"], name="exportjob_expires")]

    def __str__(self) -> str:
        return f"{self.collection_id} {self.format} ({self.get_state_display().lower()})"

    def get_absolute_url(self) -> str:
        return reverse("exports:export_job", args=[self.uuid])

    @classmethod
    def submit(cls, user, collection, fmt: str, *, filters: dict, bom: bool, base_url: str):
        job = cls(
            user=user,
            collection=collection,
            format=fmt,
            filters=filters,
            bom=bom,
            base_url=base_url[:300],
        )
        with transaction.atomic():
            job.save()
            transaction.on_commit(job.enqueue)
        return job

    def enqueue(self) -> None:
        from exports.tasks import run_export  # the task module imports this one

        run_export.enqueue(str(self.uuid), self.attempt)

    @property
    def download_filename(self) -> str:
        from exports.formats import FORMATS

        return f"{self.collection.slug}{FORMATS[self.format].filename}"

    @property
    def format_label(self) -> str:
        from exports.formats import FORMATS

        return FORMATS[self.format].label

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at < timezone.now()

    @property
    def ready(self) -> bool:
        return self.state == self.State.DONE and bool(self.file_name) and not self.expired

    # --- What the requester sees ----------------------------------------------------------

    @property
    def status_text(self) -> str:
        if self.stalled:
            return EXPORT_INTERRUPTED
        if self.state == self.State.QUEUED:
            return "Waiting for the worker to start it."
        if self.state == self.State.RUNNING:
            return self.progress or "Writing the export."
        if self.state == self.State.DONE:
            if not self.ready:
                return "This export has expired and its file was removed: ask for it again."
            return f"Ready until {self.expires_at:%Y-%m-%d %H:%M} UTC."
        return self.error

    def status(self) -> dict[str, Any]:
        return {
            "state": self.display_state,
            "label": self.status_label,
            "text": self.status_text,
            "finished": self.finished,
            "download": (
                reverse("exports:export_job_file", args=[self.uuid]) if self.ready else None
            ),
            "size": self.size if self.ready else None,
        }

    # --- What the worker records (exports.tasks) ------------------------------------------

    def succeed(self, file_name: str, size: int) -> bool:
        keep = timedelta(hours=settings.SCHOLION_EXPORT_KEEP_HOURS)
        return self._finish(
            state=self.State.DONE,
            file_name=file_name,
            size=size,
            expires_at=timezone.now() + keep,
            progress="",
        )

    def delete_file(self) -> None:
        if self.file_name:
            export_storage().delete(self.file_name)
            ExportJob.objects.filter(pk=self.pk).update(file_name="")
            self.file_name = ""


# --- What an import in progress has written -------------------------------------------------

PENDING_REASON = "Being imported: it appears when its import is complete."
# An unfinished import not written to for this long was stopped (its process killed): the
# next import discards what it wrote. Longer than any one of its transactions takes.
ABANDONED_AFTER = timedelta(minutes=10)


class PendingImportQuerySet(models.QuerySet):
    def holding(self, model: type[models.Model], uuids) -> PendingImportQuerySet:
        """Unfinished imports that wrote one of these sources or annotations."""
        kind = PendingObject.Kind(model.__name__.lower())
        held = model._default_manager.filter(uuid__in=uuids).values("pk")
        return self.filter(
            pk__in=PendingObject.objects.filter(kind=kind, object_id__in=held).values("pending")
        )

    def abandoned(self, job: ImportJob | None = None) -> PendingImportQuerySet:
        """Unfinished imports nothing is writing any more, and earlier runs of ``job``."""
        stale = models.Q(touched_at__lt=timezone.now() - ABANDONED_AFTER)
        if job is not None:
            stale |= models.Q(job=job)
        return self.filter(stale)


class PendingImport(models.Model):
    """An import being written, in short transactions, and everything it has written so far.

    Until the import completes, what it wrote is hidden: new sources are withdrawn (with
    PENDING_REASON), new annotations belong to no collection (so only their author sees
    them, on a source they can already see), a new collection is private with no members,
    and existing sources are not yet added to the collection. ``complete`` reveals it all in
    one transaction; ``discard`` deletes it, after a failure or once abandoned.
    """

    job = models.ForeignKey(ImportJob, null=True, blank=True, on_delete=models.SET_NULL)
    # None: the command line.
    importer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    touched_at = models.DateTimeField(default=timezone.now)

    objects = PendingImportQuerySet.as_manager()

    def __str__(self) -> str:
        return f"unfinished import started {self.started_at:%Y-%m-%d %H:%M}"

    def record(self, kind: str, *objects: Any) -> None:
        """Note objects this import has just written (in the transaction that wrote them)."""
        PendingObject.objects.bulk_create(
            [PendingObject(pending=self, kind=kind, object_id=obj.pk) for obj in objects]
        )

    def record_blob(self, name: str) -> None:
        PendingObject.objects.create(pending=self, kind=PendingObject.Kind.BLOB, name=name)

    @staticmethod
    def unfinished(kind: str) -> models.QuerySet:
        """The ids of every row of this kind that an unfinished import wrote."""
        return PendingObject.objects.filter(kind=kind).values("object_id")

    def touch(self) -> None:
        PendingImport.objects.filter(pk=self.pk).update(touched_at=timezone.now())

    def written(self, kind: str) -> models.QuerySet:
        return PendingObject.objects.filter(pending=self, kind=kind).values("object_id")

    def complete(self, collection, is_public: bool, existing_sources: list) -> None:
        """Reveal everything the import wrote, in one transaction."""
        kinds = PendingObject.Kind
        with transaction.atomic():
            if self.written(kinds.COLLECTION).exists():
                Collection.objects.filter(pk=collection.pk).update(is_public=is_public)
                collection.is_public = is_public
            collection.sources.add(*existing_sources)
            Source.objects.filter(pk__in=self.written(kinds.SOURCE)).update(
                withdrawn_at=None, withdrawn_reason=""
            )
            Annotation.objects.filter(pk__in=self.written(kinds.ANNOTATION)).update(
                collection=collection
            )
            self.delete()

    def discard(self) -> None:
        """Delete everything the import wrote, annotations in batches (each its own short
        transaction), then the blobs it stored that no source holds any more."""
        kinds = PendingObject.Kind
        while True:
            with transaction.atomic():
                batch = list(
                    PendingObject.objects.filter(pending=self, kind=kinds.ANNOTATION).values_list(
                        "pk", "object_id"
                    )[:DISCARD_BATCH]
                )
                if not batch:
                    break
                Annotation.objects.filter(pk__in=[object_id for _, object_id in batch]).delete()
                PendingObject.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
        blobs = list(
            PendingObject.objects.filter(pending=self, kind=kinds.BLOB).values_list(
                "name", flat=True
            )
        )
        with transaction.atomic():
            # Queryset deletes: Source.delete refuses sources with annotations, to protect
            # people's work; these hold only this import's, deleted above.
            Source.objects.filter(pk__in=self.written(kinds.SOURCE)).delete()
            Collection.objects.filter(pk__in=self.written(kinds.COLLECTION)).delete()
            get_user_model().objects.filter(pk__in=self.written(kinds.PERSON)).delete()
            self.delete()
        storage = archive_storage()
        for name in blobs:
            if not Source.objects.filter(blob_name=name).exists():
                with contextlib.suppress(OSError):
                    storage.delete(name)


DISCARD_BATCH = 1000


class PendingObject(models.Model):
    """One row, collection, account or blob an unfinished import wrote."""

    class Kind(models.TextChoices):
        COLLECTION = "collection"
        SOURCE = "source"
        ANNOTATION = "annotation"
        PERSON = "person"
        BLOB = "blob"

    pending = models.ForeignKey(PendingImport, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    object_id = models.BigIntegerField(null=True, blank=True)
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["pending", "kind"], name="pendingobject_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id or self.name}"
