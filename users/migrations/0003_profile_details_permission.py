"""users.view_profile_details: who may see a profile's viewing history and account details on the staff pages.

Editors (catalog 0002) never hold it: they preview homepages without history, account id, country or tier.
The Operators group (created here if missing) holds it; superusers have every permission.
"""
from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATORS_GROUP = "Operators"
PERMISSION = "view_profile_details"


def grant_operators(apps, schema_editor):
    # Permissions are normally created by post_migrate, after every migration has run; create them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=schema_editor.connection.alias, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="users", codename=PERMISSION)
    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    group.permissions.add(permission)


def revoke_operators(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name=OPERATORS_GROUP):
        group.permissions.remove(*group.permissions.filter(content_type__app_label="users", codename=PERMISSION))


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0002_profile_name_upper_idx"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="profile",
            options={
                "ordering": ["account_id", "slot"],
                "permissions": [("view_profile_details", "View profile viewing history and account details")],
            },
        ),
        migrations.RunPython(grant_operators, revoke_operators),
    ]
