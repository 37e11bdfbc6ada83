"""`manage.py dead_letters list|replay`: show the records the worker rejected, and publish
them again to the events topic (`orders_worker.dead_letters` holds the logic)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import Truncator

from orders_worker.dead_letters import (
    DeadLetterReplayFailed,
    dead_letters_list,
    dead_letters_replay,
)
from orders_worker.models import DeadLetterKind


class Command(BaseCommand):
    help = (
        "List the dead letters kept in the worker database, or replay them (publish their "
        "original key and bytes to ORDERS_EVENTS_TOPIC). Exit code 1 when a replay did "
        "not replay everything it selected."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="show dead letters, newest first")
        replay = actions.add_parser("replay", help="publish dead letters again")
        replay.add_argument("ids", nargs="*", type=int, help="dead-letter ids")
        replay.add_argument(
            "--all", action="store_true", help="every dead letter the filters select"
        )
        for sub in (listing, replay):
            sub.add_argument("--error-contains", help="only those whose error contains this")
            sub.add_argument("--kind", choices=DeadLetterKind.values, help="only this kind")
            sub.add_argument(
                "--not-replayed", action="store_true", help="only those never replayed"
            )
            sub.add_argument("--limit", type=int, help="at most this many (newest first)")
        listing.set_defaults(limit=50)

    def handle(self, *args, action, ids=(), **options):
        filters = {
            "error_contains": options["error_contains"],
            "kind": options["kind"],
            "not_replayed": options["not_replayed"],
            "limit": options["limit"],
        }
        if action == "list":
            self._list(filters)
        else:
            self._replay(ids, filters, every=options["all"])

    def _list(self, filters) -> None:
        letters = list(dead_letters_list(**filters))
        if not letters:
            self.stdout.write("No dead letters.")
            return
        self.stdout.write("id\tfailed_at\tsource\tkind\tkey\treplays\terror")
        for letter in letters:
            fields = (
                letter.pk,
                letter.failed_at.isoformat(timespec="seconds"),
                letter,
                letter.kind,
                letter.key_text or "-",
                letter.replay_count,
                Truncator(letter.error).chars(100),
            )
            self.stdout.write("\t".join(map(str, fields)))

    def _replay(self, ids, filters, *, every: bool) -> None:
        narrowed = any(value for name, value in filters.items() if name != "limit")
        if ids and (narrowed or every):
            raise CommandError("give dead-letter ids or filters, not both")
        if not (ids or narrowed or every):
            raise CommandError("give dead-letter ids, a filter, or --all")
        if not ids:
            ids = list(dead_letters_list(**filters).values_list("pk", flat=True))
            if not ids:
                self.stdout.write("No dead letter matches: nothing replayed.")
                return
        try:
            report = dead_letters_replay(ids=ids)
        except DeadLetterReplayFailed as exc:
            raise CommandError(f"nothing was replayed: {exc}") from exc
        if missing := set(ids) - {*report.replayed, *report.failed, *report.not_kept}:
            self.stderr.write(f"No such dead letter: {', '.join(map(str, sorted(missing)))}.")
        for level, text in report.summary():
            if level == "success":
                self.stdout.write(self.style.SUCCESS(text))
            else:
                self.stderr.write(text)
        if missing or not report.complete:
            raise CommandError("not every selected dead letter was replayed")
