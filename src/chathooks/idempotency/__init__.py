"""``Idempotency-Key`` on the site API's POSTs: a retried request gets the first answer again."""
