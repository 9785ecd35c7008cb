"""Partner REST API for segments shared with the partner (/api/v1/segments/)."""
