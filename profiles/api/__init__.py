"""Partner REST API for customer profiles, their tags and behaviour events (/api/v1/)."""
