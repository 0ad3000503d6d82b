from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [("sites", "0002_alter_domain_unique")]
    operations = [
        migrations.CreateModel(
            name="Alias",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("domain", models.CharField(max_length=100, unique=True)),
                ("is_canonical", models.BooleanField(default=None, editable=False, null=True)),
                ("redirect_to_canonical", models.BooleanField(default=True)),
                ("site", models.ForeignKey(on_delete=models.deletion.CASCADE, related_name="aliases", to="sites.site")),
            ],
            options={"unique_together": {("is_canonical", "site")}},
        ),
    ]
