"""What every domain uses: the guarded datastore and durable writes, the service errors,
the clock, ids, mail, signed tokens, request validation and the database health check.
Imports nothing from the other service folders."""
