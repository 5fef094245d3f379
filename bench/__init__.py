"""Side-by-side benchmark of undying and restate-server 1.7.12 (``python -m bench.run``).

See ``bench/README.md``. The older micro-benchmarks in this folder (``h2_client_bench.py``,
``http_server_bench.py``) are standalone scripts.
"""
