"""A user's own package of datasets, as tests/userdata/batchscope.toml names it."""
