"""The RDD API by theme; each module is a mixin of ``aiospark.RDD``."""
