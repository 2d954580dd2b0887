"""Operators run experiments: they create and change them and their arms, and read results and bandit state."""
from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.models import Q

OPERATORS_GROUP = "Operators"

OPERATOR_PERMISSIONS = [
    "experiments.add_experiment",
    "experiments.change_experiment",
    "experiments.view_experiment",
    *(f"experiments.{action}_arm" for action in ("add", "change", "delete", "view")),
    "experiments.view_experimentresult",
    "experiments.view_banditstate",
]


def grant_operator_permissions(apps, schema_editor):
    # Permissions are normally created by post_migrate, after every migration has run; create them now.
    app_config = apps.get_app_config("experiments")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, using=schema_editor.connection.alias, apps=apps)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    wanted = Q()
    for name in OPERATOR_PERMISSIONS:
        app_label, codename = name.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    permissions = list(Permission.objects.filter(wanted))
    if len(permissions) != len(OPERATOR_PERMISSIONS):
        found = {f"experiments.{p.codename}" for p in permissions}
        raise LookupError(f"Missing permissions: {sorted(set(OPERATOR_PERMISSIONS) - found)}")
    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    group.permissions.add(*permissions)


def revoke_operator_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=OPERATORS_GROUP).first()
    if group is not None:
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="experiments"))


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant_operator_permissions, revoke_operator_permissions)]
