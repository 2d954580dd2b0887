"""The Editors group: staff who curate the catalog and never see accounts or viewing history."""
from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.models import Q

EDITORS_GROUP = "Editors"

# Grants go here, as "app_label.codename".
EDITOR_PERMISSIONS = [
    "catalog.view_title",
    "catalog.add_title",
    "catalog.change_title",
    "catalog.view_credit",
    "catalog.add_credit",
    "catalog.change_credit",
    "catalog.view_genre",
    "catalog.add_genre",
    "catalog.change_genre",
    "catalog.view_person",
    "catalog.add_person",
    "catalog.change_person",
    "catalog.view_country",
    "catalog.add_country",
    "catalog.change_country",
]


def grant_editor_permissions(apps, schema_editor):
    # Permissions are normally created by post_migrate, after every migration has run; create them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=schema_editor.connection.alias, apps=apps)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    wanted = Q()
    for name in EDITOR_PERMISSIONS:
        app_label, codename = name.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    permissions = list(Permission.objects.filter(wanted).select_related("content_type"))
    if len(permissions) != len(EDITOR_PERMISSIONS):
        found = {f"{p.content_type.app_label}.{p.codename}" for p in permissions}
        raise LookupError(f"Missing permissions: {sorted(set(EDITOR_PERMISSIONS) - found)}")
    group, _ = Group.objects.get_or_create(name=EDITORS_GROUP)
    group.permissions.add(*permissions)


def delete_editors_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=EDITORS_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0001_initial"),
        ("users", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant_editor_permissions, delete_editors_group)]
