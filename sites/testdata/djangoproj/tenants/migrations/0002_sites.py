"""Sites as a django-multisite-plus project has them: one without a
multisite-plus row, one disabled, canonical and non-canonical aliases."""
from django.db import migrations

SITES = [
    # id, domain, name, (slug, real_domain, is_enabled) or None
    (1, "example.com", "example.com", None),
    (2, "example.gh", "Ghana", ("gh", "www.example.gh", True)),
    (3, "example.de", "Germany", ("de", "www.example.de", False)),
    (4, "Example.ORG:8000", "Port Site", None),
]
ALIASES = [
    # site id, domain, canonical (True) or non-canonical (None)
    (2, "example.gh", True),
    (2, "gh.example-stage.eu", None),
    (3, "example.de", True),
]


def create(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    PlusSite = apps.get_model("tenants", "PlusSite")
    Alias = apps.get_model("tenants", "Alias")
    for pk, domain, name, plus in SITES:
        site = Site.objects.update_or_create(pk=pk, defaults={"domain": domain, "name": name})[0]
        if plus:
            slug, real, enabled = plus
            PlusSite.objects.create(site=site, slug=slug, real_domain=real, is_enabled=enabled)
    for site_id, domain, canonical in ALIASES:
        Alias.objects.create(site_id=site_id, domain=domain, is_canonical=canonical)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
