"""Admin for customers and events (`profiles`) and the tag taxonomy (`tags`)."""
from . import import_sources, imports, merging, profiles, retention, sources, tags  # noqa: F401  (registers the ModelAdmins)
