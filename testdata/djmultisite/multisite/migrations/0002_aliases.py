from django.db import migrations


def create(apps, schema_editor):
    """Each site's domain as its canonical alias (django-multisite makes
    these when a site is saved), and one more alias for site 1."""
    Site = apps.get_model("sites", "Site")
    Alias = apps.get_model("multisite", "Alias")
    for site in Site.objects.all():
        Alias.objects.create(domain=site.domain, site=site, is_canonical=True)
    Alias.objects.create(domain="www.alpha.example.com", site_id=1)


class Migration(migrations.Migration):
    dependencies = [("multisite", "0001_initial"), ("siteapp", "0001_sites")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
