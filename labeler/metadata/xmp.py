"""The XMP payload of the image carriers: property ``TC260:AIGC`` (carrier ``xmp-tc260``).

The image practice guide TC260-PG-20259A (as digested in ``shared/spec/labeling-spec.md``
section 4) puts the label in an XMP packet as the simple property ``AIGC`` of the
namespace ``http://www.tc260.org.cn/ns/AIGC/1.0/`` (prefix ``TC260``), whose text is
the label JSON; other properties of that namespace, and of the packet, are left alone.
XMP itself: ISO 16684-1 (XMP Specification Part 1) 7 (RDF/XML serialization) and
7.3 (packet wrapper ``<?xpacket ...?>``).

Reading (:func:`extract_aigc`) parses the packet with :mod:`defusedxml` (DTDs,
entities and external references refused) and matches the namespace URI, never
the prefix: real files bind ``C260:`` and others to the same URI. Both the element
form ``<TC260:AIGC>json</TC260:AIGC>`` and the attribute form
``<rdf:Description TC260:AIGC="json"/>`` (ISO 16684-1 7.9.2.3, simple properties as
attributes) are found.

:func:`packet_labels` also reports a label put in any other property (``dc:description``,
``exif:UserComment``...) as a non-standard declaration.

Writing (:func:`upsert_aigc`) edits an existing packet textually so that every
other byte stays as it was: only the value of the first ``TC260:AIGC`` property
changes (element or attribute form, whatever its prefix), further copies are cut
out, or a new ``rdf:Description`` is added before ``</rdf:RDF>``. The packet is
first checked by defusedxml; the positions are then found by a small lexer that
only has to understand a document expat has already accepted as well-formed and
DTD-free (tags, attributes, comments, CDATA, processing instructions). The
whitespace padding before ``<?xpacket end=...?>`` (ISO 16684-1 7.3.3, there for
in-place edits) absorbs the size change where it can, so the packet keeps its size.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree as DET

from labeler import limits
from labeler.errors import CorruptFile, InvalidLabel, LabelerError, UnsafeInput
from labeler.metadata import FoundLabel, misplaced_label

#: Namespace URI of the TC260 AIGC label (TC260-PG-20259A).
TC260_NS = "http://www.tc260.org.cn/ns/AIGC/1.0/"
#: The property name inside that namespace.
AIGC_PROPERTY = "AIGC"

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XMPMETA_NS = "adobe:ns:meta/"
_XMPNOTE_NS = "http://ns.adobe.com/xmp/note/"
_XML_NS = "http://www.w3.org/XML/1998/namespace"
# ISO 16684-1 7.3.2: the packet header's id is this fixed string.
_PACKET_ID = "W5M0MpCehiHzreSzNTczkc9d"

# Where the XML of a packet starts: the first of these (leading garbage, a BOM or NULs are skipped).
_STARTS = (b"<?xpacket", b"<?xml", b"<x:xmpmeta", b"<x:xapmeta", b"<rdf:RDF")
_TRAILER = re.compile(rb"<\?xpacket\s+end\s*=\s*['\"][rw]?['\"]\s*\?>")
_XML_DECL_ENCODING = re.compile(rb"""^(<\?xml[^>]*?\sencoding\s*=\s*)(["'])[^"']*\2""")
# XML 1.0 2.2 Char: these code points cannot appear in a document, not even as character references.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_NAME = re.compile(rb"[^\s/>]+")
_ATTR = re.compile(rb"""(\s+)([^\s=/>]+)\s*=\s*("[^"]*"|'[^']*')""")
_TAG_CLOSE = re.compile(rb"\s*(/?)>")
_CHAR_REF = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


# -- reading ---------------------------------------------------------------------------------------
def extract_aigc(packet: bytes) -> list[str]:
    """Return every ``TC260:AIGC`` value of an XMP packet, in document order.

    Parameters
    ----------
    packet : bytes
        The packet as stored (UTF-8, or UTF-16/32 with a byte order mark); a
        leading BOM, leading garbage, the ``<?xpacket`` wrapper and trailing
        NUL padding are tolerated.

    Returns
    -------
    list of str
        The property values, XML-unescaped, element form and attribute form,
        whatever prefix the file binds to :data:`TC260_NS`. Empty if none.

    Raises
    ------
    UnsafeInput
        Packet over :data:`labeler.limits.MAX_XMP_PACKET` bytes, or a DTD / entity declaration.
    CorruptFile
        The packet is not well-formed XML.
    """
    _, doc, _ = _split(packet)
    if not doc.strip():
        return []
    return _aigc_values(_parse(doc))


def packet_labels(packet: bytes, where: str) -> list[FoundLabel]:
    """Every label value of an XMP packet, as the image and MP4 readers report them.

    First each ``TC260:AIGC`` value (carrier ``xmp-tc260``, standard), then a label put in any other
    property (``dc:description``, ``exif:UserComment``...: carrier ``xmp-<property name>``, a
    non-standard declaration, see :func:`labeler.metadata.misplaced_label`). The packet is parsed
    once; errors as :func:`extract_aigc`.

    Parameters
    ----------
    packet : bytes
        The packet as stored.
    where : str
        Where the packet is, for people (e.g. ``"APP1 XMP packet"``).
    """
    _, doc, _ = _split(packet)
    if not doc.strip():
        return []
    root = _parse(doc)
    found = [FoundLabel("xmp-tc260", v, where) for v in _aigc_values(root)]
    for prop, text in _other_values(root):
        local = prop.rsplit("}", 1)[-1]
        misplaced = misplaced_label("xmp", local, text, f"{where}, property {prop}")
        if misplaced is not None:
            found.append(misplaced)
    return found


def extended_guid(packet: bytes) -> str | None:
    """The ``xmpNote:HasExtendedXMP`` value of a JPEG's main XMP packet, or None.

    XMP Specification Part 3 (2016) 1.1.3.1: a packet too large for one APP1 segment is split into the
    main packet and an Extended XMP packet stored in ``http://ns.adobe.com/xmp/extension/`` APP1 segments;
    the main packet names the extended one by this GUID (the MD5 of the extended packet, 32 upper-case
    hex digits). exiftool moves the largest properties there, a long ``TC260:AIGC`` (a signature in
    ReservedCode1) among them. Errors as :func:`extract_aigc`.
    """
    _, doc, _ = _split(packet)
    if not doc.strip():
        return None
    key = f"{{{_XMPNOTE_NS}}}HasExtendedXMP"
    for elem in _parse(doc).iter():
        if key in elem.attrib:
            return elem.attrib[key].strip()
        if elem.tag == key and len(elem) == 0:
            return (elem.text or "").strip()
    return None


def _other_values(root) -> list[tuple[str, str]]:
    """``(property, text)`` of every simple value in the packet but ``TC260:AIGC``: attribute values and
    leaf element texts, an ``rdf:li`` / ``rdf:value`` leaf named after the property that holds it."""
    skip = f"{{{TC260_NS}}}{AIGC_PROPERTY}"
    out: list[tuple[str, str]] = []
    stack = [(root, "")]  # iterative: the nesting depth of a hostile packet costs no recursion
    while stack:
        elem, prop = stack.pop()
        if not str(elem.tag).startswith(f"{{{RDF_NS}}}"):
            prop = str(elem.tag)
        out += [(str(k), v) for k, v in elem.attrib.items()
                if k != skip and not str(k).startswith((f"{{{RDF_NS}}}", f"{{{_XML_NS}}}")) and "{" in v]
        if len(elem) == 0 and prop != skip and elem.text and "{" in elem.text:
            out.append((prop, elem.text))
        stack.extend((child, prop) for child in reversed(elem))
    return out


def _aigc_values(root) -> list[str]:
    key = f"{{{TC260_NS}}}{AIGC_PROPERTY}"
    values: list[str] = []
    try:
        for elem in root.iter():
            if key in elem.attrib:
                values.append(elem.attrib[key])
            if elem.tag == key:
                values.append(_element_text(elem))
    except RecursionError:
        raise UnsafeInput("xmp packet is nested too deeply") from None
    return values


def _element_text(elem) -> str:
    if len(elem) == 0:
        return elem.text or ""
    # A simple property written as a language alternative or an rdf:value struct: take the first item.
    for sub in elem.iter():
        if sub.tag in (f"{{{RDF_NS}}}li", f"{{{RDF_NS}}}value") and len(sub) == 0:
            return sub.text or ""
    return "".join(elem.itertext())


def _parse(doc: bytes):
    """Parse ``doc`` with defusedxml, mapping every failure to a one-line LabelerError."""
    try:
        return DET.fromstring(doc, forbid_dtd=True)
    except defusedxml.DTDForbidden:
        raise UnsafeInput("xmp packet declares a dtd (refused: entities, external references)") from None
    except defusedxml.EntitiesForbidden:
        raise UnsafeInput("xmp packet declares xml entities (refused)") from None
    except (defusedxml.ExternalReferenceForbidden, defusedxml.NotSupportedError):
        raise UnsafeInput("xmp packet references external resources (refused)") from None
    except ParseError as exc:
        raise CorruptFile(f"xmp packet is not well-formed xml ({exc})") from None
    except (RecursionError, MemoryError):
        raise UnsafeInput("xmp packet is too deeply nested or too large to parse") from None
    except (ValueError, UnicodeError) as exc:
        raise CorruptFile(f"xmp packet cannot be parsed ({str(exc).splitlines()[0][:80]})") from None


def _split(packet: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a packet into (leading bytes, the XML document as UTF-8, trailing bytes).

    UTF-16/32 packets (ISO 16684-1 7.3.2 allows them) are transcoded to UTF-8, and
    their leading and trailing parts are then empty.
    """
    if len(packet) > limits.MAX_XMP_PACKET:
        raise UnsafeInput(f"xmp packet is {len(packet)} bytes, over the {limits.MAX_XMP_PACKET}-byte limit")
    packet = _to_utf8(packet)
    starts = [i for i in (packet.find(s) for s in _STARTS) if i >= 0]
    start = min(starts) if starts else packet.find(b"<")
    if start < 0:
        return packet, b"", b""
    trailers = list(_TRAILER.finditer(packet, start))
    end = trailers[-1].end() if trailers else packet.rfind(b">") + 1
    if end <= start:
        return packet, b"", b""
    return packet[:start], packet[start:end], packet[end:]


def _to_utf8(packet: bytes) -> bytes:
    codec = None
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if packet.startswith(bom):
            codec = name
            break
    else:
        if packet[:4] == b"<\x00?\x00":
            codec = "utf-16-le"
        elif packet[:4] == b"\x00<\x00?":
            codec = "utf-16-be"
    if codec is None:
        return packet
    try:
        text = packet.decode(codec).encode("utf-8")
    except UnicodeError:
        raise CorruptFile(f"xmp packet is not valid {codec}") from None
    # The declaration would still name the old encoding; the bytes are UTF-8 now.
    return _XML_DECL_ENCODING.sub(rb"\1\2UTF-8\2", text.lstrip(codecs.BOM_UTF8), count=1)


# -- writing ---------------------------------------------------------------------------------------
def upsert_aigc(packet: bytes | None, value: str, *, size_hint: int | None = None) -> bytes:
    """Return ``packet`` carrying ``value`` as its one ``TC260:AIGC`` property.

    Parameters
    ----------
    packet : bytes or None
        The existing XMP packet (edited textually: every other property, prefix,
        comment and byte is kept), or None (or blank) to build a new packet.
    value : str
        The label JSON text; stored XML-escaped.
    size_hint : int, optional
        Desired packet size in bytes; the whitespace padding before
        ``<?xpacket end`` is shrunk or grown to reach it when it can. Defaults
        to the size of ``packet`` (so an edit keeps the packet size), or no
        padding for a new packet.

    Returns
    -------
    bytes
        The UTF-8 packet; ``extract_aigc(result) == [value]``.

    Raises
    ------
    InvalidLabel
        ``value`` holds characters XML 1.0 cannot carry (NUL and other C0 controls).
    CorruptFile, UnsafeInput
        The existing packet is malformed or hostile (see :func:`extract_aigc`).
    """
    if _NOT_XML_CHAR.search(value):
        raise InvalidLabel("label value contains control characters that xml cannot carry")
    if packet is None or not packet.strip(b" \t\r\n\x00"):
        result = new_packet(value)
        if size_hint is not None:
            result = _pad(result, size_hint)
    else:
        result = _edit(packet, value, size_hint)
    if extract_aigc(result) != [value]:
        raise LabelerError("internal error: the edited xmp packet does not read back the label")
    return result


def remove_aigc(packet: bytes, *, size_hint: int | None = None) -> bytes:
    """Return ``packet`` without its ``TC260:AIGC`` properties (same edit rules as :func:`upsert_aigc`).

    Used for a second XMP packet in a file, so that only one label remains. ``size_hint`` as for
    :func:`upsert_aigc` (default: keep the packet's size, padding it); 0 adds no padding (a JPEG
    Extended XMP packet, which is rewritten whole anyway).
    """
    return _edit(packet, None, size_hint)


def new_packet(value: str) -> bytes:
    """A new packet (ISO 16684-1 7.3 wrapper, ``x:xmpmeta``, one ``rdf:Description``) holding ``value``."""
    return (
        f'<?xpacket begin="\ufeff" id="{_PACKET_ID}"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        f' <rdf:RDF xmlns:rdf="{RDF_NS}">\n'
        f'  <rdf:Description rdf:about="" xmlns:TC260="{TC260_NS}">\n'
        f"   <TC260:AIGC>{_escape_text(value)}</TC260:AIGC>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()


def _escape_text(value: str) -> str:
    # XML 1.0 2.4 (& and < must be escaped; > too, for "]]>"); 2.11: a raw CR would read back as LF.
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _escape_attr(value: str) -> str:
    # XML 1.0 3.3.3: whitespace characters in attribute values are normalized to spaces unless referenced.
    out = _escape_text(value).replace('"', "&quot;").replace("'", "&apos;")
    return out.replace("\t", "&#9;").replace("\n", "&#10;")


def _unescape(text: str) -> str:
    def sub(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref.startswith("#x"):
            return chr(int(ref[2:], 16))
        if ref.startswith("#"):
            return chr(int(ref[1:]))
        return _ENTITIES[ref]

    return _CHAR_REF.sub(sub, text)


@dataclass
class _Attr:
    qname: bytes
    ws_start: int  # start of the whitespace before the name
    value_start: int  # first byte inside the quotes
    value_end: int  # the closing quote
    value: str

    @property
    def end(self) -> int:
        return self.value_end + 1


@dataclass
class _Elem:
    qname: bytes
    start: int  # the '<'
    head_end: int  # just after the start tag's '>'
    empty: bool  # an empty-element tag <a/>
    scope: dict[bytes, str]
    attrs: list[_Attr] = field(default_factory=list)
    content_end: int = -1  # the '</' of the end tag
    end: int = -1  # just after the end tag

    def resolve(self, qname: bytes, *, attribute: bool = False) -> tuple[str | None, bytes]:
        prefix, _, local = qname.rpartition(b":")
        if not prefix and attribute:
            return None, local  # XML Namespaces 6.2: unprefixed attributes have no namespace
        return self.scope.get(prefix), local


def _lex(doc: bytes) -> list[_Elem]:
    """Elements of a well-formed, DTD-free document (already accepted by defusedxml), in document order."""
    elems: list[_Elem] = []
    stack: list[_Elem] = []
    scope: dict[bytes, str] = {b"xml": _XML_NS}
    pos = 0
    try:
        while True:
            lt = doc.find(b"<", pos)
            if lt < 0:
                break
            if doc.startswith(b"<!--", lt):
                pos = doc.index(b"-->", lt + 4) + 3
            elif doc.startswith(b"<![CDATA[", lt):
                pos = doc.index(b"]]>", lt + 9) + 3
            elif doc.startswith(b"<?", lt):
                pos = doc.index(b"?>", lt + 2) + 2
            elif doc.startswith(b"<!", lt):
                raise UnsafeInput("xmp packet declares a dtd (refused)")
            elif doc.startswith(b"</", lt):
                pos = doc.index(b">", lt) + 1
                elem = stack.pop()
                elem.content_end, elem.end = lt, pos
                scope = stack[-1].scope if stack else {b"xml": _XML_NS}
            else:
                name = _NAME.match(doc, lt + 1)
                if name is None:
                    raise CorruptFile("xmp packet has a malformed tag")
                attrs: list[_Attr] = []
                cur = name.end()
                while (match := _ATTR.match(doc, cur)) is not None:
                    raw = match.group(3)[1:-1].decode("utf-8")
                    attrs.append(_Attr(match.group(2), match.start(1), match.start(3) + 1,
                                       match.end(3) - 1, _unescape(raw)))
                    cur = match.end()
                close = _TAG_CLOSE.match(doc, cur)
                if close is None:
                    raise CorruptFile("xmp packet has a malformed tag")
                new_scope = scope
                for attr in attrs:
                    if attr.qname == b"xmlns" or attr.qname.startswith(b"xmlns:"):
                        if new_scope is scope:
                            new_scope = dict(scope)  # copied only when this tag declares a namespace
                        new_scope[attr.qname[6:]] = attr.value
                empty = close.group(1) == b"/"
                elem = _Elem(name.group(), lt, close.end(), empty, new_scope, attrs)
                elems.append(elem)
                pos = close.end()
                if empty:
                    elem.content_end = elem.end = pos
                else:
                    stack.append(elem)
                    scope = new_scope
    except (ValueError, IndexError, UnicodeError):
        raise CorruptFile("xmp packet is not well-formed xml") from None
    return elems


def _edit(packet: bytes, value: str | None, size_hint: int | None) -> bytes:
    if size_hint is None:
        size_hint = len(packet)
    head, doc, tail = _split(packet)
    if not doc.strip():
        raise CorruptFile("xmp packet holds no xml")
    _parse(doc)  # refuses DTDs/entities and malformed XML before the lexer sees the text
    elems = _lex(doc)
    targets: list[tuple[_Elem, _Attr | None]] = []
    for elem in elems:
        for attr in elem.attrs:
            if elem.resolve(attr.qname, attribute=True) == (TC260_NS, AIGC_PROPERTY.encode()):
                targets.append((elem, attr))
        if elem.resolve(elem.qname) == (TC260_NS, AIGC_PROPERTY.encode()):
            targets.append((elem, None))
    edits: list[tuple[int, int, bytes]] = []
    for elem, attr in targets:
        span = (attr.ws_start, attr.end) if attr else (elem.start, elem.end)
        if any(a <= span[0] and span[1] <= b for a, b, _ in edits):
            continue  # inside a property already rewritten or removed
        if value is not None and not edits:
            edits.append(_replacement(doc, elem, attr, value))
        elif attr is not None:
            edits.append((attr.ws_start, attr.end, b""))
        else:
            edits.append((_line_start(doc, elem.start), elem.end, b""))
    if value is not None and not edits:
        edits.append(_insertion(doc, elems, value))
    out = doc
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    return _pad(head + out + tail, size_hint, len(head), len(head) + len(out))


def _replacement(doc: bytes, elem: _Elem, attr: _Attr | None, value: str) -> tuple[int, int, bytes]:
    if attr is not None:
        return attr.value_start, attr.value_end, _escape_attr(value).encode("utf-8")
    text = _escape_text(value).encode("utf-8")
    if elem.empty:
        inner = doc[elem.start + 1:elem.head_end - 2].rstrip()  # name and attributes, without "/>"
        return elem.start, elem.end, b"<" + inner + b">" + text + b"</" + elem.qname + b">"
    return elem.head_end, elem.content_end, text


def _line_start(doc: bytes, pos: int) -> int:
    # Cut the indentation and line break before a removed element too, so no blank line is left.
    start = pos
    while start > 0 and doc[start - 1] in b" \t":
        start -= 1
    if start > 0 and doc[start - 1] == 0x0A:
        start -= 1
        if start > 0 and doc[start - 1] == 0x0D:
            start -= 1
        return start
    return pos


def _insertion(doc: bytes, elems: list[_Elem], value: str) -> tuple[int, int, bytes]:
    rdf = next((e for e in elems if e.resolve(e.qname) == (RDF_NS, b"RDF")), None)
    parent = rdf or next(
        (e for e in elems if e.resolve(e.qname) in ((_XMPMETA_NS, b"xmpmeta"), (_XMPMETA_NS, b"xapmeta"))),
        None,
    )
    if parent is None:
        raise CorruptFile("xmp packet has no rdf:RDF element to add the label to")
    prefix = parent.qname.rpartition(b":")[0] if rdf else b""
    rdf_prefix = prefix or b"rdf"
    rdf_decl = b""
    if parent.scope.get(rdf_prefix) != RDF_NS:
        rdf_decl = b" xmlns:" + rdf_prefix + f'="{RDF_NS}"'.encode()
    desc = rdf_prefix + b":Description"
    tc260_decl = f' xmlns:TC260="{TC260_NS}">'.encode()
    open_tag = b"<" + desc + b" " + rdf_prefix + b':about=""' + rdf_decl + tc260_decl
    text = _escape_text(value).encode("utf-8")
    # Follow the packet's layout: indented lines if </rdf:RDF> sits on its own line, else one line.
    before = doc[:parent.content_end] if not parent.empty else b""
    line = before.rsplit(b"\n", 1)
    indent = line[1] if len(line) == 2 and not line[1].strip() else None
    if indent is not None:
        nl = b"\r\n" if line[0].endswith(b"\r") else b"\n"
        block = (
            b" " + open_tag
            + nl + indent + b"  <TC260:AIGC>" + text + b"</TC260:AIGC>" + nl + indent + b" </" + desc + b">"
            + nl + indent
        )
    else:
        block = (
            open_tag
            + b"<TC260:AIGC>" + text + b"</TC260:AIGC></" + desc + b">"
        )
    if rdf is None:
        rdf_open = f'<rdf:RDF xmlns:rdf="{RDF_NS}">'.encode()
        block = rdf_open + block.replace(rdf_decl, b"") + b"</rdf:RDF>"
    if parent.empty:
        inner = doc[parent.start + 1:parent.head_end - 2].rstrip()
        return parent.start, parent.end, b"<" + inner + b">" + block + b"</" + parent.qname + b">"
    return parent.content_end, parent.content_end, block


def _pad(packet: bytes, size: int, doc_start: int = 0, doc_end: int | None = None) -> bytes:
    """Shrink or grow the whitespace before ``<?xpacket end`` (or after the root) towards ``size`` bytes."""
    if doc_end is None:
        doc_end = len(packet)
    diff = len(packet) - size
    if diff == 0:
        return packet
    trailers = list(_TRAILER.finditer(packet, doc_start, doc_end))
    if trailers:
        at = trailers[-1].start()
        ws = at
        while ws > doc_start and packet[ws - 1] in b" \t\r\n":
            ws -= 1
        if diff > 0:
            # Keep one character of the run, so the trailer stays on its own line.
            cut = min(diff, max(0, at - ws - 1))
            return packet[:at - cut] + packet[at:]
        return packet[:at] + b" " * -diff + packet[at:]
    if diff < 0:
        # Whitespace after the root element is allowed (XML 1.0 2.8, Misc).
        return packet[:doc_end] + b" " * -diff + packet[doc_end:]
    return packet


__all__ = [
    "TC260_NS", "AIGC_PROPERTY", "extract_aigc", "packet_labels", "upsert_aigc", "remove_aigc", "new_packet",
    "extended_guid",
]
