"""Training entry points (SFT, reward, DPO, KTO on TRL). Reads datasets through curate's store API.

Nothing here yet: the training backend is built in its own issue on top of the versioned store.
"""
