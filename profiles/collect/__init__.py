"""Collection endpoints that speak the tracking SDKs' protocols: Segment's HTTP tracking
API (segment.py, /collect/v1/…) and Sensors Data's (sensors.py, /collect/sa). Each turns
what its SDKs send into profiles.services.collect.Message and hands the batch to
collect_ingest; authentication is the source's write key (profiles.services.sources)."""
