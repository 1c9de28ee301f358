"""The registry: signed cards published, logged and searched (DESIGN §6 of the project).

By concern:

- :mod:`.app`: the HTTP API and the creator's page (FastAPI), :func:`~.app.create_app`;
- :mod:`.server`: opening the database and serving the app with uvicorn;
- :mod:`.admission`: what a push must pass to be registered, all in one transaction;
- :mod:`.upload`: a push's multipart body streamed to files within limits;
- :mod:`.storage`, :mod:`.db`: the tables (SQLAlchemy Core; SQLite or PostgreSQL) and queries;
- :mod:`.sqllog`: the transparency log's tiles and checkpoint in SQL;
- :mod:`.fpsearch`: near-duplicate and contained lookups over stored fingerprint sidecars;
- :mod:`.ratelimit`: the per-client limit on lookups;
- :mod:`.client`: ``registry push`` and ``registry lookup`` (no server code).

This package is the only importer of fastapi and sqlalchemy (the ``registry`` extra); importing
it, or :mod:`.client`, imports neither.
"""
