"""Human preference annotation in Argilla: a local server, push, pull, aggregation, agreement, progress.

Modules: ``server`` (the local argilla-server: venv, credentials, up/down/status), ``argilla-server/launcher.py``
(runs inside the server's venv), ``client`` (which server), ``push``, ``pull``, ``aggregate``,
``agreement``, ``progress``, ``users``, ``steps`` (the recipe's push/pull); the commands are in ``curate.cli.annotate``.
"""
