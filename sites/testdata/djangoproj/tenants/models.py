"""Copies of django-multisite's Alias and django-multisite-plus's Site,
field by field, with their real table names, so Django's own schema editor
builds the tables siteplex reads."""
from django.contrib.sites.models import Site as DjangoSite
from django.db import models


class Alias(models.Model):
    domain = models.CharField(max_length=100, unique=True)
    site = models.ForeignKey(DjangoSite, related_name="aliases", on_delete=models.CASCADE)
    is_canonical = models.BooleanField(null=True, default=None, editable=False)
    redirect_to_canonical = models.BooleanField(default=True)

    class Meta:
        db_table = "multisite_alias"
        unique_together = [("is_canonical", "site")]


class PlusSite(models.Model):
    site = models.OneToOneField(
        DjangoSite, related_name="multisiteplus_site", primary_key=True, on_delete=models.CASCADE
    )
    real_domain = models.CharField(max_length=255, blank=True, default="")
    slug = models.CharField(max_length=255, blank=True, default="", unique=True)
    is_enabled = models.BooleanField(default=True)
    last_updated_at = models.DateTimeField(auto_now=True)
    extra_uwsgi_ini = models.TextField(blank=True, default="")

    class Meta:
        db_table = "django_multisite_plus_site"
