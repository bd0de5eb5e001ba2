"""
Tests for L{services.discovery._wire}: the discovery datagrams.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from services.discovery._wire import (
    ANNOUNCE,
    MAX_DATAGRAM,
    QUERY,
    REPLY,
    ForeignDatagram,
    MalformedDatagram,
    Message,
    decode,
    encode,
    isEndpoint,
    newInstanceId,
    newNonce,
    query,
)

ID = "0123456789abcdef0123456789abcdef"
NONCE = "00112233aabbccdd"


def announce(**changes: object) -> dict[str, object]:
    """
    The body of a valid announce, with some members changed.
    """
    body: dict[str, object] = {
        "netservices": 1,
        "type": "announce",
        "id": ID,
        "name": "alpha",
        "ttl": 15,
        "services": {"echo": [8007], "web": [8080, 8443]},
    }
    body.update(changes)
    return body


def dumps(body: object) -> bytes:
    """
    JSON bytes for C{body}.
    """
    return json.dumps(body).encode()


class EncodeTests(SynchronousTestCase):
    """
    L{encode} and L{query} write compact, versioned JSON within the size
    limit.
    """

    def test_announceRoundTrip(self) -> None:
        """
        An announce decodes to the message it was encoded from.
        """
        message = Message(ANNOUNCE, ID, "alpha", 15, {"echo": (8007,), "web": (8080, 8443)})
        self.assertEqual(decode(encode(message)), message)

    def test_replyRoundTrip(self) -> None:
        """
        A reply carries the nonce of the query it answers.
        """
        message = Message(REPLY, ID, "ä name", 30, {}, NONCE)
        self.assertEqual(decode(encode(message)), message)

    def test_compact(self) -> None:
        """
        The JSON has no spaces and starts with the magic member, the version.
        """
        data = encode(Message(ANNOUNCE, ID, "alpha", 15, {"echo": (8007,)}))
        self.assertEqual(
            data,
            b'{"netservices":1,"type":"announce","id":"' + ID.encode() + b'","name":"alpha",'
            b'"ttl":15,"services":{"echo":[8007]}}',
        )

    def test_tooLarge(self) -> None:
        """
        A message that would exceed L{MAX_DATAGRAM} bytes is refused.
        """
        services = {f"s{i}": tuple(range(10000, 10100)) for i in range(5)}
        with self.assertRaises(ValueError):
            encode(Message(ANNOUNCE, ID, "alpha", 15, services))

    def test_queryPadded(self) -> None:
        """
        A query is padded to exactly the size asked for, L{MAX_DATAGRAM} by
        default, and decodes to its nonce.
        """
        for size in (100, 101, 500, MAX_DATAGRAM):
            data = query(NONCE, size)
            self.assertEqual(len(data), size)
            self.assertEqual(decode(data), Message(QUERY, nonce=NONCE))
        self.assertEqual(len(query(NONCE)), MAX_DATAGRAM)

    def test_querySmallest(self) -> None:
        """
        A query asked to be smaller than it can be is as small as it can be,
        and never larger than L{MAX_DATAGRAM}.
        """
        smallest = len(
            json.dumps({"netservices": 1, "type": "query", "nonce": NONCE}, separators=(",", ":"))
        )
        self.assertEqual(len(query(NONCE, 0)), smallest)
        self.assertEqual(len(query(NONCE, 10**6)), MAX_DATAGRAM)

    def test_fresh(self) -> None:
        """
        Instance ids are 32 hex digits and nonces 16, different each time.
        """
        self.assertRegex(newInstanceId(), "^[0-9a-f]{32}$")
        self.assertRegex(newNonce(), "^[0-9a-f]{16}$")
        self.assertNotEqual(newInstanceId(), newInstanceId())
        self.assertNotEqual(newNonce(), newNonce())


class DecodeTests(SynchronousTestCase):
    """
    L{decode} tells foreign datagrams from malformed ones of ours.
    """

    def test_foreign(self) -> None:
        """
        Bytes that are not UTF-8 JSON objects with the magic member, or that
        carry another version, are foreign.
        """
        for data in (
            b"",
            b"\xff\xfe",
            b"hello",
            b"[1, 2]",
            b'{"type": "query"}',
            dumps(announce(netservices=2)),
            dumps(announce(netservices=True)),
            dumps(announce(netservices=1.0)),
            b"[" * 5000 + b"]" * 5000,
        ):
            with self.assertRaises(ForeignDatagram, msg=repr(data[:40])):
                decode(data)

    def test_malformed(self) -> None:
        """
        Datagrams of our version with a bad type or member are malformed.
        """
        for body in (
            announce(type="shout"),
            announce(id="XYZ"),
            announce(id=ID.upper()),
            announce(name=""),
            announce(name="x" * 65),
            announce(name="tab\there"),
            announce(name=7),
            announce(ttl=0),
            announce(ttl=3601),
            announce(ttl=True),
            announce(ttl=1.5),
            announce(services=[]),
            announce(services={"Echo": [7]}),
            announce(services={"echo": [0]}),
            announce(services={"echo": [65536]}),
            announce(services={"echo": [True]}),
            announce(services={"echo": 7}),
            announce(services={f"s{i}": [] for i in range(17)}),
            announce(services={"echo": list(range(1, 18))}),
            announce(type="reply"),
            announce(type="reply", nonce="short"),
            {"netservices": 1, "type": "query"},
            {"netservices": 1, "type": "query", "nonce": NONCE.upper()},
        ):
            with self.assertRaises(MalformedDatagram, msg=repr(body)):
                decode(dumps(body))

    def test_unknownMembersIgnored(self) -> None:
        """
        Members that version 1 does not know are ignored.
        """
        message = decode(dumps(announce(extra={"x": 1})))
        self.assertEqual(message.name, "alpha")

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=MAX_DATAGRAM + 10))
    def test_arbitraryBytes(self, data: bytes) -> None:
        """
        Arbitrary bytes decode or raise L{ForeignDatagram} or
        L{MalformedDatagram}, nothing else.
        """
        try:
            decode(data)
        except (ForeignDatagram, MalformedDatagram):
            pass

    @settings(max_examples=300, deadline=None)
    @given(
        st.dictionaries(
            st.sampled_from(["netservices", "type", "id", "name", "ttl", "services", "nonce"]),
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers()
                | st.floats()
                | st.text(max_size=40)
                | st.sampled_from([1, "announce", "query", "reply", ID, NONCE]),
                lambda children: (
                    st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=8), children, max_size=4)
                ),
                max_leaves=10,
            ),
        )
    )
    def test_arbitraryObjects(self, body: dict[str, object]) -> None:
        """
        Arbitrary JSON objects built from our member names decode or raise
        L{ForeignDatagram} or L{MalformedDatagram}, nothing else.
        """
        try:
            decode(json.dumps(body).encode())
        except (ForeignDatagram, MalformedDatagram):
            pass


class EndpointsTests(SynchronousTestCase):
    """
    The optional C{endpoints} member of announces and replies.
    """

    def test_roundTrip(self) -> None:
        """
        Endpoints survive encoding and decoding; a message without them
        decodes to L{None} (an older sender).
        """
        message = Message(
            ANNOUNCE, "a" * 32, "alpha", 15, {"echo": (7,)},
            endpoints={"echo": ("198.18.0.1:7", "[2001:db8::1]:7")},
        )  # fmt: skip
        self.assertEqual(decode(encode(message)), message)
        plain = Message(ANNOUNCE, "a" * 32, "alpha", 15, {"echo": (7,)})
        self.assertIsNone(decode(encode(plain)).endpoints)

    def test_bad(self) -> None:
        """
        Endpoints that are not C{a.b.c.d:port} or C{[IPv6]:port} make the
        datagram malformed.
        """
        for bad in (["198.18.0.1"], ["198.18.0.1:0"], ["2001:db8::1:7"], ["[198.18.0.1]:7"],
                    ["host:7"], [7], "198.18.0.1:7", ["1.2.3.4:7"] * 17):
            body = json.loads(encode(Message(ANNOUNCE, "a" * 32, "alpha", 15, {})))
            body["endpoints"] = {"echo": bad}
            with self.assertRaises(MalformedDatagram, msg=repr(bad)):
                decode(json.dumps(body).encode())
        for good in ("198.18.0.1:65535", "[::1]:1"):
            self.assertTrue(isEndpoint(good))
