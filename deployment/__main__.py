"""`python -m deployment`: generate, render (kubectl kustomize) and check the Knative
manifests.

    generate                 rewrite the generated files of knative/base/
    render OVERLAY           print an overlay's manifests (--image, --function, --output)
    manifests                generate, then render every overlay into knative/rendered/
    check                    validate everything; exit 1 with the problems
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deployment import check, generate, kustomize, selection
from deployment.paths import OVERLAYS, Tree
from deployment.spec import SpecError
from deployment.yamldocs import dump_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("generate", help="rewrite the generated files of knative/base/")
    render = commands.add_parser("render", help="print an overlay's manifests")
    render.add_argument("overlay", choices=OVERLAYS)
    render.add_argument("--image", help="the auxip image to run, e.g. registry/auxip:1.2.0")
    render.add_argument("--function", help="only this Service, its Triggers and PingSources")
    render.add_argument("--output", type=Path, help="write here instead of standard output")
    commands.add_parser("manifests", help="generate, then render every overlay into knative/rendered/")
    commands.add_parser("check", help="validate generated files, overlays and rendered files")
    args = parser.parse_args(argv)
    tree = Tree()
    try:
        if args.command == "generate":
            for path in generate.write(tree):
                print(f"wrote {path.relative_to(tree.root)}", file=sys.stderr)
        elif args.command == "render":
            documents = kustomize.render(tree.overlay(args.overlay), args.image)
            if args.function:
                documents = selection.of_function(documents, args.function)
            text = dump_all(documents)
            if args.output:
                args.output.write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
        elif args.command == "manifests":
            for path in check.write_manifests(tree):
                print(f"wrote {path.relative_to(tree.root)}", file=sys.stderr)
        elif args.command == "check":
            report = check.run(tree)
            if not report.ok:
                print(report.text(), file=sys.stderr)
                return 1
            print(f"knative/: generated files, overlays {', '.join(OVERLAYS)} and rendered files are valid")
    except (kustomize.KustomizeError, SpecError, selection.SelectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
