"""`dolma tokenize` (alias `dolma tokens`): documents to OLMo token files.

Modules: `command` (the command: Config, run), `work` (its two work units: encode one input file,
write one part), `verify` (`--verify DIR`), `tokenizer_io` (finding, loading and running a tokenizer),
`bpe_cache` (the exact chunk-cached byte-level BPE encoder) and `tokenfile` (the token-file format:
part names, dtypes, document tables; the only module a reader of token files needs). This file imports
nothing, so reading token files does not load the tokenizer or the executor.
"""
