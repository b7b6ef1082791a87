"""XMP payload (labeler.metadata.xmp): TC260:AIGC in every shape seen in files, textual edits, hostile XML.

Results are checked with defusedxml (an independent parse of the edited packet) and
by exact byte comparison of everything outside the edited value.
"""

from __future__ import annotations

import codecs
import re

import defusedxml.ElementTree as DET
import pytest
from conftest import PRODUCER

from labeler import limits
from labeler.errors import CorruptFile, InvalidLabel, LabelerError, UnsafeInput
from labeler.metadata import xmp
from labeler.record import AIGCLabel, parse_label

VALUE = AIGCLabel(PRODUCER, "img-2025-000042").to_json()
VALUE2 = AIGCLabel(PRODUCER, "img-2025-000043").to_json()
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS = {"rdf": RDF, "x": "adobe:ns:meta/", "TC260": xmp.TC260_NS, "dc": "http://purl.org/dc/elements/1.1/"}


def esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quot(text: str) -> str:
    return esc(text).replace('"', "&quot;")


def wrap(body: str, padding: int = 0) -> bytes:
    """A packet the way Adobe's toolkit lays it out: wrapper, x:xmpmeta, rdf:RDF, ``body``, padding."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 5.6-c140">\n'
        f' <rdf:RDF xmlns:rdf="{RDF}">\n'
        f"{body}"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        + (" " * 99 + "\n") * (padding // 100)
        + '<?xpacket end="w"?>'
    ).encode()


FOREIGN = (
    '  <rdf:Description rdf:about=""\n'
    '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
    '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
    '   xmp:CreatorTool="Paint 3.0">\n'
    "   <dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">Sunset &amp; sea</rdf:li></rdf:Alt></dc:title>\n"
    "  </rdf:Description>\n"
)


def labeled(value_xml: str, prefix: str = "TC260") -> str:
    return (
        f'  <rdf:Description rdf:about="" xmlns:{prefix}="{xmp.TC260_NS}">\n'
        f"   <{prefix}:AIGC>{value_xml}</{prefix}:AIGC>\n"
        "  </rdf:Description>\n"
    )


# -- reading ---------------------------------------------------------------------------------------
def test_new_packet_layout_and_round_trip():
    packet = xmp.upsert_aigc(None, VALUE)
    text = packet.decode("utf-8")
    assert text.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>')
    assert text.endswith('<?xpacket end="w"?>')
    root = DET.fromstring(packet, forbid_dtd=True)
    assert root.tag == "{adobe:ns:meta/}xmpmeta"
    descriptions = root.findall("rdf:RDF/rdf:Description", NS)
    assert len(descriptions) == 1
    assert descriptions[0].get(f"{{{RDF}}}about") == ""
    assert descriptions[0].find("TC260:AIGC", NS).text == VALUE
    assert f'xmlns:TC260="{xmp.TC260_NS}"' in text
    assert xmp.extract_aigc(packet) == [VALUE]
    assert parse_label(xmp.extract_aigc(packet)[0]).fields["ProduceID"] == "img-2025-000042"


@pytest.mark.parametrize(
    "value",
    [
        '{"Label":"1","ContentProducer":"a&b<c>d]]>","ProduceID":"q\\"uote\'s"}',
        '{"Label":"1","ContentProducer":"豆包","ProduceID":"ÿ-1 \\t"}',
        '{"Label":"1","ProduceID":"line\r\nbreak\ttab"}',
        "",
    ],
)
def test_escaping_round_trips_exactly(value):
    packet = xmp.upsert_aigc(None, value)
    assert xmp.extract_aigc(packet) == [value]
    assert DET.fromstring(packet, forbid_dtd=True).find(".//TC260:AIGC", NS).text in (value, None)
    # and as an attribute in an existing packet
    attr = wrap(f'  <rdf:Description rdf:about="" xmlns:TC260="{xmp.TC260_NS}" TC260:AIGC="x"/>\n')
    assert xmp.extract_aigc(xmp.upsert_aigc(attr, value)) == [value]


@pytest.mark.parametrize("bad", ["a\x00b", "\x01", "x\x1fy", "\ufffe"])
def test_values_xml_cannot_carry_are_refused(bad):
    with pytest.raises(InvalidLabel):
        xmp.upsert_aigc(None, '{"Label":"' + bad + '"}')


def test_doubao_shape_escaped_bare_object_with_missing_fields():
    raw = '{"Label":"1","ContentProducer":"doubao","ProduceID":"2a7f0c"}'
    packet = wrap(labeled(quot(raw)))
    assert b"&quot;" in packet
    assert xmp.extract_aigc(packet) == [raw]


def test_wrapped_object_inside_the_element():
    raw = '{"AIGC": ' + VALUE + "}"
    assert xmp.extract_aigc(wrap(labeled(esc(raw)))) == [raw]


def test_attribute_form_and_other_prefix():
    raw = '{"Label":"1","ContentProducer":"x","ProduceID":"y"}'
    packet = wrap(f'  <rdf:Description rdf:about="" xmlns:C260="{xmp.TC260_NS}" C260:AIGC="{quot(raw)}"/>\n')
    assert xmp.extract_aigc(packet) == [raw]
    assert xmp.extract_aigc(wrap(labeled(esc(raw), prefix="C260"))) == [raw]


def test_prefix_bound_to_another_uri_is_not_a_label():
    other = '  <rdf:Description rdf:about="" xmlns:TC260="http://example.com/not-tc260/"><TC260:AIGC>x</TC260:AIGC>'
    assert xmp.extract_aigc(wrap(other + "</rdf:Description>\n")) == []


def test_tolerated_framing_bom_garbage_nul_padding_utf16():
    body = wrap(FOREIGN + labeled(esc(VALUE)))
    assert xmp.extract_aigc(codecs.BOM_UTF8 + body) == [VALUE]
    assert xmp.extract_aigc(b"\x00\x17garbage<<>>" + body + b"\x00" * 64) == [VALUE]
    assert xmp.extract_aigc(body[body.index(b"<x:xmpmeta"):body.index(b"<?xpacket end")]) == [VALUE]
    decl = b'<?xml version="1.0" encoding="UTF-8"?>' + body[body.index(b"<x:xmpmeta"):]
    assert xmp.extract_aigc(decl) == [VALUE]
    utf16 = body.decode().replace("\ufeff", "").encode("utf-16")
    assert xmp.extract_aigc(utf16) == [VALUE]
    assert xmp.extract_aigc(b"") == []
    assert xmp.extract_aigc(wrap(FOREIGN)) == []


def test_several_values_in_document_order():
    second = f'  <rdf:Description rdf:about="" xmlns:T="{xmp.TC260_NS}" T:AIGC="second"/>\n'
    packet = wrap(labeled("first") + second)
    assert xmp.extract_aigc(packet) == ["first", "second"]


# -- textual edits -----------------------------------------------------------------------------
def test_replace_element_changes_only_the_value_bytes():
    old = wrap(FOREIGN + labeled(esc(VALUE)))
    new = xmp.upsert_aigc(old, VALUE2)
    assert new == old.replace(VALUE.encode(), VALUE2.encode())


def test_replace_keeps_prefix_and_attribute_form():
    desc = f'  <rdf:Description rdf:about="" xmlns:C260="{xmp.TC260_NS}" C260:AIGC="{quot(VALUE)}"/>\n'
    old = wrap(FOREIGN + desc)
    new = xmp.upsert_aigc(old, VALUE2)
    assert new == old.replace(quot(VALUE).encode(), quot(VALUE2).encode())
    assert xmp.extract_aigc(new) == [VALUE2]


def test_empty_element_is_filled():
    desc = f'  <rdf:Description rdf:about="" xmlns:TC260="{xmp.TC260_NS}">\n'
    old = wrap(desc + "   <TC260:AIGC/>\n  </rdf:Description>\n")
    new = xmp.upsert_aigc(old, VALUE)
    assert new == old.replace(b"<TC260:AIGC/>", f"<TC260:AIGC>{esc(VALUE)}</TC260:AIGC>".encode())


def test_several_copies_leave_one_and_other_tc260_properties_stay():
    body = (
        f'  <rdf:Description rdf:about="" xmlns:TC260="{xmp.TC260_NS}" TC260:AIGC="attr-copy">\n'
        "   <TC260:AIGC>element-copy</TC260:AIGC>\n"
        "   <TC260:Note>kept</TC260:Note>\n"
        "  </rdf:Description>\n"
        f'  <rdf:Description rdf:about="" xmlns:C260="{xmp.TC260_NS}">'
        "<C260:AIGC>third</C260:AIGC></rdf:Description>\n"
    )
    new = xmp.upsert_aigc(wrap(FOREIGN + body), VALUE)
    assert xmp.extract_aigc(new) == [VALUE]
    root = DET.fromstring(new[new.index(b"<x:xmpmeta"):new.rindex(b"<?xpacket")], forbid_dtd=True)
    assert root.find(".//TC260:Note", NS).text == "kept"
    assert root.find(".//dc:title/rdf:Alt/rdf:li", NS).text == "Sunset & sea"
    assert FOREIGN.encode() in new


def test_insert_before_rdf_end_keeps_everything_else():
    old = wrap(FOREIGN)
    new = xmp.upsert_aigc(old, VALUE)
    at = old.index(b"</rdf:RDF>")
    assert new.startswith(old[:at]) and new.endswith(old[at:])
    inserted = new[at:len(new) - len(old) + at]
    assert inserted.strip().startswith(b'<rdf:Description rdf:about="" xmlns:TC260="')
    assert xmp.extract_aigc(new) == [VALUE]


def test_insert_into_compact_packet_and_packets_without_rdf():
    compact = wrap(FOREIGN).replace(b"\n", b"")
    new = xmp.upsert_aigc(compact, VALUE)
    assert b"\n" not in new and xmp.extract_aigc(new) == [VALUE]
    meta = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"'
    for bare in (meta + b"/>", meta + b"></x:xmpmeta>"):
        assert xmp.extract_aigc(xmp.upsert_aigc(bare, VALUE)) == [VALUE]
    default_ns = f'<RDF xmlns="{RDF}"><Description xmlns:a="http://a/" a:b="c"/></RDF>'.encode()
    assert xmp.extract_aigc(xmp.upsert_aigc(default_ns, VALUE)) == [VALUE]
    assert xmp.upsert_aigc(b"   \n\x00", VALUE) == xmp.upsert_aigc(None, VALUE)


def test_no_rdf_at_all_is_refused():
    with pytest.raises(CorruptFile):
        xmp.upsert_aigc(b"<foo/>", VALUE)


def test_padding_absorbs_the_change():
    old = wrap(FOREIGN + labeled(esc(VALUE)), padding=2000)
    longer = VALUE.replace("img-2025-000042", "img-2025-000042-with-a-much-longer-produce-id")
    for value in (longer, '{"Label":"1"}', VALUE):
        new = xmp.upsert_aigc(old, value)
        assert len(new) == len(old)
        assert xmp.extract_aigc(new) == [value]
        assert new.endswith(b'<?xpacket end="w"?>')
    assert len(xmp.upsert_aigc(old, VALUE, size_hint=len(old) - 500)) == len(old) - 500


def test_remove_aigc():
    old = wrap(FOREIGN + labeled(esc(VALUE)))
    new = xmp.remove_aigc(old)
    assert xmp.extract_aigc(new) == []
    assert FOREIGN.encode() in new
    assert xmp.remove_aigc(wrap(FOREIGN)) == wrap(FOREIGN)
    assert labeled(esc(VALUE)).split("\n")[1].encode() not in new


def test_cdata_comments_and_pis_do_not_confuse_the_editor():
    body = (
        "  <!-- <TC260:AIGC>not this</TC260:AIGC> -->\n"
        "  <?php echo '<TC260:AIGC>'; ?>\n"
        f'  <rdf:Description rdf:about="" xmlns:TC260="{xmp.TC260_NS}" xmlns:n="http://n/">\n'
        "   <n:note><![CDATA[<TC260:AIGC>nor this</TC260:AIGC>]]></n:note>\n"
        "   <TC260:AIGC a='x > y'>old</TC260:AIGC>\n"
        "  </rdf:Description>\n"
    )
    old = wrap(body)
    new = xmp.upsert_aigc(old, VALUE)
    assert new == old.replace(b">old<", f">{esc(VALUE)}<".encode())


# -- hostile XML ------------------------------------------------------------------------------
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><TC260:AIGC xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/">&e;'
    b"</TC260:AIGC></x:xmpmeta>"
)
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b']><x:xmpmeta xmlns:x="adobe:ns:meta/">&lol9;</x:xmpmeta>'
)


@pytest.mark.parametrize("packet", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_dtds_are_refused(packet):
    for call in (xmp.extract_aigc, lambda p: xmp.upsert_aigc(p, VALUE), xmp.remove_aigc):
        with pytest.raises(UnsafeInput) as info:
            call(packet)
        assert "\n" not in str(info.value) and "dtd" in str(info.value)


@pytest.mark.parametrize(
    "packet",
    [b"<x:xmpmeta><a></x:xmpmeta>", b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&nope;</x:xmpmeta>', b"<a b=c/>",
     b"\xff\xfe\x00garbage<", b"<x:xmpmeta \xff\xff/>"],
)
def test_malformed_xml_is_corrupt(packet):
    for call in (xmp.extract_aigc, lambda p: xmp.upsert_aigc(p, VALUE)):
        with pytest.raises(LabelerError) as info:
            call(packet)
        assert isinstance(info.value, (CorruptFile, UnsafeInput))
        assert "\n" not in str(info.value)


def test_oversized_packet_is_refused():
    packet = wrap(labeled("x")) + b" " * limits.MAX_XMP_PACKET
    with pytest.raises(UnsafeInput, match="over the"):
        xmp.extract_aigc(packet)
    with pytest.raises(UnsafeInput):
        xmp.upsert_aigc(packet, VALUE)


def test_deep_nesting_is_no_recursion_error():
    depth = 20_000
    packet = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b"<a>" * depth + b"</a>" * depth + b"</x:xmpmeta>"
    assert xmp.extract_aigc(packet) == []
    assert xmp.extract_aigc(xmp.upsert_aigc(packet, VALUE)) == [VALUE]


def test_messages_are_one_lowercase_line():
    with pytest.raises(CorruptFile) as info:
        xmp.extract_aigc(b"<a>\n<b>\n</a>")
    message = str(info.value)
    assert "\n" not in message and message[0].islower()
    assert re.search(r"line \d+", message)
