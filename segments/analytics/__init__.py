"""Behaviour analysis: funnels, retention, paths, lifecycle per week, RFM, and the
dashboard's figures. Pure reads (one module per analysis) taking one `now`; the two
writes that turn a result into a segment live in `segment_writes`."""
from .funnel import FunnelQuery, FunnelResult, funnel, funnel_query
from .lifecycle import LifecycleQuery, LifecycleResult, lifecycle, lifecycle_query
from .paths import PathsQuery, PathsResult, paths, paths_query
from .retention import RetentionQuery, RetentionResult, retention, retention_query
from .rfm import RfmQuery, RfmResult, rfm, rfm_query

__all__ = [
    "FunnelQuery", "FunnelResult", "funnel", "funnel_query", "LifecycleQuery", "LifecycleResult", "lifecycle",
    "lifecycle_query", "PathsQuery", "PathsResult", "paths", "paths_query", "RetentionQuery", "RetentionResult",
    "retention", "retention_query", "RfmQuery", "RfmResult", "rfm", "rfm_query",
]
