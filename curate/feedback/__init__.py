"""AI feedback (RLAIF): candidates from models, ranked by judges, turned into preference pairs.

A recipe's ``feedback:`` section (``schemas/feedback.py``) runs as the engine's ``feedback`` step, one
part of curated prompts at a time (:mod:`.part`): :mod:`.inputs` (prompts per record kind) ->
:mod:`.generate` (candidates) -> a judge built by :mod:`.judges` -> :mod:`.rank` (scores, pairs,
routing) -> the part's files and tally; :mod:`.report` adds the run report's section.

Judges: :mod:`.pairwise` (both orders; flips become ties), :mod:`.rating` (1-5 per aspect),
:mod:`.reward` (a trained reward model, scores cached), :mod:`.critique` (critique and revise).
Shared: :mod:`.cache` (the crash-safe, content-addressed request cache), :mod:`.prompts` (judge
templates and their hashes), :mod:`.calibrate` (agreement figures with bootstrap CIs), :mod:`.calibration` (a judge
against human-labelled pairs: ``curate feedback calibrate`` and the recipe's publishing gate),
:mod:`.errors`. The models sit behind :mod:`curate.models`.
"""
