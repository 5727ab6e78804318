"""Read API for assets and their prices."""
