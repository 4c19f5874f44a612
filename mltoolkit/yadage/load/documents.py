"""Reading the documents a spec is made of: YAML files and http(s) URLs, each read once."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.limits import YAML_BYTES
from mltoolkit.yamlfiles import parse_yaml_text

__all__ = ["URL_TIMEOUT", "Documents", "display_name", "is_url"]

#: Seconds to wait for an http(s) document before giving up.
URL_TIMEOUT = 10.0


def is_url(text: str) -> bool:
    """True for an http(s) URL."""
    return text.startswith(("http://", "https://"))


def display_name(document: str) -> str:
    """How messages name a document: a URL as is, a file relative to the current folder when below it."""
    if is_url(document):
        return document
    try:
        relative = os.path.relpath(document)
    except ValueError:
        return document
    return document if relative.startswith("..") else relative


def _read_file(document: str, referrer: str) -> str:
    try:
        YAML_BYTES.check(Path(document).stat().st_size, display_name(document), "split the document")
        return Path(document).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            f"{referrer}: file {display_name(document)} does not exist; check the path "
            "(relative references resolve against the referring file's folder, then --toplevel)"
        ) from None
    except IsADirectoryError:
        raise SpecError(f"{referrer}: {display_name(document)} is a directory, expected a YAML file") from None
    except UnicodeDecodeError:
        raise SpecError(f"{referrer}: {display_name(document)} is not UTF-8 text, expected a YAML file") from None
    except OSError as error:
        raise SpecError(f"{referrer}: cannot read {display_name(document)} ({error.strerror})") from None


def _fetch(url: str, referrer: str) -> str:
    most = int(YAML_BYTES.value())
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as response:
            data = response.read(most + 1)
    except urllib.error.HTTPError as error:
        raise SpecError(
            f"{referrer}: fetching {url} failed with HTTP {error.code}; check the URL "
            "or copy the file next to the workflow and use a relative $ref"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise SpecError(
            f"{referrer}: {url} is unreachable ({reason}); check the network, or copy the "
            "file next to the workflow and use a relative $ref"
        ) from None
    if len(data) > most:
        raise YAML_BYTES.exceeded(url, None, "split the document", most)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{referrer}: {url} is not UTF-8 text, expected a YAML document") from None


class Documents:
    """The documents read so far: their text (for line numbers) and parsed content."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.parsed: dict[str, Any] = {}

    def read(self, document: str, referrer: str) -> Any:
        """The parsed content of ``document`` (an absolute path or a URL), read on first use.

        Raises:
            SpecError: missing, unreadable, unreachable, not UTF-8 or not YAML; names ``referrer``.
        """
        if document in self.parsed:
            return self.parsed[document]
        text = _fetch(document, referrer) if is_url(document) else _read_file(document, referrer)
        self.texts[document] = text
        value = parse_yaml_text(text, display_name(document), SpecError)
        self.parsed[document] = value
        return value
