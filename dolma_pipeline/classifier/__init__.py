"""fastText content classifiers: `dolma train-classifier` and the text preparation its taggers share.

`text.py` holds the one preparation function and the unit splitter used both to build training examples
and by the `fasttext_classifier_v1` / Dolma-named taggers (`taggers/fasttext_classifier.py`), so the
two cannot drift. `command.py` is the command; `dataset.py` streams labelled units to disk,
`balance.py` samples and shuffles them out of core, `card.py` evaluates a model and writes its card.
"""
