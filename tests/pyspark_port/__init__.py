"""PySpark 4.3's RDD unit tests, ported to aiospark: README.md has the tally."""
