"""Reviewing reversible recordings: ``keygen``, ``reveal``, ``grant``, ``tracks``, ``audit``.

One module because they share the key and passphrase flags, and because each is a thin wrapper
over :mod:`streamdeid.reveal`, :mod:`streamdeid.crypto` or :mod:`streamdeid.audit`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamdeid.cli._common import Subparsers, add_common
from streamdeid.cli._thumbnails import track_thumbnails
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
        help="make a reviewer key pair (NAME.key, NAME.pub) or a signing key (--signing)",
        description="Make an X25519 key pair for reviewing reversible recordings. "
        "NAME.pub goes to the anonymizer (--recipient); NAME.key stays with the "
        "reviewer, encrypted with a passphrase, mode 0600. With --signing, make the "
        "Ed25519 key of the operator or site that signs the audit log instead: "
        "NAME.sign.key (passphrase, 0600; for reveal/grant --signing-key) and "
        "NAME.sign.pub (for audit --public-key).",
    )
    kg.add_argument("name", metavar="NAME", help="path prefix of the key files")
    kg.add_argument(
        "--signing",
        action="store_true",
        help="make an audit-log signing key pair (NAME.sign.key, NAME.sign.pub)",
    )
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
        "output is lossless; it is created mode 0600 and removed if the reveal fails. "
        "Before anything is decrypted a signed entry is appended to the recording's "
        "audit log (RECORDING-ID.audit.jsonl beside the sidecar, or in "
        "$STREAMDEID_AUDIT_DIR, or --audit-log); if that fails, nothing is revealed.",
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
    _add_signing(rv)
    add_common(rv)
    rv.set_defaults(handler=cmd_reveal)


def _register_grant(sub: Subparsers) -> None:
    gr = sub.add_parser(
        "grant",
        help="export a key that reveals one track only",
        description="Export a grant file that opens a single track (one "
        "person) of this recording and nothing else, to hand to someone. The grant "
        "is logged (signed) in the audit log first; if that fails, no grant is written. "
        "When the recording keeps its originals as source packets (the default for video "
        "input), that track's regions are also cut into FILE.grant.sdeid: hand over both.",
    )
    gr.add_argument("video", metavar="VIDEO")
    gr.add_argument("--track", type=int, required=True, metavar="ID")
    gr.add_argument("-o", "--output", required=True, metavar="FILE.grant")
    gr.add_argument("--key", required=True, metavar="KEY", help="reviewer private key")
    gr.add_argument(
        "--lossy",
        action="store_true",
        help="store the package's regions as JPEG q95 (~3x smaller) instead of bit-exact PNG",
    )
    _add_passphrase(gr)
    _add_signing(gr)
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
        help="verify the signed reveal audit log of a recording",
        description="Check every signature and the hash chain of VIDEO's audit log "
        "and print its head hash (keep it elsewhere: --expect-head detects a log that "
        "was cut off later). The first bad entry is named by line number.",
    )
    au.add_argument("video", metavar="VIDEO")
    au.add_argument(
        "--public-key",
        action="append",
        required=True,
        metavar="NAME.sign.pub",
        help="signing public key trusted to write entries (repeatable)",
    )
    au.add_argument("--head", action="store_true", help="print only the verified head hash")
    au.add_argument(
        "--expect-head", metavar="HASH", help="fail unless the log still contains this head"
    )
    _add_audit_log(au)
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


def _add_signing(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--signing-key",
        metavar="NAME.sign.key",
        help="operator/site key that signs the audit entry (required; 'keygen --signing')",
    )
    p.add_argument(
        "--signing-passphrase-file",
        metavar="FILE",
        help="passphrase of the signing key (else $STREAMDEID_SIGNING_PASSPHRASE, else a prompt)",
    )
    _add_audit_log(p)


def _add_audit_log(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--audit-log",
        metavar="PATH",
        help="audit log file (default: RECORDING-ID.audit.jsonl in $STREAMDEID_AUDIT_DIR, "
        "else beside the sidecar)",
    )


def _audit_context(args: argparse.Namespace) -> Any:
    """The signing key and log of a reveal or grant; no key, no reveal (unsigned entries could
    be rewritten by anyone who can write the log, so they would prove nothing)."""
    from streamdeid.audit import AuditContext
    from streamdeid.crypto.signing import load_signing_key

    if not args.signing_key:
        raise ConfigError(
            f"{args.command} needs --signing-key NAME.sign.key: every reveal and grant is "
            "logged with a signed entry first (make one with 'streamdeid keygen --signing NAME')"
        )
    passphrase = _passphrase(
        args,
        file=args.signing_passphrase_file,
        env="STREAMDEID_SIGNING_PASSPHRASE",
        prompt="signing key passphrase: ",
    )
    key = load_signing_key(args.signing_key, passphrase)
    return AuditContext(key, Path(args.audit_log) if args.audit_log else None)


def _passphrase(
    args: argparse.Namespace,
    confirm: bool = False,
    *,
    file: str | None = None,
    env: str = "STREAMDEID_PASSPHRASE",
    prompt: str = "passphrase: ",
) -> bytes:
    """Secrets only from a file, the environment or the terminal; never from argv (ps shows it)."""
    file = file if file is not None else args.passphrase_file
    if file:
        try:
            return Path(file).read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise ConfigError(f"cannot read passphrase file '{file}': {e.strerror}") from e
    value = os.environ.get(env)
    if value:
        return value.encode()
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(prompt).encode()
        if confirm and getpass.getpass("again: ").encode() != first:
            raise ConfigError("passphrases differ")
        return first
    raise ConfigError(
        f"a passphrase is needed: expected a passphrase file, ${env} or a terminal, got none"
    )


def cmd_keygen(args: argparse.Namespace) -> int:
    from streamdeid.crypto import fingerprint, generate_keypair

    if args.signing:
        return _keygen_signing(args)
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
    audit_ctx = _audit_context(args)
    passphrase = _passphrase(args) if args.key else None
    reader, who = open_sidecar_for_review(
        args.video, key=args.key, passphrase=passphrase, grants=args.grant
    )
    stats = reveal_file(args.video, out, reader, who, tracks=args.track, audit_ctx=audit_ctx)
    span = (
        "" if stats.first_s is None else f" between {stats.first_s:.2f} s and {stats.last_s:.2f} s"
    )
    print(
        f"{out}: {stats.frames} frames, {stats.regions_restored} regions restored{span}; "
        f"logged in the audit log (head {stats.audit_head})",
        file=sys.stderr,
    )
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    from streamdeid.grant_package import package_path
    from streamdeid.reveal import grant_track, open_sidecar_for_review

    audit_ctx = _audit_context(args)
    reader, who = open_sidecar_for_review(args.video, key=args.key, passphrase=_passphrase(args))
    grant_track(
        args.video, reader, who, args.track, args.output, audit_ctx=audit_ctx, lossy=args.lossy
    )
    package = package_path(args.output)
    also = f" (with its package {package})" if package.exists() else ""
    print(
        f"wrote {args.output}{also}: opens track {args.track} of this recording only",
        file=sys.stderr,
    )
    return 0


def cmd_tracks(args: argparse.Namespace) -> int:
    """The track table goes to stdout (it is the result); the thumbnail note to stderr."""
    from streamdeid.reveal import list_tracks

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
    """Verify signatures and chain; the result (or the head alone) goes to stdout."""
    from streamdeid import audit
    from streamdeid.crypto import SidecarReader
    from streamdeid.crypto.signing import load_verify_key
    from streamdeid.reveal import audit_log_for, sidecar_for

    keys = [load_verify_key(p) for p in args.public_key]
    log = audit_log_for(args.video, args.audit_log)
    recording = SidecarReader(sidecar_for(args.video)).recording_id
    report = audit.verify(log, keys, expect_head=args.expect_head, recording_id=recording)
    if args.head:
        print(report.head_sha256)
    else:
        print(
            f"{log}: signatures and chain intact, {report.entries} entries, "
            f"head {report.head_sha256}"
        )
    return 0


def _keygen_signing(args: argparse.Namespace) -> int:
    from streamdeid.audit import signer_fingerprint
    from streamdeid.crypto.signing import generate_signing_key

    key, pub = Path(f"{args.name}.sign.key"), Path(f"{args.name}.sign.pub")
    public = generate_signing_key(key, pub, _passphrase(args, confirm=True))
    print(
        f"wrote {key} (private, for reveal --signing-key) and {pub} (for audit --public-key); "
        f"fingerprint {signer_fingerprint(public)}",
        file=sys.stderr,
    )
    return 0
