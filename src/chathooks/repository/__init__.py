"""SQL for sites, their API keys and their endpoints; the API and the CLI both call it."""
