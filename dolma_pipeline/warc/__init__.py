"""`dolma warc`: web archives (WARC, WET) to Dolma documents.

`reader` frames records (gzip members with their byte offsets, or fastwarc streams), `http` parses the
HTTP response inside a record, `content` decides whether a payload is HTML and decodes it, `linearizers`
turn HTML into text, `command` runs it all per WARC file through the shared executor.
"""
