"""Background work: each job is an object with ``start()`` and ``close()`` owned by the gateway."""
