"""The seam through which annotations tells the apps above it that an annotation was written.

Annotations cannot import search (search is built on annotations), yet search must index
an annotation in the same transaction that creates or edits it. So the writer sends
``annotation_written`` and search, which connects to it in ``SearchConfig.ready``, indexes
the annotation. A codebook change that retags thousands of annotations at once sends
``annotations_retagged`` instead, so that they are indexed again in batches. Signals are
sent synchronously: the receiver runs inside the sender's transaction, and an error in it
fails the write, as a direct call did. Nothing else belongs here.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent with ``annotation`` after its tags are set; ``tag_names`` (the names it carries, or
# None to read them back) and ``new`` (created in this transaction, so nothing to replace).
annotation_written = Signal()
# Sent with ``pks`` (a list of annotation ids) after a codebook change set their tags.
annotations_retagged = Signal()
