"""`cld3.get_language` (the unmaintained `pycld3` API Dolma imports) over `gcld3` from the `cld3-py` wheel,
put on the peer's path by the parity tests so Dolma's `cld3_*` taggers run on the same CLD3 model as ours."""

import gcld3

_IDENTIFIER = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)


def get_language(text):
    return _IDENTIFIER.FindLanguage(text=text)
