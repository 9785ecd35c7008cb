"""Who did something: a staff member, a partner, or the system (a job, a command)."""
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext_lazy


@dataclass(frozen=True)
class Actor:
    kind: str  # matches profiles.models.ActorKind values: staff / partner / system
    label: str
    user: AbstractBaseUser | None = None

    @classmethod
    def staff(cls, user: AbstractBaseUser) -> "Actor":
        return cls(kind="staff", label=user.get_username(), user=user)

    @classmethod
    def partner(cls, partner) -> "Actor":
        """A partner calling the REST API (cdp.models.Partner)."""
        return cls(kind="partner", label=partner.name)

    @classmethod
    def system(cls, label: str) -> "Actor":
        return cls(kind="system", label=label)


# The jobs and commands that act as "system", by the label they store (always these
# English names, so that each reader sees them in their own language).
SYSTEM_LABELS = {
    "segment": gettext_lazy("segment calculation"),
    "rule tags": gettext_lazy("rule tag refresh"),
    "interest scores": gettext_lazy("interest scores"),
    "tag expiry": gettext_lazy("tag expiry"),
    "import": gettext_lazy("import"),
    "import_file": gettext_lazy("import from the command line"),
    "demo": gettext_lazy("demo data"),
    "retention": gettext_lazy("event retention"),
}


def actor_display(kind: str, label: str) -> str:
    """Who did it, in the reader's language: staff and partners by name, the system's
    jobs by what they are."""
    if kind == "system" and label in SYSTEM_LABELS:
        return str(SYSTEM_LABELS[label])
    return label
