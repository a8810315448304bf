"""The data-to-model lifecycle: curate -> label -> train -> evaluate -> gate -> report, resumable.

- :mod:`flows.lifecycle.chain`: load a lifecycle recipe and every recipe it names; check the chain.
- :mod:`flows.lifecycle.state`: run folders, the lock, resuming an unfinished run, the history.
- :mod:`flows.lifecycle.steps`: the steps (plain functions, no orchestrator).
- :mod:`flows.lifecycle.sequence`: their order, run by either executor.
- :mod:`flows.lifecycle.report`: the markdown report.
- :mod:`flows.lifecycle.flow`: the Prefect flow (``curate lifecycle run``, ``curate serve``).
"""
