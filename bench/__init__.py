"""Side-by-side benchmarks: undying vs restate-server 1.7.12 (``python -m bench.run``), and the
undying SDK vs restate-sdk on one server (``python -m bench.sdk``; in-process:
``python -m bench.sdk_micro``).

See ``bench/README.md``. The older micro-benchmarks in this folder (``h2_client_bench.py``,
``http_server_bench.py``) are standalone scripts.
"""
