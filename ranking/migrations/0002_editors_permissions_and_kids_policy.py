"""Editors manage the business rules and read their audit trail; the one KidsPolicy row exists from the start."""
from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.models import Q

EDITORS_GROUP = "Editors"

EDITOR_PERMISSIONS = [
    *(f"ranking.{action}_{model}" for model in ("boost", "tierrule", "suppression")
      for action in ("add", "change", "delete", "view")),
    "ranking.view_kidspolicy",
    "ranking.change_kidspolicy",
    "ranking.view_rulechange",
]


def grant_editor_permissions(apps, schema_editor):
    # Permissions are normally created by post_migrate, after every migration has run; create them now.
    app_config = apps.get_app_config("ranking")
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


def revoke_editor_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=EDITORS_GROUP).first()
    if group is not None:
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="ranking"))


def create_kids_policy(apps, schema_editor):
    KidsPolicy = apps.get_model("ranking", "KidsPolicy")
    if not KidsPolicy.objects.exists():
        KidsPolicy.objects.create(maturity_cap=7)


class Migration(migrations.Migration):
    dependencies = [
        ("ranking", "0001_initial"),
        ("catalog", "0002_editors_group"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(grant_editor_permissions, revoke_editor_permissions),
        migrations.RunPython(create_kids_policy, migrations.RunPython.noop),
    ]
