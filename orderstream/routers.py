"""Database routers: one per alias, each owning a set of app labels.

`WorkerRouter` keeps `orders_worker` on the `worker` alias and nothing else there;
`ApiRouter` keeps the API and Django's own apps (auth, contenttypes, admin, sessions)
on `default`. A router returns None where it has no opinion, as Django expects.
"""


class AppLabelRouter:
    """Route the models of `route_app_labels` to `alias`, reads, writes and migrations."""

    alias: str = "default"
    route_app_labels: frozenset[str] = frozenset()
    # When True, no other app may migrate onto this alias.
    exclusive: bool = False

    def db_for_read(self, model, **hints):
        if model._meta.app_label in self.route_app_labels:
            return self.alias
        return None

    def db_for_write(self, model, **hints):
        return self.db_for_read(model, **hints)

    def allow_relation(self, obj1, obj2, **hints):
        ours = [o._meta.app_label in self.route_app_labels for o in (obj1, obj2)]
        if all(ours):
            return True
        if any(ours):
            return False  # no relations across databases
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label in self.route_app_labels:
            return db == self.alias
        if self.exclusive and db == self.alias:
            return False
        return None


class WorkerRouter(AppLabelRouter):
    """The worker's processed orders live in the `worker` database only."""

    alias = "worker"
    route_app_labels = frozenset({"orders_worker"})
    exclusive = True


class ApiRouter(AppLabelRouter):
    """The API's orders and Django's own tables live in the `default` database."""

    alias = "default"
    route_app_labels = frozenset(
        {"orders_api", "admin", "auth", "contenttypes", "sessions", "messages"}
    )
