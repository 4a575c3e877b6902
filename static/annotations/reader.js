// Reading page: annotate a selection (filled in by the annotating work).
