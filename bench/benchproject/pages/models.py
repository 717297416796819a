from __future__ import annotations

from django.db import models


class Row(models.Model):
    """One line of the realistic page: a title, an author, a summary, a score and a date."""

    title = models.CharField(max_length=200)
    author = models.CharField(max_length=80)
    summary = models.TextField()
    score = models.IntegerField(default=0)
    updated = models.DateTimeField()

    objects: models.Manager[Row] = models.Manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title
