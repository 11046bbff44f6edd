"""`dolma decontaminate`: flag training text that contains evaluation text (see docs/decontaminate.md).

An index is built once from the evaluation sets (paragraphs and/or word n-grams, normalised) and probed
by every training file; hits become Dolma attributes that `dolma mix` uses to drop documents or cut spans.
"""
