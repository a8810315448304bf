"""AI feedback (RLAIF): candidates from models, ranked by judges, turned into preference pairs.

Built so far: the content-addressed request cache (:mod:`.cache`), the judges' prompt templates
(:mod:`.prompts`), the pairwise judge with position swap (:mod:`.pairwise`), the rating judge
(:mod:`.rating`), the calibration figures (:mod:`.calibrate`) and the calibration runner over
human-labelled pairs (:mod:`.calibration`, ``curate feedback calibrate``); the models sit
behind :mod:`curate.models`. The recipe section (see
``schemas/feedback.py``) is not accepted by recipes until the engine step that runs it lands.
"""
