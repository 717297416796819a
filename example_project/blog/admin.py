from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from example_project.blog.models import Article, Author, Comment, Tag

if TYPE_CHECKING:
    AuthorAdminBase = admin.ModelAdmin[Author]
    TagAdminBase = admin.ModelAdmin[Tag]
    ArticleAdminBase = admin.ModelAdmin[Article]
    CommentAdminBase = admin.ModelAdmin[Comment]
    CommentInlineBase = admin.TabularInline[Comment, Article]
else:  # the admin classes are not subscriptable at run time
    AuthorAdminBase = TagAdminBase = ArticleAdminBase = CommentAdminBase = (
        admin.ModelAdmin
    )
    CommentInlineBase = admin.TabularInline


@admin.register(Author)
class AuthorAdmin(AuthorAdminBase):
    list_display = ["name", "email"]
    search_fields = ["name", "email"]


@admin.register(Tag)
class TagAdmin(TagAdminBase):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ["name"]


class CommentInline(CommentInlineBase):
    model = Comment
    extra = 0


@admin.register(Article)
class ArticleAdmin(ArticleAdminBase):
    list_display = ["title", "author", "published", "updated_at"]
    list_filter = ["published", "tags", "author"]
    search_fields = ["title", "body"]
    date_hierarchy = "updated_at"
    filter_horizontal = ["tags"]
    inlines = [CommentInline]


@admin.register(Comment)
class CommentAdmin(CommentAdminBase):
    list_display = ["name", "article", "created"]
    search_fields = ["name", "body"]
    raw_id_fields = ["article"]
