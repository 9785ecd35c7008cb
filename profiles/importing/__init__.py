"""Bulk import of customers, events and consent from CRM files: readers (formats and
encodings), mapping (columns → fields), rows (normalisation), store (set-based writes),
pipeline (batches, matching, modes, dry run), undo, and jobs (the service the admin and the
command line call)."""
