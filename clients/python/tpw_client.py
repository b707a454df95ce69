#!/usr/bin/env python3
"""A minimal tpwalletoec client in Python: builds and signs transactions with the encoding of
docs/encoding.md, submits them, and makes signed reads (docs/api.md, Authentication).

It shows that another language can integrate from the documents alone. It needs the
`cryptography` package for ed25519 (pip install cryptography).

    python3 tpw_client.py --node http://127.0.0.1:7100 --key keys/acme.json \\
        pay --id 7 --debit 301 --credit 501 --asset 1 --amount 1250
    python3 tpw_client.py --node http://127.0.0.1:7100 --key keys/acme.json account 301
    python3 tpw_client.py vectors docs/encoding-vectors.json
"""

import argparse
import json
import os
import ssl
import struct
import sys
import time
import urllib.error
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

FORMAT_VERSION = 2
# How long an envelope may apply; a retry of the same bytes within it applies once.
VALIDITY_MS = 10 * 60 * 1000
TRANSACTION_DOMAIN = b"tpwalletoec/transaction\x00"
REQUEST_DOMAIN = b"tpwalletoec/api-request\x00"
TAG_TRANSFER = 2
# blake3 of the empty string: the body hash of a GET. (Requests with a body need a blake3
# implementation, such as the `blake3` package.)
BLAKE3_EMPTY = bytes.fromhex("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")


def u8(value):
    return struct.pack("<B", value)


def u16(value):
    return struct.pack("<H", value)


def u32(value):
    return struct.pack("<I", value)


def u64(value):
    return struct.pack("<Q", value)


def u128(value):
    if not 0 <= value < 1 << 128:
        raise ValueError("u128 out of range")
    return value.to_bytes(16, "little")


def transfer(transfer_id, debit, credit, asset, amount, pending_timeout_ms=None, reference=0):
    """Operation tag 2: a posted transfer, or a pending one with a timeout."""
    kind = u8(0) if pending_timeout_ms is None else u8(1) + u64(pending_timeout_ms)
    return (
        u8(TAG_TRANSFER)
        + u128(transfer_id)
        + u128(debit)
        + u128(credit)
        + u32(asset)
        + u128(amount)
        + kind
        + u128(reference)
    )


def body(operations, linked=False):
    """flags:u8 (bit 0 linked) | count:u16 | operations."""
    return u8(1 if linked else 0) + u16(len(operations)) + b"".join(operations)


def check_vectors(path):
    """Re-encodes and re-signs every transfer-only case of docs/encoding-vectors.json from its
    JSON view with the published seed, and compares the bytes: returns the cases checked."""
    with open(path, encoding="utf-8") as file:
        vectors = json.load(file)
    if vectors["format_version"] != FORMAT_VERSION:
        raise ValueError(f"vectors are format {vectors['format_version']}, this client {FORMAT_VERSION}")
    key = Key.from_seed(bytes.fromhex(vectors["signer_seed_hex"]))
    network_id = bytes.fromhex(vectors["network_id_hex"])
    checked = []
    for case in vectors["cases"]:
        view = case["transaction"]
        if any(operation["type"] != "transfer" for operation in view["operations"]):
            continue
        operations = [
            transfer(
                int(operation["id"]),
                int(operation["debit_account"]),
                int(operation["credit_account"]),
                operation["asset"],
                int(operation["amount"]),
                operation.get("pending_timeout_ms"),
                int(operation["reference"]),
            )
            for operation in view["operations"]
        ]
        signed = envelope(
            network_id,
            key,
            body(operations, view["linked"]),
            int(view["nonce"]),
            view["valid_until_ms"],
        )
        if signed.hex() != case["envelope_hex"]:
            raise ValueError(f"vector {case['name']!r}: the envelope differs")
        checked.append(case["name"])
    return checked


class Key:
    """A key file written by `tpw keygen`."""

    @classmethod
    def from_seed(cls, seed):
        key = cls.__new__(cls)
        key.private = Ed25519PrivateKey.from_private_bytes(seed)
        key.public = key.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return key

    def __init__(self, path):
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
        if document.get("algorithm") != "ed25519":
            raise ValueError(f"{path} is not an ed25519 key file")
        self.private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(document["secret_key"]))
        self.public = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, message):
        return self.private.sign(message)


def envelope(network_id, key, body_bytes, nonce=None, valid_until_ms=None):
    """version | network_id | signer | nonce | valid_until_ms | body (u32 length + bytes) |
    signature over the domain and everything before it.

    A new random nonce makes each call a new submission; keep the returned bytes to retry one
    (the same bytes apply at most once)."""
    if nonce is None:
        nonce = struct.unpack("<Q", os.urandom(8))[0]
    if valid_until_ms is None:
        valid_until_ms = int(time.time() * 1000) + VALIDITY_MS
    unsigned = (
        u8(FORMAT_VERSION)
        + network_id
        + key.public
        + u64(nonce)
        + u64(valid_until_ms)
        + u32(len(body_bytes))
        + body_bytes
    )
    return unsigned + key.sign(TRANSACTION_DOMAIN + unsigned)


class Client:
    def __init__(self, node, key=None, ca_file=None):
        self.node = node.rstrip("/")
        self.key = key
        self._network_id = None
        # https: the node's CA (a network's own, such as testnet-net/tls/ca.crt), or the
        # system's trusted roots without one.
        self._tls = ssl.create_default_context(cafile=ca_file)

    def _request(self, method, path, payload=None, signed=False):
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.node + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        if signed:
            if data is not None:
                raise ValueError("this example signs only requests without a body")
            timestamp = str(int(time.time() * 1000))
            nonce = os.urandom(16).hex()
            message = (
                REQUEST_DOMAIN
                + self.network_id()
                + method.encode()
                + b"\n"
                + path.encode()
                + b"\n"
                + timestamp.encode()
                + b"\n"
                + nonce.encode()
                + b"\n"
                + BLAKE3_EMPTY
            )
            request.add_header("tpw-key", self.key.public.hex())
            request.add_header("tpw-timestamp", timestamp)
            request.add_header("tpw-nonce", nonce)
            request.add_header("tpw-signature", self.key.sign(message).hex())
        try:
            with urllib.request.urlopen(request, timeout=30, context=self._tls) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def network_id(self):
        if self._network_id is None:
            status, answer = self._request("GET", "/v1/status")
            if status != 200:
                raise RuntimeError(f"status: {status} {answer}")
            self._network_id = bytes.fromhex(answer["network_id"])
        return self._network_id

    def submit(self, operations, wait=True, linked=False):
        """Signs one transaction with this client's key and submits it; returns the result."""
        signed = envelope(self.network_id(), self.key, body(operations, linked))
        status, answer = self._request(
            "POST", "/v1/transactions", {"transactions": [signed.hex()], "wait": wait}
        )
        if status not in (200, 202, 422):
            raise RuntimeError(f"submission refused: {status} {answer}")
        return answer["results"][0]

    def account(self, account_id):
        """A signed read: the node shows only the key's own participant's accounts."""
        return self._request("GET", f"/v1/accounts/{account_id}", signed=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node", default=os.environ.get("TPW_NODE", "https://127.0.0.1:7100"))
    parser.add_argument(
        "--ca-file",
        default=os.environ.get("TPW_CA_FILE"),
        help="PEM CA certificate that issued the node's certificate (default: system roots)",
    )
    parser.add_argument("--key", help="key file (tpw keygen); every command but vectors needs it")
    commands = parser.add_subparsers(dest="command", required=True)
    pay = commands.add_parser("pay", help="submit a posted transfer and wait for its commit")
    for name in ("id", "debit", "credit", "amount"):
        pay.add_argument(f"--{name}", type=int, required=True)
    pay.add_argument("--asset", type=int, required=True)
    pay.add_argument("--pending-timeout-ms", type=int)
    account = commands.add_parser("account", help="read one of the key's own accounts")
    account.add_argument("id", type=int)
    vectors = commands.add_parser("vectors", help="check the encoder against the published vectors")
    vectors.add_argument("path", help="docs/encoding-vectors.json")
    arguments = parser.parse_args()
    if arguments.command == "vectors":
        print(json.dumps({"checked": check_vectors(arguments.path)}))
        return 0
    if arguments.key is None:
        parser.error("--key is required for this command")
    client = Client(arguments.node, Key(arguments.key), arguments.ca_file)
    if arguments.command == "pay":
        result = client.submit(
            [
                transfer(
                    arguments.id,
                    arguments.debit,
                    arguments.credit,
                    arguments.asset,
                    arguments.amount,
                    arguments.pending_timeout_ms,
                )
            ]
        )
        print(json.dumps(result))
        return 0 if result.get("code") == "ok" else 1
    status, answer = client.account(arguments.id)
    print(json.dumps(answer))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
