"""What every app's API shares: the error envelope, its schema, pagination and the cache header."""
