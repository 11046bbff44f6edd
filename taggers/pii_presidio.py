"""An offline presidio `AnalyzerEngine` for `pii_presidio_v1` (imported only in the tagger's `setup()`).

No spaCy model: a no-op NLP engine with presidio's pattern/phonenumbers recognizers for e-mail, IP and
phone numbers. presidio's e-mail recognizer validates domains with `tldextract`, which by default fetches
the public suffix list; here it uses the snapshot bundled with `tldextract`, so nothing is downloaded.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def build_analyzer(language: str = "en", phone_regions: tuple[str, ...] | None = None) -> Any:
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import EmailRecognizer, IpRecognizer, PhoneRecognizer

    offline_extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return offline_extract(pattern_text).fqdn != ""

    phone_options = {"supported_regions": phone_regions} if phone_regions else {}
    recognizers = [
        OfflineEmailRecognizer(supported_language=language),
        IpRecognizer(supported_language=language),
        PhoneRecognizer(supported_language=language, **phone_options),
    ]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=[language])
    engine = NoOpNlpEngine(models=[{"lang_code": language, "model_name": "none"}])
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=[language])
