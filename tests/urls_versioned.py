"""URLs of the versioned-view, mixin and write tests (and of the gunicorn test server)."""

from __future__ import annotations

from django.urls import path

from tests.testapp import views

urlpatterns = [
    path("articles/<int:pk>/", views.article),
    path("required/<int:pk>/", views.article_required),
    path("never-required/<int:pk>/", views.article_never_required),
    path("private/<int:pk>/", views.article_private),
    path("plain/<int:pk>/", views.article_plain),
    path("dated/<int:pk>/", views.article_dated),
    path("dated-expiring/<int:pk>/", views.article_dated_expiring),
    path("declared/<int:pk>/", views.article_declared),
    path("cache-control/<int:pk>/", views.article_cache_control),
    path("async/<int:pk>/", views.aarticle),
    path("async-private/<int:pk>/", views.aarticle_private),
    path("authors/<int:author_pk>/", views.author_page),
    path("many/<int:count>/", views.many),
    path("async-many/<int:count>/", views.amany),
    path("async-keys/<int:pk>/", views.article_async_keys),
    path("wrong-kwarg/<int:pk>/", views.wrong_kwarg),
    path("noop/<int:pk>/", views.article_noop),
    path("savepoints/<int:pk>/", views.article_savepoints),
    path("set-rollback/<int:pk>/", views.article_set_rollback),
    path("post-required/<int:pk>/", views.article_post_required),
    path("dropin/async-func/<int:pk>/", views.dropin_async_func),
    path("dropin/sync-func/<int:pk>/", views.dropin_sync_func),
    path("cbv/articles/", views.ArticleList.as_view()),
    path("cbv/articles/<int:pk>/", views.ArticleDetail.as_view()),
    path("cbv/articles/<int:pk>/edit/", views.ArticleUpdate.as_view()),
    path("cbv/articles/<int:pk>/delete/", views.ArticleDelete.as_view()),
    path("cbv/private/<int:pk>/", views.PrivateArticleDetail.as_view()),
    path("cbv/authors/<int:author_pk>/", views.AuthorArticles.as_view()),
    path("cbv/async/<int:pk>/", views.AsyncArticle.as_view()),
    path("cbv/unversioned/", views.Unversioned.as_view()),
    path("documents/<int:pk>/", views.document),
    path("async-documents/<int:pk>/", views.adocument),
    path("dropin-documents/<int:pk>/", views.dropin_document),
    path("cbv/documents/<int:pk>/", views.DocumentDetail.as_view()),
    path("cbv/documents-by-function/<int:pk>/", views.DocumentByFunction.as_view()),
    path("articles/", views.article_collection),
    path("bumped-at/<int:pk>/", views.article_bumped_at),
    path("stored-otherwise/<int:pk>/", views.article_stored_otherwise),
    path("sometimes-transformed/<int:pk>/", views.article_sometimes_transformed),
    path("accepted/<int:pk>/", views.article_accepted),
]
