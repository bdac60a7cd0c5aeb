"""Reading input data: text files split into byte ranges, through fsspec."""
