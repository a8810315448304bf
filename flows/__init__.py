"""Prefect flows wrapping curate/train units as tasks. Orchestration only: no data logic here.

Nothing here yet: the flows are built in their own issue; ``curate run`` runs in-process for now.
"""
