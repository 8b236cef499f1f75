"""Routing across two real llama-servers (issue 18): `make bench-servers`.

One job per module: `model` (a random-weight GGUF whose prefill costs a few ms per token),
`workload` (the requests, pure), `arms` (the routers compared), `driving` (servers and one
pass), `metrics` (figures and ratios, pure), `targets` (the issue's bounds, as data),
`report` (markdown and JSON, pure) and `run` (the command line).
"""
