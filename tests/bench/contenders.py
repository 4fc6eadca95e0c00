# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One benchmark contender per process, so its peak RSS and CPU time are its own.

``python tests/bench/contenders.py COMMAND ARGS_JSON`` runs one of the commands below and
prints one JSON line with its result on stdout. bench.py starts each contender with
``os.wait4`` to read the child's own ``ru_maxrss`` and CPU seconds.

- ``serve``: a threaded HTTP server that streams one file with ``os.sendfile`` (the Glance stand-in).
- ``download``: HTTP to a sink, nothing else (the source's own limit).
- ``ours-backup`` / ``ours-restore``: the collection's chunk engine.
- ``plain-backup`` / ``plain-restore``: 4 MiB objects with boto3, 4 threads, no hashing,
  compression or zero detection (the I/O limit).
- ``hash-sink``: sha256 of stdin (to check what ``restic dump`` gives back).
- ``put-probe``: 4 MiB PUTs with one boto3 checksum setting (what the s3 bank's default costs Swift).
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import http.server
import json
import os
import sys
import time

MIB = 1024 * 1024
CHUNK = 4 * MIB


def emit(result: dict) -> None:
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


# --- the HTTP source ------------------------------------------------------------------------------


class _FileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    path_to_serve = ""

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _headers(self) -> int:
        size = os.path.getsize(self.path_to_serve)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        return size

    def do_HEAD(self):  # pylint: disable=invalid-name
        self._headers()

    def do_GET(self):  # pylint: disable=invalid-name
        size = self._headers()
        self.wfile.flush()
        with open(self.path_to_serve, "rb") as source:
            offset = 0
            out = self.connection.fileno()
            while offset < size:
                sent = os.sendfile(out, source.fileno(), offset, min(size - offset, 64 * MIB))
                if sent == 0:
                    break
                offset += sent


def serve(args: dict) -> None:
    _FileHandler.path_to_serve = args["path"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FileHandler)
    emit({"port": server.server_address[1]})
    server.serve_forever()


def http_pieces(url: str):
    import requests  # pylint: disable=import-outside-toplevel

    response = requests.get(url, stream=True, timeout=60)
    response.raise_for_status()
    return response.iter_content(MIB)


def rechunk(pieces, size: int):
    pending = bytearray()
    for piece in pieces:
        pending += piece
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


# --- contenders -----------------------------------------------------------------------------------


def download(args: dict) -> None:
    started = time.monotonic()
    total = 0
    for piece in http_pieces(args["url"]):
        total += len(piece)
    emit({"bytes": total, "seconds": time.monotonic() - started})


def _store(args: dict):
    # pylint: disable=import-outside-toplevel
    from ansible_collections.openstack_dr.bank.plugins.module_utils._bank import open_bank
    from ansible_collections.openstack_dr.bank.plugins.module_utils._engine.store import BackupStore

    bank = open_bank(dict(args["bank"], create=True))
    return BackupStore(bank, passphrase=None, compression_level=args.get("compression_level", 3))


def ours_backup(args: dict) -> None:
    store = _store(args)
    started = time.monotonic()
    # (algorithm, expected hex digest): Glance's os_hash_algo and os_hash_value in a real backup.
    expected_hash = tuple(args["extra_hash"]) if args.get("extra_hash") else None
    writer = store.backup_writer(args["name"], chunk_size=args.get("chunk_size", CHUNK), parallelism=args["parallelism"])
    manifest = writer.write(http_pieces(args["url"]), expected_size=None, expected_hash=expected_hash)
    seconds = time.monotonic() - started
    emit({"seconds": seconds, "stats": writer.stats.as_dict(), "hashes": manifest.hashes, "size": manifest.size})


def ours_restore(args: dict) -> None:
    store = _store(args)
    started = time.monotonic()
    digest = hashlib.sha256()
    total = 0
    with store.open_backup(args["name"], parallelism=args["parallelism"]) as reader:
        while True:
            data = reader.read(args.get("read_size", MIB))
            if not data:
                break
            total += len(data)
            if args.get("hash", True):
                digest.update(data)
    emit({"seconds": time.monotonic() - started, "bytes": total, "sha256": digest.hexdigest() if args.get("hash", True) else None})


def _s3_client(bank: dict):
    import boto3  # pylint: disable=import-outside-toplevel
    from botocore.config import Config  # pylint: disable=import-outside-toplevel

    config = Config(s3={"addressing_style": "path"}, max_pool_connections=16,
                    request_checksum_calculation="when_required", response_checksum_validation="when_required")
    return boto3.client("s3", endpoint_url=bank["endpoint_url"], region_name=bank.get("region", "us-east-1"),
                        aws_access_key_id=bank["access_key"], aws_secret_access_key=bank["secret_key"], config=config)


def plain_backup(args: dict) -> None:
    client = _s3_client(args["bank"])
    bucket = args["bucket"]
    client.create_bucket(Bucket=bucket)
    started = time.monotonic()
    in_flight: collections.deque = collections.deque()
    total = count = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for chunk in rechunk(http_pieces(args["url"]), CHUNK):
            in_flight.append(pool.submit(client.put_object, Bucket=bucket, Key=f"{args['prefix']}/{count:08d}", Body=chunk))
            total += len(chunk)
            count += 1
            while len(in_flight) > 8:
                in_flight.popleft().result()
        while in_flight:
            in_flight.popleft().result()
    emit({"seconds": time.monotonic() - started, "bytes": total, "objects": count})


def plain_restore(args: dict) -> None:
    client = _s3_client(args["bank"])
    bucket = args["bucket"]
    started = time.monotonic()

    def fetch(index: int) -> bytes:
        return client.get_object(Bucket=bucket, Key=f"{args['prefix']}/{index:08d}")["Body"].read()

    in_flight: collections.deque = collections.deque()
    total = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for index in range(args["objects"]):
            in_flight.append(pool.submit(fetch, index))
            while len(in_flight) > 8:
                total += len(in_flight.popleft().result())
        while in_flight:
            total += len(in_flight.popleft().result())
    emit({"seconds": time.monotonic() - started, "bytes": total})


def put_probe(args: dict) -> None:
    """PUT the same 4 MiB random objects with boto3's checksum setting ``args["checksum"]``, as the s3 bank would."""
    import boto3  # pylint: disable=import-outside-toplevel
    from botocore.config import Config  # pylint: disable=import-outside-toplevel

    bank = args["bank"]
    config = Config(s3={"addressing_style": "path"}, max_pool_connections=16, signature_version="s3v4",
                    request_checksum_calculation=args["checksum"], response_checksum_validation=args["checksum"])
    client = boto3.client("s3", endpoint_url=bank["endpoint_url"], region_name=bank.get("region", "us-east-1"),
                          aws_access_key_id=bank["access_key"], aws_secret_access_key=bank["secret_key"], config=config)
    bucket = args["bucket"]
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    bodies = [os.urandom(CHUNK) for dummy in range(8)]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda index: client.put_object(Bucket=bucket, Key=f"{args['checksum']}/{index:06d}", Body=bodies[index % 8]),
                      range(args["objects"])))
    emit({"seconds": time.monotonic() - started, "bytes": args["objects"] * CHUNK})


def hash_sink(args: dict) -> None:
    del args
    started = time.monotonic()
    digest = hashlib.sha256()
    total = 0
    while True:
        data = sys.stdin.buffer.read(MIB)
        if not data:
            break
        total += len(data)
        digest.update(data)
    emit({"seconds": time.monotonic() - started, "bytes": total, "sha256": digest.hexdigest()})


COMMANDS = {
    "serve": serve,
    "download": download,
    "ours-backup": ours_backup,
    "ours-restore": ours_restore,
    "plain-backup": plain_backup,
    "plain-restore": plain_restore,
    "hash-sink": hash_sink,
    "put-probe": put_probe,
}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in COMMANDS:
        sys.stderr.write(f"usage: {argv[0]} {{{'|'.join(COMMANDS)}}} ARGS_JSON\n")
        return 2
    COMMANDS[argv[1]](json.loads(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
