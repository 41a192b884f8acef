"""Reviewing reversible recordings: ``keygen``, ``reveal``, ``grant``, ``tracks``, ``audit``.

One module because they share the key and passphrase flags, and because each is a thin wrapper
over :mod:`streamdeid.reveal`, :mod:`streamdeid.crypto` or :mod:`streamdeid.audit`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from streamdeid.cli._common import Subparsers, add_common
from streamdeid.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey


def register(sub: Subparsers) -> None:
    """Add the five review commands, in the order ``streamdeid --help`` lists them."""
    _register_keygen(sub)
    _register_reveal(sub)
    _register_grant(sub)
    _register_tracks(sub)
    _register_audit(sub)


def _register_keygen(sub: Subparsers) -> None:
    kg = sub.add_parser(
        "keygen",
        help="make a reviewer key pair (NAME.key, NAME.pub)",
        description="Make an X25519 key pair for reviewing reversible recordings. "
        "NAME.pub goes to the anonymizer (--recipient); NAME.key stays with the "
        "reviewer, encrypted with a passphrase, mode 0600.",
    )
    kg.add_argument("name", metavar="NAME", help="path prefix for NAME.key and NAME.pub")
    _add_passphrase(kg)
    _add_rewrap(kg)
    add_common(kg)
    kg.set_defaults(handler=cmd_keygen)


def _register_reveal(sub: Subparsers) -> None:
    rv = sub.add_parser(
        "reveal",
        help="restore masked faces of a reversible recording",
        description="Write a copy of VIDEO with the original faces restored for "
        "the tracks you choose (all that your key opens by default). A .mkv "
        "output is lossless. Every reveal is recorded in VIDEO.audit.jsonl.",
    )
    rv.add_argument("video", metavar="VIDEO", help="masked video made with --reversible")
    rv.add_argument("-o", "--output", required=True, help="revealed video (.mkv: lossless)")
    rv.add_argument(
        "--track",
        type=int,
        action="append",
        metavar="ID",
        help="restore only this track (repeat for several); see 'streamdeid tracks'",
    )
    _add_unlock(rv)
    add_common(rv)
    rv.set_defaults(handler=cmd_reveal)


def _register_grant(sub: Subparsers) -> None:
    gr = sub.add_parser(
        "grant",
        help="export a key that reveals one track only",
        description="Export a grant file that opens a single track (one "
        "person) of this recording and nothing else, to hand to someone.",
    )
    gr.add_argument("video", metavar="VIDEO")
    gr.add_argument("--track", type=int, required=True, metavar="ID")
    gr.add_argument("-o", "--output", required=True, metavar="FILE.grant")
    gr.add_argument("--key", required=True, metavar="KEY", help="reviewer private key")
    _add_passphrase(gr)
    add_common(gr)
    gr.set_defaults(handler=cmd_grant)


def _register_tracks(sub: Subparsers) -> None:
    tr = sub.add_parser(
        "tracks",
        help="list the tracks (people) of a reversible recording",
        description="List track ids with time ranges (no key needed) and "
        "optionally write a thumbnail of each from the masked video.",
    )
    tr.add_argument("video", metavar="VIDEO")
    tr.add_argument("--thumbnails", metavar="DIR", help="write track_ID.png crops here")
    add_common(tr)
    tr.set_defaults(handler=cmd_tracks)


def _register_audit(sub: Subparsers) -> None:
    au = sub.add_parser(
        "audit",
        help="verify the reveal audit log of a recording",
        description="Check the hash chain of VIDEO.audit.jsonl and print its "
        "head hash (keep it elsewhere to detect later truncation).",
    )
    au.add_argument("video", metavar="VIDEO")
    add_common(au)
    au.set_defaults(handler=cmd_audit)


def _add_passphrase(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="read the key passphrase from FILE (else $STREAMDEID_PASSPHRASE, else a prompt)",
    )


def _add_unlock(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", metavar="KEY", help="reviewer private key (NAME.key)")
    p.add_argument(
        "--grant",
        action="append",
        metavar="FILE.grant",
        default=[],
        help="grant file from 'streamdeid grant' (repeatable)",
    )
    _add_passphrase(p)


def _passphrase(args: argparse.Namespace, confirm: bool = False) -> bytes:
    """Secrets only from a file, the environment or the terminal; never from argv (ps shows it)."""
    if args.passphrase_file:
        try:
            return Path(args.passphrase_file).read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise ConfigError(
                f"cannot read passphrase file '{args.passphrase_file}': {e.strerror}"
            ) from e
    env = os.environ.get("STREAMDEID_PASSPHRASE")
    if env:
        return env.encode()
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("passphrase: ").encode()
        if confirm and getpass.getpass("again: ").encode() != first:
            raise ConfigError("passphrases differ")
        return first
    raise ConfigError(
        "a passphrase is needed: expected --passphrase-file FILE, "
        "$STREAMDEID_PASSPHRASE or a terminal, got none"
    )


def cmd_keygen(args: argparse.Namespace) -> int:
    from streamdeid.crypto import fingerprint, generate_keypair

    key, pub = Path(f"{args.name}.key"), Path(f"{args.name}.pub")
    if args.rewrap:
        public = _rewrap(args, key, pub)
    else:
        public = generate_keypair(key, pub, _passphrase(args, confirm=True))
    print(
        f"wrote {key} (private, keep it safe) and {pub} (give to the anonymizer); "
        f"fingerprint {fingerprint(public)}",
        file=sys.stderr,
    )
    return 0


# --- keygen --rewrap: re-protect an old key file (same key) in the current format ---


def _add_rewrap(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rewrap",
        metavar="OLD.key",
        help="write the key of OLD.key (e.g. an old, weakly protected file) to NAME.key under "
        "a new passphrase instead of making a new key; OLD.key is left in place",
    )
    p.add_argument(
        "--old-passphrase-file",
        metavar="FILE",
        help="with --rewrap: read OLD.key's passphrase from FILE (else a prompt)",
    )


def _rewrap(args: argparse.Namespace, key: Path, pub: Path) -> X25519PublicKey:
    from streamdeid.crypto import rewrap_private_key

    if args.old_passphrase_file:
        old = _passphrase(argparse.Namespace(passphrase_file=args.old_passphrase_file))
    elif sys.stdin.isatty():
        import getpass

        old = getpass.getpass(f"passphrase of {args.rewrap}: ").encode()
    else:
        raise ConfigError("--rewrap needs --old-passphrase-file FILE or a terminal, got none")
    return rewrap_private_key(args.rewrap, old, key, pub, _passphrase(args, confirm=True))


# --- end of keygen --rewrap ---


def cmd_reveal(args: argparse.Namespace) -> int:
    """Restore faces into a new file; never overwrites one (revealed footage is sensitive)."""
    from streamdeid.reveal import open_sidecar_for_review, reveal_file

    if args.key is None and not args.grant:
        raise ConfigError("reveal needs --key KEY or --grant FILE")
    out = Path(args.output)
    if out.exists():
        raise ConfigError(
            f"output '{out}' exists: remove it first (revealed footage is "
            "never overwritten silently)"
        )
    passphrase = _passphrase(args) if args.key else None
    reader, who = open_sidecar_for_review(
        args.video, key=args.key, passphrase=passphrase, grants=args.grant
    )
    stats = reveal_file(args.video, out, reader, who, tracks=args.track)
    span = (
        "" if stats.first_s is None else f" between {stats.first_s:.2f} s and {stats.last_s:.2f} s"
    )
    print(
        f"{out}: {stats.frames} frames, {stats.regions_restored} regions restored{span}; "
        f"logged in the audit log",
        file=sys.stderr,
    )
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    from streamdeid.reveal import grant_track, open_sidecar_for_review

    reader, who = open_sidecar_for_review(args.video, key=args.key, passphrase=_passphrase(args))
    grant_track(args.video, reader, who, args.track, args.output)
    print(f"wrote {args.output}: opens track {args.track} of this recording only", file=sys.stderr)
    return 0


def cmd_tracks(args: argparse.Namespace) -> int:
    """The track table goes to stdout (it is the result); the thumbnail note to stderr."""
    from streamdeid.reveal import list_tracks, track_thumbnails

    tracks = list_tracks(args.video)
    print(f"{'track':>6}  {'from s':>8}  {'to s':>8}  {'regions':>7}")
    for t in tracks:
        print(
            f"{t.track_id:>6}  {float(t.first_pts * t.time_base):>8.2f}  "
            f"{float(t.last_pts * t.time_base):>8.2f}  {t.count:>7}"
        )
    if args.thumbnails:
        paths = track_thumbnails(args.video, tracks, args.thumbnails)
        print(f"wrote {len(paths)} thumbnails to {args.thumbnails}", file=sys.stderr)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from streamdeid import audit

    report = audit.verify(args.video)
    print(
        f"{audit.audit_path(args.video)}: chain intact, {report.entries} entries, "
        f"head {report.head_sha256}"
    )
    return 0
