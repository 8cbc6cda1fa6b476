"""bereit-server: the inference server that runs in each replica and hosts a seed ``score.py``.

Layers: ``main`` (command line, uvicorn) → ``app`` (ASGI routes, errors → HTTP) → ``limits``,
``auth``, ``pool`` (admission, keys, run() threads) → ``entry`` (the user's script).
"""
