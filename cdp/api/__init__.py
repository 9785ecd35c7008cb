"""The partner REST API's shared parts: keys, authentication, scopes, throttling, errors,
pagination, auditing and the URL root. Each app's own routes live in its `api/` package."""
