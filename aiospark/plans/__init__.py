"""Plans: how each kind of RDD computes its splits.

An ``RDD`` (``aiospark.rdd``) is an identity holding one ``Plan``
(``aiospark.lineage``); the plans here are the kinds of RDD aiospark has.
They sit below the RDD API: they know their parents only as ``lineage.Node``
and never import ``aiospark.rdd``, ``aiospark.ops`` or ``aiospark.context``.

- ``basic``: records from the driver, narrow functions, shuffles, text files, nothing.
- ``sets``: unions, coalescing, cartesian products, zips.
- ``cogroup``: cogroup, joins and subtract, reading two or more shuffles.
- ``sort``: range partitioning with sampled bounds.
- ``files``: pickle files and whole files.
- ``piped``: records through an external command.
"""
