"""`safe_xml`: defusedxml's answer for every body, whichever parser gives it."""

from __future__ import annotations

from xml.etree import ElementTree

import defusedxml.ElementTree as SafeET
import pytest
from defusedxml import DefusedXmlException

from switchboard_core.providers._common import safe_xml


def _defused(body: bytes):
    return SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)


@pytest.mark.parametrize(
    "body",
    [
        (
            b'<?xml version="1.0" encoding="UTF-8"?>'
            b'<a xmlns="urn:x" xmlns:y="urn:y"><y:b c="1">t &amp; \xc3\xa9</y:b>tail</a>'
        ),
        b"\xef\xbb\xbf<a><b>x</b><?pi data?></a>",
        b'<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>',
        "<a>\u00e9\u2713</a>".encode("utf-16"),
        b"<a><![CDATA[x < y]]><!-- note --></a>",
    ],
)
def test_the_same_tree_as_defusedxml(body):
    assert ElementTree.tostring(safe_xml(body)) == ElementTree.tostring(_defused(body))


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
        b'<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>',
        # The same DTD in encodings that do not spell `<!` as those bytes.
        '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'.encode("utf-16"),
        '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'.encode("utf-16-le"),
        (
            b'<?xml version="1.0" encoding="UTF-7"?>'
            b"+ADw-+ACE-DOCTYPE a +AFs-+ADw-+ACE-ENTITY e +ACI-x+ACI-+AD4-+AF0-+AD4-<a>&e;</a>"
        ),
    ],
)
def test_what_defusedxml_forbids_stays_forbidden(body):
    with pytest.raises((DefusedXmlException, ElementTree.ParseError, ValueError, LookupError)) as expected:
        _defused(body)
    with pytest.raises(type(expected.value)):
        safe_xml(body)


@pytest.mark.parametrize("body", [b"", b"<a>", b"<a>&undefined;</a>", b"not xml", b"<a></b>"])
def test_malformed_bodies_raise_what_defusedxml_raises(body):
    with pytest.raises(Exception) as expected:  # whatever defusedxml raises
        _defused(body)
    with pytest.raises(type(expected.value)):
        safe_xml(body)
