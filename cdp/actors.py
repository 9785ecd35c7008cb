"""Who did something: a staff member, a partner, or the system (a job, a command)."""
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser


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
