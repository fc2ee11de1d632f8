"""labapp: the lab engine behind the API authentication course."""
