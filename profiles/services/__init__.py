"""Writes. Profiles and identities here; tags in `.tags`, interest scores in `.interests`."""
from .profiles import (
    EDITABLE_FIELDS,
    identity_add,
    note_add,
    profile_create,
    profile_fields_normalise,
    profile_require_active,
    profile_update,
    profile_upsert,
)

__all__ = [
    "EDITABLE_FIELDS", "identity_add", "note_add", "profile_create", "profile_fields_normalise", "profile_require_active",
    "profile_update",
    "profile_upsert",
]
