"""Notify the relay at the commit of every transaction that inserted outbox rows."""

from django.db import migrations

CREATE = """
CREATE FUNCTION orders_api_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orders_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_api_outbox_notify
    AFTER INSERT ON orders_api_outboxevent
    FOR EACH STATEMENT EXECUTE FUNCTION orders_api_outbox_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS orders_api_outbox_notify ON orders_api_outboxevent;
DROP FUNCTION IF EXISTS orders_api_outbox_notify();
"""


class Migration(migrations.Migration):
    dependencies = [("orders_api", "0005_external_id_md5_index")]

    operations = [migrations.RunSQL(CREATE, DROP)]
