"""bereit-server: the inference server that runs in each replica and hosts the user's Azure
Machine Learning (v1) ``score.py`` unchanged.

Layers, each importing only from its own and those below it (``tests/unit/server/test_layers.py``
checks): ``main`` (command line, uvicorn) → ``connection`` (HTTP/1.1) → ``app``, ``scoring``
(the endpoints; errors → HTTP) → ``dataplane`` (admission, the run threads, auth, init(),
collection, readiness, deadlines) and ``payloads`` (the body → run()'s argument) → ``limits``,
``pool``, ``auth``, ``collect``, ``metrics``, ``responses`` … → ``entry`` (the user's script).
"""
