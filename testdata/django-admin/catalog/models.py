from django.contrib.sites.models import Site
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100)
    sites = models.ManyToManyField(Site)

    def __str__(self):
        return self.name


class Product(models.Model):
    category = models.ForeignKey(Category, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name
