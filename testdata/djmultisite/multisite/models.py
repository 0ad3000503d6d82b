from django.contrib.sites.models import Site
from django.db import models


class Alias(models.Model):
    """django-multisite's multisite_alias: another domain of a site."""

    domain = models.CharField(max_length=100, unique=True)
    site = models.ForeignKey(Site, related_name="aliases", on_delete=models.CASCADE)
    is_canonical = models.BooleanField(null=True, default=None, editable=False)
    redirect_to_canonical = models.BooleanField(default=True)

    class Meta:
        unique_together = [("is_canonical", "site")]
