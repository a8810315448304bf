"""The feedback error a user can fix: a model that cannot be found or loaded, named by its recipe key.

The CLI reports it with exit code 2 (like an invalid recipe), never as an internal error.

Example:
    >>> str(FeedbackError("feedback.judge.model", "./judge does not exist"))
    'feedback.judge.model: ./judge does not exist'
"""

from __future__ import annotations


class FeedbackError(ValueError):
    """A problem in the recipe's ``feedback:`` section found while running it (``where``: the key)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where

    def __reduce__(self) -> tuple[object, ...]:  # crosses process boundaries (Dask workers)
        return (type(self), (self.where, str(self).removeprefix(f"{self.where}: ")))
