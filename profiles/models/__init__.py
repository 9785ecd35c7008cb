"""Customer profiles, identities, behaviour events, system activity and the tag taxonomy.

Models hold data and invariants only; writes go through `profiles.services`,
`profiles.metrics` (computed fields) and `profiles.activity` (timeline rows).
"""
from .activity import ActorKind, ProfileActivity
from .collection import CollectHourlyCount, CollectLog, CollectOutcome, CollectSource
from .events import Event, EventDefinition, event_property_path
from .imports import (
    ErrorPolicy,
    ImportBatch,
    ImportChange,
    ImportJob,
    ImportKind,
    ImportMode,
    ImportRowError,
    ImportSource,
    ImportStatus,
    MappingTemplate,
)
from .merges import ProfileMerge
from .recommendations import CategorySimilarity, ProductSimilarity, Recommendation, RecommendationReason
from .retention import EventRetention, EventRollup
from .profiles import (
    AttributeDefinition,
    AttributeType,
    Gender,
    Identity,
    IdentityKind,
    LifecycleStage,
    Profile,
    ProfileStatus,
    age_on,
    born_by,
    clean_traits,
)
from .suppression import Suppression
from .tags import (
    InterestMapping,
    InterestScore,
    ProfileTag,
    Tag,
    TagCategory,
    TagKind,
    TagSource,
)

__all__ = [
    "CollectHourlyCount", "CollectLog", "CollectOutcome", "CollectSource",
    "CategorySimilarity",
    "ProductSimilarity",
    "Recommendation",
    "RecommendationReason",
    "ActorKind", "AttributeDefinition", "AttributeType", "Event", "EventDefinition", "Gender", "Identity", "event_property_path",
    "IdentityKind", "LifecycleStage", "Profile", "ProfileActivity", "ProfileMerge", "ProfileStatus", "age_on", "born_by", "clean_traits",
    "InterestMapping", "InterestScore", "ProfileTag", "Tag", "TagCategory", "TagKind", "TagSource",
    "ErrorPolicy", "ImportBatch", "ImportChange", "ImportJob", "ImportKind", "ImportMode", "ImportRowError",
    "ImportStatus", "MappingTemplate", "Suppression",
]
