"""Benchmarks of selfhosted-llm against its peers, run by `make bench` (`python -m benchmarks`).

Every variant talks to one canned OpenAI-compatible server (`benchmarks.server`) so that the
clients, not the server, decide the figures; each runs in its own worker process
(`benchmarks.worker`) and measures its own CPU and wall time per request; the runner
(`benchmarks.run`) interleaves the variants, takes medians and reports ratios to the floor.
"""
