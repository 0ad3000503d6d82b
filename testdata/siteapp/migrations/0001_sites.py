from django.conf import settings
from django.db import migrations

# The sites of a fixture project: FIXTURE_SITES in its settings, else these.
SITES = [(1, "alpha.example.com", "Alpha"), (2, "beta.example.com", "Beta"), (3, "gamma.example.org", "Gamma")]


def create(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    Site.objects.all().delete()
    for pk, domain, name in getattr(settings, "FIXTURE_SITES", SITES):
        Site.objects.create(pk=pk, domain=domain, name=name)


class Migration(migrations.Migration):
    dependencies = [("sites", "0002_alter_domain_unique")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
