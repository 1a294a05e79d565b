"""Code that builds the training data and trains the shipped models (``python -m cryspext.training.<family>``).

Training reads documented data (the project's ``shared/data`` folder or a path you give);
nothing here is needed at run time.
"""
