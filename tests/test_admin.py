"""The ResourceVersion admin: list, filters, search, read-only form, bump actions, permissions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from django_conditional import versions
from django_conditional.models import ResourceVersion
from example_project.blog.factories import ArticleFactory, AuthorFactory
from example_project.blog.models import Article, Author
from example_project.blog.testing import reset_version_cache

# Bumps publish to the cache on commit: run each test in real transactions.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("example_project.urls"),
]

CHANGELIST = "admin:django_conditional_resourceversion_changelist"
BUMP_COLLECTION = "admin:django_conditional_resourceversion_bump_collection"


@pytest.fixture(autouse=True)
def fresh_cache():
    reset_version_cache()
    yield
    reset_version_cache()


@pytest.fixture
def admin_client_() -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client() -> Client:
    """A staff user who may view resource versions but not change them."""
    user = User.objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="django_conditional",
            codename="view_resourceversion",
        )
    )
    client = Client()
    client.force_login(user)
    return client


def row(key: str) -> ResourceVersion:
    found: ResourceVersion = ResourceVersion.objects.get(key=key)
    return found


def test_changelist_lists_objects_and_collections_with_links(admin_client_):
    article = ArticleFactory.create(title="Linked article")
    key = versions.object_key(article)

    response = admin_client_.get(reverse(CHANGELIST))

    assert response.status_code == 200
    page = response.content.decode()
    assert key in page
    assert versions.collection_key(Article) in page
    # The object links to its own admin change page.
    change_url = reverse("admin:blog_article_change", args=[article.pk])
    assert f'href="{change_url}"' in page
    assert "(all)" in page  # a whole-table collection


def test_filter_by_kind(admin_client_):
    article = ArticleFactory.create()

    response = admin_client_.get(reverse(CHANGELIST), {"kind__exact": "collection"})

    keys = {rv.key for rv in response.context["cl"].result_list}
    assert versions.collection_key(Article) in keys
    assert versions.object_key(article) not in keys
    assert keys and all(k.startswith("c:") for k in keys)


def test_filter_by_model(admin_client_):
    article = ArticleFactory.create()
    author_ct = ContentType.objects.get_for_model(Author)

    response = admin_client_.get(
        reverse(CHANGELIST), {"content_type__id__exact": author_ct.pk}
    )

    keys = {rv.key for rv in response.context["cl"].result_list}
    assert versions.object_key(article.author) in keys
    assert versions.collection_key(Author) in keys
    assert versions.object_key(article) not in keys
    assert all(":blog.author" in k for k in keys)


def test_search_by_key(admin_client_):
    first, second = ArticleFactory.create_batch(2)

    response = admin_client_.get(reverse(CHANGELIST), {"q": versions.object_key(first)})

    keys = [rv.key for rv in response.context["cl"].result_list]
    assert keys == [versions.object_key(first)]


def test_date_hierarchy_drills_down_by_updated_at(admin_client_):
    article = ArticleFactory.create()
    updated = row(versions.object_key(article)).updated_at

    response = admin_client_.get(
        reverse(CHANGELIST), {"updated_at__year": str(updated.year)}
    )

    assert response.status_code == 200
    assert versions.object_key(article) in {
        rv.key for rv in response.context["cl"].result_list
    }
    stale = admin_client_.get(
        reverse(CHANGELIST), {"updated_at__year": str(updated.year - 5)}
    )
    assert list(stale.context["cl"].result_list) == []


def test_form_is_read_only(admin_client_):
    article = ArticleFactory.create()
    version_row = row(versions.object_key(article))
    url = reverse(
        "admin:django_conditional_resourceversion_change", args=[version_row.pk]
    )

    page = admin_client_.get(url)
    assert page.status_code == 200
    assert 'name="version"' not in page.content.decode()

    admin_client_.post(url, {"version": "999", "key": "o:blog.article:0"})
    version_row.refresh_from_db()
    assert version_row.version != 999
    assert version_row.key == versions.object_key(article)


def test_no_add_and_no_delete(admin_client_):
    article = ArticleFactory.create()
    version_row = row(versions.object_key(article))

    add = admin_client_.get(reverse("admin:django_conditional_resourceversion_add"))
    delete = admin_client_.get(
        reverse(
            "admin:django_conditional_resourceversion_delete", args=[version_row.pk]
        )
    )

    assert add.status_code == 403
    assert delete.status_code == 403
    actions = admin_client_.get(reverse(CHANGELIST)).context["action_form"]
    choices = [value for value, _label in actions.fields["action"].choices]
    assert "delete_selected" not in choices
    assert {"bump_selected", "bump_collections"} <= set(choices)


def test_bump_action_changes_the_etag_seen_by_the_next_request(admin_client_):
    article = ArticleFactory.create()
    visitor = Client()
    url = article.get_absolute_url()
    first = visitor.get(url)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert visitor.get(url, headers={"if-none-match": etag}).status_code == 304

    response = admin_client_.post(
        reverse(CHANGELIST),
        {
            "action": "bump_selected",
            "_selected_action": [row(versions.object_key(article)).pk],
        },
        follow=True,
    )
    assert "Bumped 1 version" in response.content.decode()

    again = visitor.get(url, headers={"if-none-match": etag})
    assert again.status_code == 200
    assert again.headers["ETag"] != etag


def test_bump_selected_keeps_a_deleted_object_deleted(admin_client_):
    article = ArticleFactory.create()
    key = versions.object_key(article)
    article_pk = article.pk
    article.delete()
    before = row(key).version
    assert before < 0

    admin_client_.post(
        reverse(CHANGELIST),
        {"action": "bump_selected", "_selected_action": [row(key).pk]},
    )

    assert row(key).version == before - 1
    assert versions.get(key) == before - 1
    page = admin_client_.get(reverse(CHANGELIST), {"q": key}).content.decode()
    assert f"#{article_pk} (deleted)" in page
    assert reverse("admin:blog_article_change", args=[article_pk]) not in page


def test_bump_collections_action_changes_the_list_etag(admin_client_):
    article = ArticleFactory.create()
    visitor = Client()
    first = visitor.get("/articles/")
    etag = first.headers["ETag"]
    assert visitor.get("/articles/", headers={"if-none-match": etag}).status_code == 304
    before = versions.get(versions.object_key(article))

    admin_client_.post(
        reverse(CHANGELIST),
        {
            "action": "bump_collections",
            "_selected_action": [row(versions.object_key(article)).pk],
        },
    )

    again = visitor.get("/articles/", headers={"if-none-match": etag})
    assert again.status_code == 200
    assert again.headers["ETag"] != etag
    # Only the collection moved, not the object.
    assert versions.get(versions.object_key(article)) == before


def test_bump_collection_view(admin_client_):
    AuthorFactory.create()
    key = versions.collection_key(Author)
    before = versions.get(key)
    author_ct = ContentType.objects.get_for_model(Author)

    page = admin_client_.get(reverse(BUMP_COLLECTION))
    assert page.status_code == 200
    assert (
        f'<option value="{author_ct.pk}">blog.Author</option>' in page.content.decode()
    )
    changelist = admin_client_.get(reverse(CHANGELIST)).content.decode()
    assert reverse(BUMP_COLLECTION) in changelist

    response = admin_client_.post(reverse(BUMP_COLLECTION), {"model": author_ct.pk})

    assert response.status_code == 302
    assert response.headers["Location"] == reverse(CHANGELIST)
    assert versions.get(key) == before + 1


def test_bump_collection_view_offers_tracked_models_without_versions_yet(
    admin_client_,
):
    assert not ResourceVersion.objects.exists()
    page = admin_client_.get(reverse(BUMP_COLLECTION)).content.decode()
    for label in ("blog.Article", "blog.Author", "blog.Comment", "blog.Tag"):
        assert f">{label}</option>" in page
    assert ">auth.User</option>" not in page  # not tracked


def test_bump_collection_view_needs_a_model(admin_client_):
    ArticleFactory.create()
    response = admin_client_.post(reverse(BUMP_COLLECTION), {"model": "nope"})
    assert response.status_code == 200
    assert "Choose a model." in response.content.decode()


def test_viewer_without_change_permission_cannot_bump(viewer_client):
    article = ArticleFactory.create()
    key = versions.object_key(article)
    before = versions.get(key)

    listing = viewer_client.get(reverse(CHANGELIST))
    assert listing.status_code == 200
    assert key in listing.content.decode()
    # No bump action offered, no link to the bump view.
    assert listing.context["action_form"] is None or "bump_selected" not in [
        value for value, _ in listing.context["action_form"].fields["action"].choices
    ]
    assert reverse(BUMP_COLLECTION) not in listing.content.decode()

    viewer_client.post(
        reverse(CHANGELIST),
        {"action": "bump_selected", "_selected_action": [row(key).pk]},
    )
    assert versions.get(key) == before
    assert viewer_client.get(reverse(BUMP_COLLECTION)).status_code == 403
    assert (
        viewer_client.post(
            reverse(BUMP_COLLECTION),
            {"model": ContentType.objects.get_for_model(Article).pk},
        ).status_code
        == 403
    )
    assert versions.get(versions.collection_key(Article)) >= 0


def test_rows_of_unregistered_and_vanished_models(admin_client_):
    from tests.testapp.models import Note

    note_key = versions.object_key(Note, 5)
    gone = ContentType.objects.create(app_label="gone", model="vanished")
    versions.bump(note_key)
    ResourceVersion.objects.create(
        key="o:gone.vanished:1",
        kind=ResourceVersion.Kind.OBJECT,
        content_type=gone,
        object_pk="1",
        version=3,
    )

    page = admin_client_.get(reverse(CHANGELIST)).content.decode()

    # Note has no admin page: its row names the object without a link.
    assert "#5</td>" in page
    assert "vanished" in page  # the content type's name stands for the missing model
    choices = admin_client_.get(reverse(BUMP_COLLECTION)).content.decode()
    assert ">testapp.Note</option>" in choices
    assert "gone" not in choices

    response = admin_client_.post(
        reverse(CHANGELIST),
        {
            "action": "bump_collections",
            "_selected_action": [row("o:gone.vanished:1").pk],
        },
        follow=True,
    )
    assert "Bumped the collection of -." in response.content.decode()
    assert versions.get(note_key) == 1
