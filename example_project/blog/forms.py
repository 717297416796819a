"""Validation of the JSON API's article documents (a ModelForm, as a Django site would)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms

from example_project.blog.models import Article, Tag

if TYPE_CHECKING:
    ArticleFormBase = forms.ModelForm[Article]
else:  # not subscriptable at run time
    ArticleFormBase = forms.ModelForm


class ArticleForm(ArticleFormBase):
    tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.all(), to_field_name="name", required=False
    )

    class Meta:
        model = Article
        fields = ["title", "body", "author", "tags", "published"]


def article_document(article: Article) -> dict[str, Any]:
    """The JSON representation of an article (also the shape PUT and PATCH accept)."""
    return {
        "id": article.pk,
        "url": article.get_absolute_url(),
        "title": article.title,
        "body": article.body,
        "author": article.author_id,
        "author_name": article.author.name,
        "tags": [tag.name for tag in article.tags.all()],
        "published": article.published,
        "created_at": article.created_at.isoformat(),
        "updated_at": article.updated_at.isoformat(),
    }
