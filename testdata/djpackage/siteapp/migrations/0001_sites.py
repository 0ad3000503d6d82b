from django.db import migrations

SITES = [(1, "alpha.example.com", "Alpha"), (2, "beta.example.com", "Beta"), (3, "gamma.example.org", "Gamma")]


def create(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    Site.objects.all().delete()
    for pk, domain, name in SITES:
        Site.objects.create(pk=pk, domain=domain, name=name)


class Migration(migrations.Migration):
    dependencies = [("sites", "0002_alter_domain_unique")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
