"""Payload layer shared by every watermark method: CRC, convolutional code, key-seeded layout.

The 64 user bits are protected in three steps:

1. **CRC-16** (CCITT polynomial ``0x1021``, init ``0xFFFF``) appended -> 80 bits. It is the integrity
   check and one of the two factors of the false-positive bound (``docs/watermark.md``).
2. **Convolutional code**, rate 1/3, constraint length 7, generators 133/171/165 (octal), the code of
   3GPP TS 36.212 section 5.1.3.1, zero-terminated with 6 tail bits -> 258 coded bits. Decoded with a
   soft-decision Viterbi decoder (correlation metric, so the decoder does not need the noise level).
   ``benchmarks/watermark_ecc.py`` measures it against a repetition code at the same chip budget.
3. **Key-seeded layout**: a generator seeded from SHA-256 of the key picks which embedding slots carry
   the pilot (the payload-independent synchronisation pattern) and which coded bit each other slot
   repeats, and draws the +-1 spreading sign of every slot. Another key gives another pilot and other
   signs, so it neither synchronises nor decodes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from labeler.errors import InvalidArgument, LabelerError, UnsupportedLayer

#: User payload size in bytes (64 bits).
PAYLOAD_BYTES = 8
#: CRC length in bits.
CRC_BITS = 16
#: Convolutional code: constraint length and generator polynomials (octal 133, 171, 165).
CONSTRAINT = 7
GENERATORS = (0o133, 0o171, 0o165)
TAIL = CONSTRAINT - 1
INFO_BITS = PAYLOAD_BYTES * 8 + CRC_BITS
CODED_BITS = (INFO_BITS + TAIL) * len(GENERATORS)

_NSTATES = 1 << (CONSTRAINT - 1)
_DOMAIN = b"aigc-labeler/watermark/v1\0"


class WatermarkError(LabelerError):
    """Bad input to the watermark layer (payload size, key, image shape or type)."""


class TooSmallForWatermark(WatermarkError, UnsupportedLayer):
    """The input is fine but cannot carry the mark (an image or video frame under 128 px a side, audio
    too short): the layer does not apply to it, as :class:`~labeler.errors.UnsupportedLayer` says (the
    HTTP service answers 422, not 400: nothing in the request is wrong)."""


def check_payload(payload: bytes) -> bytes:
    """Return ``payload`` as bytes, or raise :class:`WatermarkError` when it is not 8 bytes (bytes,
    bytearray or memoryview, as :func:`check_key` takes)."""
    if isinstance(payload, memoryview):
        payload = payload.tobytes()
    if not isinstance(payload, (bytes, bytearray)):
        # "ABCDEFGH" has 8 characters: "must be 8 bytes" alone read as a wrong length
        raise WatermarkError(f"watermark payload must be {PAYLOAD_BYTES} bytes (64 bits), not "
                             f"{type(payload).__name__}")
    if len(payload) != PAYLOAD_BYTES:
        raise WatermarkError(f"watermark payload must be {PAYLOAD_BYTES} bytes (64 bits), not {len(payload)}")
    return bytes(payload)


def check_key(key: bytes) -> bytes:
    """Return ``key`` as bytes, or raise :class:`WatermarkError` when it is empty or not bytes."""
    if isinstance(key, memoryview):
        key = key.tobytes()
    if not isinstance(key, (bytes, bytearray)) or len(key) == 0:
        raise WatermarkError("watermark key must be non-empty bytes")
    return bytes(key)


#: Shortest key a mark is made with (bytes): ``aigc keygen`` makes 32 random bytes, a key file needs at
#: least 16 (:mod:`labeler.watermark.keyfile`). Anyone who has the key can read and forge the mark, so a
#: short or typed-in key (``b"secret"``) would make it guessable. Reading accepts any non-empty key.
MIN_EMBED_KEY_BYTES = 16


def check_embed_key(key: bytes) -> bytes:
    """:func:`check_key` for embedding: also at least :data:`MIN_EMBED_KEY_BYTES` bytes."""
    key = check_key(key)
    if len(key) < MIN_EMBED_KEY_BYTES:
        raise WatermarkError(f"a watermark key must have at least {MIN_EMBED_KEY_BYTES} bytes, not "
                             f"{len(key)} (aigc keygen, or labeler.watermark.keyfile.generate_key(), makes "
                             "32 random bytes): a short key is guessable, and the key can forge the mark")
    return key


def payload_from_produce_id(produce_id: str) -> bytes:
    """The default 64-bit payload for a label: the first 8 bytes of SHA-256 of its ProduceID (UTF-8).

    A verifier recomputes it from the metadata's ``ProduceID`` and compares it with the watermark.

    Raises
    ------
    InvalidArgument
        ``produce_id`` is not a string.
    """
    if not isinstance(produce_id, str):
        raise InvalidArgument(f"produce_id must be a str, not {type(produce_id).__name__}")
    return hashlib.sha256(produce_id.encode("utf-8")).digest()[:PAYLOAD_BYTES]


# --- CRC ---------------------------------------------------------------------------------------------


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor) of ``data``."""
    crc = 0xFFFF
    for byte in data:  # 8 bytes: a loop over payload bytes, not pixels
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _to_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def info_bits(payload: bytes) -> np.ndarray:
    """Payload plus its CRC as 80 bits (uint8 0/1), MSB first."""
    payload = check_payload(payload)
    return _to_bits(payload + crc16(payload).to_bytes(2, "big"))


def split_info(bits: np.ndarray) -> tuple[bytes, bool]:
    """Inverse of :func:`info_bits`: (payload, crc_ok) from 80 decoded bits."""
    raw = np.packbits(bits.astype(np.uint8)).tobytes()
    payload, crc = raw[:PAYLOAD_BYTES], int.from_bytes(raw[PAYLOAD_BYTES:], "big")
    return payload, crc16(payload) == crc


# --- convolutional code ------------------------------------------------------------------------------


def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """Output signs for every (state, input) pair and the predecessor table.

    The register holds ``(state << 1) | input`` (7 bits, newest bit lowest); the next state is the low
    6 bits. Returns ``out[reg, g]`` in {-1, +1} (bit 1 -> +1) for the 128 register values and
    ``prev[ns, j]``, the register values that lead to next state ``ns`` (j = oldest bit 0 or 1).
    """
    regs = np.arange(1 << CONSTRAINT)
    out = np.empty((regs.size, len(GENERATORS)), dtype=np.float32)
    for g, poly in enumerate(GENERATORS):
        taps = regs & poly
        parity = np.zeros_like(regs)
        for b in range(CONSTRAINT):
            parity ^= (taps >> b) & 1
        out[:, g] = 2.0 * parity - 1.0
    ns = np.arange(_NSTATES)
    prev = np.stack([ns, ns | _NSTATES], axis=1)  # register = oldest bit (6) | next state bits
    return out, prev


_OUT, _PREV = _trellis()


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Encode 0/1 bits (plus 6 zero tail bits) to a {-1, +1} float32 codeword of length 3*(n+6)."""
    u = np.concatenate([bits.astype(np.int64), np.zeros(TAIL, dtype=np.int64)])
    reg = np.zeros(u.size, dtype=np.int64)
    for b in range(CONSTRAINT):  # register at step t holds u[t-6..t]; built by shifts, no per-step loop
        reg |= np.concatenate([np.zeros(b, dtype=np.int64), u[: u.size - b]]) << b
    return _OUT[reg].reshape(-1)


def viterbi_decode(soft: np.ndarray) -> np.ndarray:
    """Soft-decision Viterbi decoding of a zero-terminated rate-1/3 codeword.

    Parameters
    ----------
    soft : ndarray, shape (3 * (n + 6),)
        Soft values, positive meaning coded bit 1; any scale (the correlation metric is scale-free).

    Returns
    -------
    ndarray of uint8, shape (n,)
        The maximum-likelihood information bits (tail removed).
    """
    r = np.asarray(soft, dtype=np.float32).reshape(-1, len(GENERATORS))
    steps = r.shape[0]
    branch = r @ _OUT.T  # (steps, 128): metric of every register value at every step
    metric = np.full(_NSTATES, -np.inf, dtype=np.float32)
    metric[0] = 0.0
    # next state ns = 2k + b (b the new bit) has predecessors k and 32 + k (register's oldest bit j):
    # with the metrics as a (2, 32) array and the branch metrics as (steps, j, k, b), one step is three
    # ufunc calls on views, no gather (the loop over the 86 trellis steps is inherently sequential)
    half = _NSTATES // 2
    branches = branch[:, _PREV].reshape(steps, half, 2, 2).transpose(0, 3, 1, 2).copy()  # (t, j, k, b)
    choice = np.empty((steps, half, 2), dtype=bool)
    m2 = metric.reshape(2, half)
    for t in range(steps):
        cand = m2[:, :, None] + branches[t]
        np.greater(cand[1], cand[0], out=choice[t])
        m2 = np.maximum(cand[0], cand[1]).reshape(2, half)
    choice = choice.reshape(steps, _NSTATES).view(np.uint8)
    state = 0  # zero-terminated
    bits = np.empty(steps, dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        bits[t] = state & 1
        state = int(_PREV[state, choice[t, state]]) >> 1
    return bits[: steps - TAIL]


def list_viterbi(soft: np.ndarray, size: int) -> np.ndarray:
    """Parallel list Viterbi decoding: the ``size`` best paths of the zero-terminated code, best first.

    Seshadri & Sundberg, "List Viterbi decoding algorithms with applications", IEEE Trans. Commun.
    42 (1994): every state keeps its ``size`` best partial paths; the CRC then picks among the final
    list. Path 0 is the maximum-likelihood path of :func:`viterbi_decode`.

    Parameters
    ----------
    soft : ndarray, shape (3 * (n + 6),)
        Soft values, positive meaning coded bit 1, any scale.
    size : int
        List length, >= 1.

    Returns
    -------
    ndarray of uint8, shape (k, n)
        Information bits of the k <= ``size`` terminated paths, in decreasing metric.
    """
    r = np.asarray(soft, np.float32).reshape(-1, len(GENERATORS))
    steps, nstates = r.shape[0], _PREV.shape[0]
    branch = r @ _OUT.T  # (steps, 128): metric of every register at every step
    prev = _PREV >> 1  # (states, 2): the previous states
    metric = np.full((nstates, size), -np.inf, np.float32)
    metric[0, 0] = 0.0
    back = np.empty((steps, nstates, size), np.int32)  # index into the 2 x size candidates
    rows = np.arange(nstates)[:, None]
    for t in range(steps):  # the trellis is sequential; each step is vectorised over states and paths
        cand = (metric[prev] + branch[t, _PREV][:, :, None]).reshape(nstates, 2 * size)
        keep = np.argpartition(cand, size, axis=1)[:, size:]
        back[t] = keep
        metric = cand[rows, keep]
    final = metric[0]
    order = np.argsort(-final, kind="stable")
    order = order[np.isfinite(final[order])]
    state = np.zeros(order.size, np.int64)
    rank = order.astype(np.int64)
    bits = np.empty((order.size, steps), np.uint8)
    for t in range(steps - 1, -1, -1):  # trace all paths back at once
        bits[:, t] = state & 1
        i = back[t, state, rank]
        state, rank = _PREV[state, i // size] >> 1, i % size
    return bits[:, : steps - TAIL]


# --- key-seeded layout -------------------------------------------------------------------------------


def key_rng(key: bytes, label: str) -> np.random.Generator:
    """A generator seeded from SHA-256 of (domain, ``label``, key); no global RNG state is touched."""
    digest = hashlib.sha256(_DOMAIN + label.encode() + b"\0" + check_key(key)).digest()
    return np.random.default_rng(np.frombuffer(digest, dtype=np.uint32))


@dataclass(frozen=True)
class Layout:
    """Which slot carries what, for one key and one method.

    Attributes
    ----------
    sign : ndarray of float32, shape (slots,)
        Key-derived +-1 spreading sign of every slot.
    pilot : ndarray of bool, shape (slots,)
        True where the slot carries the pilot (constant +1 before the sign).
    bit_of_slot : ndarray of int64, shape (slots,)
        Coded-bit index carried by each data slot (-1 for pilot slots).
    """

    sign: np.ndarray
    pilot: np.ndarray
    bit_of_slot: np.ndarray

    def chips(self, codeword: np.ndarray | None) -> np.ndarray:
        """Slot values in {-1, +1}: pilot slots get the sign, data slots sign * codeword bit.

        With ``codeword`` None only the pilot is filled (data slots 0).
        """
        values = np.where(self.pilot, 1.0, 0.0).astype(np.float32)
        if codeword is not None:
            data = ~self.pilot
            values[data] = codeword[self.bit_of_slot[data]]
        return values * self.sign

    def soft_bits(self, slot_values: np.ndarray) -> np.ndarray:
        """Despread received slot values into one soft value per coded bit (sum over its slots)."""
        data = ~self.pilot
        return np.bincount(self.bit_of_slot[data], weights=(slot_values * self.sign)[data],
                           minlength=CODED_BITS).astype(np.float32)


def make_layout(key: bytes, label: str, slots: int, pilot_fraction: float) -> Layout:
    """Draw the layout for ``slots`` embedding slots, ``pilot_fraction`` of them pilot.

    The data slots are dealt to the 258 coded bits in a key-random order so that a burst of lost slots
    (a flat or clipped region) spreads over many coded bits instead of erasing a few.
    """
    rng = key_rng(key, label)
    order = rng.permutation(slots)
    n_pilot = int(round(slots * pilot_fraction))
    pilot = np.zeros(slots, dtype=bool)
    pilot[order[:n_pilot]] = True
    bit_of_slot = np.full(slots, -1, dtype=np.int64)
    data_slots = order[n_pilot:]
    bit_of_slot[data_slots] = np.arange(data_slots.size) % CODED_BITS
    sign = rng.integers(0, 2, slots).astype(np.float32) * 2.0 - 1.0
    return Layout(sign=sign, pilot=pilot, bit_of_slot=bit_of_slot)
