"""Built-in benchmarks that train through ``ganforge.train.train`` and score the result, and small probes."""
