"""The `onyxia-hub` command.

    onyxia-hub up [--ip 127.0.0.1] [--port 8000] [--state-dir DIR] ...   run the datalab
    onyxia-hub config [same options]         print the effective jupyterhub_config.py
    onyxia-hub catalog check [PATH ...]      check catalog directories (default: profiles/)
    onyxia-hub courses check DIR ... [--catalog DIR]   check course files (docs/courses.md)
    onyxia-hub --version

Problems the operator can fix print one message and its fix, and exit with status 2.
`catalog check` and `courses check` exit with 0 when what they read is valid and 1,
listing every problem on its own line, when it is not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .embedded.secrets import take_admin_password_from_environment
from .errors import OnyxiaHubError


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def _add_hub_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ip",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument(
        "--port", type=_port, default=8000, help="public port (default 8000; 0 picks a free one)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the database, secrets, logs and homes live (default "
        "/var/lib/onyxia-hub as root, ~/.local/share/onyxia-hub otherwise, "
        "or $ONYXIA_HUB_STATE_DIR)",
    )
    parser.add_argument(
        "--homes-dir",
        type=Path,
        default=None,
        help="where users' home directories live (default <state-dir>/homes)",
    )
    parser.add_argument(
        "--hub-port",
        type=_port,
        default=None,
        help="loopback port of the hub's API (default: picked once, then kept)",
    )
    parser.add_argument(
        "--proxy-api-port",
        type=_port,
        default=None,
        help="loopback port of the proxy's API (default: picked once, then kept)",
    )
    parser.add_argument("--ssl-cert", default=None, help="TLS certificate (PEM) for HTTPS")
    parser.add_argument("--ssl-key", default=None, help="TLS private key (PEM) for HTTPS")
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a non-loopback --ip without TLS (passwords in clear)",
    )
    parser.add_argument(
        "--config",
        dest="config_files",
        action="append",
        default=[],
        metavar="FILE",
        help="a jupyterhub_config.py applied on top of the embedded defaults "
        "(repeatable: later files win)",
    )
    parser.add_argument(
        "--storage",
        default="auto",
        choices=["auto", "moto", "minio", "none"],
        help="users' S3 store on loopback: a MinIO server when one is on PATH (auto) or "
        "asked for, else moto (in memory: data lost at stop); none: no storage",
    )
    parser.add_argument(
        "--minio",
        default=None,
        metavar="PATH",
        help="the MinIO server binary to run as the store (implies --storage minio)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="hub log level",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onyxia-hub",
        description="Onyxia Hub: a self-service datalab built from JupyterHub's own parts.",
    )
    parser.add_argument("--version", action="version", version=f"onyxia-hub {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    up = commands.add_parser(
        "up",
        help="run the datalab on this machine",
        description="Start the hub, its proxy and services; stop with "
        "Ctrl-C. The admin's first password comes from "
        "$ONYXIA_HUB_ADMIN_PASSWORD or is generated.",
    )
    _add_hub_options(up)
    config = commands.add_parser(
        "config",
        help="print the effective jupyterhub_config.py",
        description="Print the configuration `up` would run with, "
        "secrets redacted. Starts and changes nothing.",
    )
    _add_hub_options(config)
    catalog = commands.add_parser(
        "catalog",
        help="work with the catalog of services (profiles/*.yaml)",
        description="The catalog: one <name>.yaml per service, see profiles/README.md.",
    )
    actions = catalog.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="check catalog directories without starting anything",
        description="Read and check catalog directories as the hub would. Prints "
        "'catalog ok: ...' and exits with 0, or prints each problem as "
        "'file: field: problem' on standard error and exits with 1.",
    )
    check.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="catalog directories; later ones add services (default: the shipped profiles/)",
    )
    courses = commands.add_parser(
        "courses",
        help="work with course files (<id>.yaml, docs/courses.md)",
        description="Course files: one <id>.yaml per course, shown read-only by the "
        "courses service.",
    )
    course_actions = courses.add_subparsers(dest="courses_command", metavar="ACTION", required=True)
    course_check = course_actions.add_parser(
        "check",
        help="check directories of course files without starting anything",
        description="Read and check course files as the courses service would, against the "
        "catalog. Prints 'courses ok: ...' and exits with 0, or prints each problem as "
        "'file: field: problem' on standard error and exits with 1.",
    )
    course_check.add_argument(
        "paths", nargs="+", type=Path, metavar="DIR", help="directories of course files"
    )
    course_check.add_argument(
        "--catalog",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="catalog directories to check the courses' options against "
        "(default: the shipped profiles/)",
    )
    return parser


def _courses_check(paths: list[Path], catalog_paths: list[Path]) -> int:
    """`onyxia-hub courses check`: 0 valid, 1 invalid, 2 a path is not a directory."""
    from .catalog.loader import check_catalog, default_catalog_path
    from .courses.files import read_directories

    for path in paths + catalog_paths:
        if not path.is_dir():
            print(f"onyxia-hub: error: {path} is not a directory", file=sys.stderr)
            return 2
    catalog, issues = check_catalog(catalog_paths or [default_catalog_path()])
    if catalog is None:
        for issue in issues:
            print(issue, file=sys.stderr)
        print("the catalog is invalid: fix it first (onyxia-hub catalog check)", file=sys.stderr)
        return 1
    courses, problems = read_directories(paths, catalog)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        count = len(problems)
        print(f"courses invalid: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    names = ", ".join(sorted(courses)) or "none"
    print(f"courses ok: {len(courses)} course{'s' if len(courses) != 1 else ''} ({names})")
    return 0


def _catalog_check(paths: list[Path]) -> int:
    """`onyxia-hub catalog check`: 0 valid, 1 invalid, 2 a path is not a directory."""
    from .catalog.loader import check_catalog, default_catalog_path

    paths = paths or [default_catalog_path()]
    for path in paths:
        if not path.exists():
            print(f"onyxia-hub: error: catalog directory {path} does not exist", file=sys.stderr)
            return 2
        if not path.is_dir():
            print(
                f"onyxia-hub: error: {path} is not a directory\n"
                "  fix: give the directory that holds the <name>.yaml files",
                file=sys.stderr,
            )
            return 2
    catalog, issues = check_catalog(paths)
    if catalog is None:
        for issue in issues:
            print(issue, file=sys.stderr)
        count = len(issues)
        print(f"catalog invalid: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    names = ", ".join(service.name for service in catalog.services)
    count = len(catalog.services)
    print(f"catalog ok: {count} service{'s' if count != 1 else ''} ({names})")
    return 0


def main(argv: list[str] | None = None) -> int:
    # Before anything else: no child process may inherit the admin's password.
    admin_password = take_admin_password_from_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "catalog":
        return _catalog_check(args.paths)
    if args.command == "courses":
        return _courses_check(args.paths, args.catalog)

    from .embedded.up import UpOptions, run_up, show_config

    options = {k: v for k, v in vars(args).items() if k != "command"}
    opts = UpOptions(**options, admin_password=admin_password)
    try:
        if args.command == "config":
            sys.stdout.write(show_config(opts))
            return 0
        return run_up(opts)
    except OnyxiaHubError as e:
        print(f"onyxia-hub: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
