"""The role groups admin, support and system, granted their refresh capabilities."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

# Frozen here on purpose: later changes to a role belong to the admin or a new migration.
ROLE_PERMISSIONS = {
    "admin": [
        "refresh_all", "refresh_prices", "refresh_any_portfolio", "refresh_strategy", "refresh_benchmark",
        "use_full_mode", "request_high_priority", "request_emergency", "apply_rebalancing", "cancel_any_run",
        "view_all_runs",
    ],
    "support": [
        "refresh_prices", "refresh_benchmark", "refresh_any_portfolio", "request_high_priority", "view_all_runs",
    ],
    "system": [
        "refresh_all", "refresh_prices", "refresh_any_portfolio", "refresh_strategy", "refresh_benchmark",
        "use_full_mode", "request_high_priority", "apply_rebalancing", "cancel_any_run", "view_all_runs",
    ],
}


def create_role_groups(apps, schema_editor):
    db = schema_editor.connection.alias
    # Permissions are normally created after all migrations (post_migrate); make them now.
    app_config = apps.get_app_config("refresh")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, using=db, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(db).get_or_create(name=name)
        group.permissions.add(*Permission.objects.using(db).filter(content_type__app_label="refresh",
                                                                   codename__in=codenames))


def remove_role_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("refresh", "0002_run_anomalies_cache_permissions"),
    ]

    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
