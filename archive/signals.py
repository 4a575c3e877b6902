"""The seam through which archive tells the apps above it that a source was written.

Archive cannot import search (search is built on archive), yet search must index a source
in the same transaction that archives it or edits its metadata. So the writer sends
``source_written`` and search, which connects to it in ``SearchConfig.ready``, indexes the
source. Signals are sent synchronously: the receiver runs inside the sender's transaction,
and an error in it fails the write, as a direct call did. Nothing else belongs here.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent with ``source``, after a source's row (or its metadata) is saved.
source_written = Signal()
