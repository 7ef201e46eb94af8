"""A local OpenAI-compatible HTTP server for tests, the demo and benchmarks (real HTTP on loopback).

    from simulator import Simulator
    with Simulator(personality="openai", port=0, latency_scale=0.0) as sim:
        client = openai.OpenAI(api_key="sk-test-not-a-real-key", base_url=sim.base_url)
        client.images.generate(model="gpt-image-2", prompt="a lighthouse", size="1024x1024", quality="medium")
        sim.served[-1]["image_output_tokens"]   # 1756

Routes: POST /v1/images/generations, /v1/images/edits (multipart), /v1/responses (image_generation tool).
Faults: request header `X-Sim-Fault: <fault>[:<count>[:<arg>]]` (simulator.faults), or a default plan
`Simulator(faults={"prompt substring": "rate_limit:2"})`. Token rules: simulator.tokens.
"""

from __future__ import annotations

from simulator.server import Simulator

__all__ = ["Simulator"]
