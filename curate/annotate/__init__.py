"""Human preference annotation in Argilla: a local server, push, pull, aggregation, agreement, progress.

Modules: ``server`` (the local argilla-server: venv, credentials, up/down/status), ``launcher``
(runs inside the server's venv), ``client`` (which server), ``push``, ``pull``, ``aggregate``,
``agreement``, ``progress``, ``users``, ``cli`` (``curate argilla`` / ``curate annotate``).
"""
