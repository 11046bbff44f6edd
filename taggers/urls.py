"""URL block and allow lists with Dolma's names, keys and values: a document whose `metadata.url` is on the
list gets one `url` span (score 1) over its text.

Dolma downloads each list from its artifact store at run time; here every tagger takes `list_path` (one
path or a list; local, S3 or HTTP through smart_open) and, without it, stops with an error that names the
lists Dolma uses and how to pass them. Lists are read as Dolma reads them (`taggers.url_lists`):
- `domain_blocklist_*`, `blocklist_*`, `allowlist_wikidata*`: hosts/domain lists, the document's domain
  keys looked up in the list's keys (`allowlist_wikidata_cleaned_v1` is the same list as
  `allowlist_wikidata_v1` in Dolma, whose description filter is never called);
- `link_blocklist_phishing_v1`: one URL per line, the document's URL key looked up;
- `oisd_*`, `brave_*`: Adblock Plus rules, through `AdblockMatcher`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import ConfigError, DataFormatError
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.url_lists import (
    AdblockMatcher,
    domain_keys,
    list_line_keys,
    read_lines,
    url_key,
    wikidata_keys,
    wikidata_line_keys,
)

ARTIFACTS = "https://dolma-artifacts.org/"


class UrlListTagger(Tagger):
    """Base: load the list(s) at `list_path` once per worker; tag documents whose URL matches."""

    NEEDS_LIST: ClassVar[bool] = True
    DOLMA_LISTS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, list_path: str | list[str] | None = None, **options: Any):
        if options:
            raise ConfigError(f"tagger {self.name}: unknown option(s) {sorted(options)}; valid: list_path")
        self.paths = [list_path] if isinstance(list_path, str) else list(list_path or [])
        self.loaded = False

    def setup(self) -> None:
        if self.loaded:
            return
        if not self.paths:
            lists = "\n  ".join(ARTIFACTS + p for p in self.DOLMA_LISTS)
            raise ConfigError(
                f"tagger {self.name} matches URLs against a list that Dolma downloads at run time:\n  {lists}\n"
                f"download it (or use your own list of the same format) and pass it with "
                f"--tagger_options.{self.name}.list_path=PATH (YAML: tagger_options: {{{self.name}: "
                f"{{list_path: [PATH, ...]}}}})")
        self.load(self.paths)
        self.loaded = True

    def load(self, paths: list[str]) -> None:
        raise NotImplementedError

    def matches(self, url: str) -> bool:
        raise NotImplementedError

    def predict(self, doc: Document) -> list[Span]:
        self.setup()
        url = doc.metadata.get("url") or ""
        if not isinstance(url, str):
            raise DataFormatError(doc.path, doc.line or None, f"`metadata.url` of document {doc.id!r} is not a string")
        return [Span(0, len(doc.text), "url", 1.0)] if url and self.matches(url) else []


class KeyListTagger(UrlListTagger):
    """Lists read into a set of keys; a URL matches when one of its keys is in the set."""

    KEYS: ClassVar[Callable[[str], list[str]]] = staticmethod(domain_keys)

    def line_keys(self, line: str) -> Iterator[str]:
        return list_line_keys(line, type(self).KEYS)

    def load(self, paths: list[str]) -> None:
        self.keys: set[str] = set()
        for path in paths:
            for line in read_lines(path):
                self.keys.update(self.line_keys(line))
        if not self.keys:
            raise ConfigError(f"tagger {self.name}: no entries read from {paths}")

    def matches(self, url: str) -> bool:
        return any(key in self.keys for key in type(self).KEYS(url))


class LinkListTagger(KeyListTagger):
    """One URL per line; the document's URL key is looked up."""

    KEYS = staticmethod(url_key)

    def line_keys(self, line: str) -> Iterator[str]:
        line = line.strip().lower()
        if not line.startswith("#"):
            yield line


class WikidataTagger(KeyListTagger):
    """Wikidata query results (JSON lists of rows with `url`); domains and their base domains."""

    KEYS = staticmethod(wikidata_keys)

    def line_keys(self, line: str) -> Iterator[str]:
        return wikidata_line_keys(line)

    def matches(self, url: str) -> bool:
        return any(key in self.keys for cleaned in wikidata_keys(url) for key in wikidata_keys(cleaned))


class AdblockTagger(UrlListTagger):
    """Adblock Plus lists; the document's URL key is checked against the network rules."""

    def load(self, paths: list[str]) -> None:
        rules = sorted({line.strip() for path in paths for line in read_lines(path) if not line.startswith("!")})
        self.matcher = AdblockMatcher(rules)

    def matches(self, url: str) -> bool:
        return any(self.matcher.blocked(key) for key in url_key(url))


def _register(name: str, base: type[UrlListTagger], lists: tuple[str, ...], what: str) -> None:
    doc = f"`metadata.url` on {what} (`url`); needs `list_path`."
    TAGGERS.register(name)(type(name, (base,), {"__doc__": doc, "DOLMA_LISTS": lists, "__module__": __name__}))


_BP = "blocklist_project/blocklist_project-20240207/"
_FB = "blocklist_firebog/blocklist_firebog-20240208/"
_HOSTS = "blocklist_hosts/blocklist_hosts-20240208/"
_PHISHING = ("blocklist_phishing_db/blocklist_phishing_db-20240205/domains.txt.gz",)
_WIKIDATA = ("wikidata/wikidata-20220208/periodical-Q1002697/response.json",
             "wikidata/wikidata-20220208/website-Q35127/response.json")

for _name, _base, _lists, _what in [
    ("domain_blocklist_utp_v1", KeyListTagger, ("blocklist_utp/blocklist_utp-20240205/adult/domains",),
     "Université Toulouse Capitole's adult domain list"),
    ("domain_blocklist_phishing_v1", KeyListTagger, _PHISHING, "the Phishing Database's domains"),
    ("link_blocklist_phishing_v1", LinkListTagger, _PHISHING, "the Phishing Database's links"),
    ("oisd_small_abp_v1", AdblockTagger, ("blocklist_oisd/blocklist_oisd-20240205/oisd_small_abp.txt.gz",),
     "OISD small (Adblock Plus rules)"),
    ("oisd_big_abp_v1", AdblockTagger, ("blocklist_oisd/blocklist_oisd-20240205/oisd_big_abp.txt.gz",),
     "OISD big (Adblock Plus rules)"),
    ("oisd_nsfw_abp_v1", AdblockTagger, ("blocklist_oisd/blocklist_oisd-20240205/oisd_nsfw_abp.txt.gz",),
     "OISD NSFW (Adblock Plus rules)"),
    ("brave_core_abp_v1", AdblockTagger, (
        "blocklist_brave/blocklist_brave-20240206/brave_ad_block_first_party_filters.txt",
        "blocklist_brave/blocklist_brave-20240206/brave_ad_block_updater.txt"), "Brave's core ad-block rules"),
    ("brave_nsfw_abp_v1", AdblockTagger, ("blocklist_brave/blocklist_brave-20240206/blocklists_anti_porn.txt",),
     "Brave's anti-porn rules"),
    ("blocklist_project_nsfw_v1", KeyListTagger, (_BP + "porn.txt",), "the Block List Project's porn list"),
    ("blocklist_project_social_v1", KeyListTagger, tuple(_BP + f for f in (
        "facebook.txt", "fortnite.txt", "tiktok.txt", "twitter.txt", "whatsapp.txt", "youtube.txt")),
     "the Block List Project's social lists"),
    ("blocklist_project_crime_v1", KeyListTagger, tuple(_BP + f for f in (
        "abuse.txt", "fraud.txt", "malware.txt", "phishing.txt", "piracy.txt", "ransomware.txt", "scam.txt",
        "redirect.txt")), "the Block List Project's crime lists"),
    ("blocklist_project_vice_v1", KeyListTagger, tuple(_BP + f for f in (
        "crypto.txt", "drugs.txt", "gambling.txt", "vaping.txt")), "the Block List Project's vice lists"),
    ("blocklist_project_ads_v1", KeyListTagger, tuple(_BP + f for f in (
        "adobe.txt", "ads.txt", "basic.txt", "smart-tv.txt", "tracking.txt")), "the Block List Project's ad lists"),
    ("blocklist_firebog_ads_v1", KeyListTagger, tuple(_FB + f"ads/{f}" for f in (
        "blue/hosts.txt", "green/AdguardDNS.txt", "green/Admiral.txt", "green/adservers.txt", "green/Easylist-2.txt",
        "green/hosts-2.txt", "green/hosts-3.txt", "green/hosts.txt", "green/serverlist.txt",
        "green/simple_ad.txt")), "Firebog's ad lists"),
    ("blocklist_firebog_crypto_v1", KeyListTagger, (_FB + "crypto/green/hosts_browser.txt",),
     "Firebog's crypto-mining list"),
    ("blocklist_firebog_malicious_v1", KeyListTagger, tuple(_FB + f"malicious/{f}" for f in (
        "blue/phishing-filter-hosts.txt", "blue/Prigent-Malware.txt", "green/AntiMalwareHosts.txt",
        "green/hostfile.txt", "green/hosts-2.txt", "green/hosts.txt", "green/latestdomains.txt",
        "green/main-blacklist.txt", "green/Mandiant_APT1_Report_Appendix_D.txt", "green/notrack-malware.txt",
        "green/phishing_army_blocklist_extended.txt", "green/Prigent-Crypto.txt", "green/RPiList-Malware.txt",
        "green/RPiList-Phishing.txt", "green/simple_malvertising.txt")), "Firebog's malicious-site lists"),
    ("blocklist_firebog_nsfw_v1", KeyListTagger, (
        _FB + "nsfw/blue/pi_blocklist_porn_top1m.list.txt", _FB + "nsfw/blue/Prigent-Adult.txt"),
     "Firebog's NSFW lists"),
    ("blocklist_firebog_social_v1", KeyListTagger, (_FB + "social/blue/facebook.txt",), "Firebog's social list"),
    ("blocklist_firebog_suspicious_v1", KeyListTagger, tuple(_FB + f"suspicious/{f}" for f in (
        "blue/hosts-2.txt", "blue/hosts-3.txt", "blue/hosts-4.txt", "blue/hosts-file.txt", "blue/neohostsbasic.txt",
        "blue/SNAFU.txt", "blue/spammers.txt", "green/hosts.txt", "green/KADhosts.txt", "green/w3kbl.txt")),
     "Firebog's suspicious-site lists"),
    ("blocklist_firebog_trackers_v1", KeyListTagger, tuple(_FB + f"trackers/{f}" for f in (
        "blue/ads-and-tracking-extended.txt", "blue/AmazonFireTV.txt", "blue/android-tracking.txt",
        "blue/notrack-blocklist.txt", "blue/SmartTV.txt", "green/Easyprivacy.txt",
        "green/firstparty-trackers-hosts.txt", "green/hosts.txt", "green/Prigent-Ads.txt", "green/spy.txt")),
     "Firebog's tracker lists"),
    ("blocklist_hosts_adware_malware_v1", KeyListTagger, (_HOSTS + "adware_malware.txt",),
     "the hosts project's adware/malware list"),
    ("blocklist_hosts_fakenews_v1", KeyListTagger, (_HOSTS + "fakenews.txt",), "the hosts project's fake-news list"),
    ("blocklist_hosts_gambling_v1", KeyListTagger, (_HOSTS + "gambling.txt",), "the hosts project's gambling list"),
    ("blocklist_hosts_porn_v1", KeyListTagger, (_HOSTS + "porn.txt",), "the hosts project's porn list"),
    ("blocklist_hosts_social_v1", KeyListTagger, (_HOSTS + "social.txt",), "the hosts project's social list"),
    ("allowlist_wikidata_v1", WikidataTagger, _WIKIDATA, "Wikidata's periodicals and websites (an allow list)"),
    ("allowlist_wikidata_cleaned_v1", WikidataTagger, _WIKIDATA,
     "Wikidata's periodicals and websites (Dolma applies no cleaning either)"),
]:
    _register(_name, _base, _lists, _what)
