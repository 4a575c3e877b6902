"""Work a person asks for and the background worker does (captures, imports): its state as the
person sees it, and what the worker records as it goes.

The worker's task claims a queued job, beats while it runs (from a thread of its own) and
records the outcome. Silence means the worker was stopped: the job's page says so and offers to
run it again. Each run has its number, and every update names the run and the state it expects,
so a worker thought stopped that turns out alive cannot overwrite a newer run's record.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta
from typing import Any, ClassVar

from django.db import DatabaseError, connections, models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# How often a running job's worker records that it is alive; a running job not heard from
# for STALLED_AFTER was stopped with its worker (a restart, a crash, an out-of-memory kill).
HEARTBEAT_SECONDS = 5
STALLED_AFTER = timedelta(minutes=3)


class Job(models.Model):
    """The state of one piece of background work. Subclasses add what the work is about, a
    ``user`` who asked for it, and ``enqueue()``, which queues the task for this run."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(max_length=7, choices=State.choices, default=State.QUEUED)
    progress = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def enqueue(self) -> None:
        raise NotImplementedError

    # --- What the requester sees ----------------------------------------------------------

    @property
    def stalled(self) -> bool:
        """Running, but its worker has not been heard from: it was stopped."""
        if self.state != self.State.RUNNING:
            return False
        return self.heartbeat_at is None or self.heartbeat_at < timezone.now() - STALLED_AFTER

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)

    @property
    def may_retry(self) -> bool:
        return self.stalled

    @property
    def display_state(self) -> str:
        return "stopped" if self.stalled else self.state

    @property
    def status_label(self) -> str:
        return "Stopped" if self.stalled else self.get_state_display()

    # --- What the worker records ----------------------------------------------------------

    def _this_run(self) -> models.QuerySet:
        return type(self)._default_manager.filter(pk=self.pk, attempt=self.attempt)

    def claim(self) -> bool:
        """Mark a queued job running; False if it is not queued (run already, or retried)."""
        now = timezone.now()
        claimed = (
            self._this_run()
            .filter(state=self.State.QUEUED)
            .update(state=self.State.RUNNING, started_at=now, heartbeat_at=now, progress="")
        )
        if claimed:
            self.state, self.started_at, self.heartbeat_at = self.State.RUNNING, now, now
        return bool(claimed)

    def beat(self, progress: str | None = None) -> None:
        changes: dict[str, Any] = {"heartbeat_at": timezone.now()}
        if progress is not None:
            changes["progress"] = progress[:200]
        self._this_run().filter(state=self.State.RUNNING).update(**changes)

    def fail(self, message: str) -> None:
        self._finish(state=self.State.FAILED, error=message)

    def _finish(self, **changes: Any) -> bool:
        """Record the outcome, if this run is still the job's current one."""
        changes["finished_at"] = timezone.now()
        if not self._this_run().filter(state=self.State.RUNNING).update(**changes):
            return False
        for name, value in changes.items():
            setattr(self, name, value)
        return True

    def interrupted(self) -> None:
        """The worker is being stopped mid-run: show the job as stopped at once."""
        self._this_run().filter(state=self.State.RUNNING).update(heartbeat_at=None)

    def retry(self) -> bool:
        """Queue the job again as a new run; False if it may not be retried."""
        if not self.may_retry:
            return False
        cutoff = timezone.now() - STALLED_AFTER
        stopped = models.Q(state=self.State.RUNNING) & (
            models.Q(heartbeat_at__isnull=True) | models.Q(heartbeat_at__lt=cutoff)
        )
        if self.retry_failed:
            stopped |= models.Q(state=self.State.FAILED)
        requeued = (
            self._this_run()
            .filter(stopped)
            .update(
                state=self.State.QUEUED,
                attempt=models.F("attempt") + 1,
                progress="",
                error="",
                started_at=None,
                heartbeat_at=None,
                finished_at=None,
            )
        )
        if requeued:
            self.refresh_from_db()
            transaction.on_commit(self.enqueue)
        return bool(requeued)

    # A failed job that may run again as it is (a capture: the server may answer now).
    retry_failed: ClassVar[bool] = False


class Heartbeat:
    """Records, every HEARTBEAT_SECONDS, that the job's worker is alive and how far it has got.

    It writes from a thread of its own, on a database connection of its own: the work writes
    in transactions, and a progress line written inside them would stay unseen until they
    commit. The thread dies with the worker, which is what makes silence mean "stopped".
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        self.progress: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"job-{job.uuid}-heartbeat", daemon=True
        )

    def report(self, text: str) -> None:
        """The work's progress callback: the next beat writes the latest text."""
        self.progress = text

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                try:
                    self.job.beat(self.progress)
                except DatabaseError as exc:
                    # SQLite: another writer held the lock past the busy timeout. The next
                    # beat tries again; only minutes of silence mark the job stopped.
                    logger.warning("Job %s: could not record progress (%s)", self.job.uuid, exc)
        finally:
            connections.close_all()  # this thread's connections only
