"""consent.Suppression's table now belongs to profiles.Suppression (profiles 0027): the
foreign key to the erasure request becomes a plain id (profiles sits below consent), the
model leaves consent's state, and a proxy keeps the admin page and its permission here.
No row is copied."""
import django.db.models.deletion
from django.db import migrations, models


def dangling_requests_forget(apps, schema_editor):
    """Backwards only: requests deleted since leave ids the constraint would refuse."""
    Suppression = apps.get_model("consent", "Suppression")
    requests = apps.get_model("consent", "DataSubjectRequest").objects.values("pk")
    Suppression.objects.filter(request__isnull=False).exclude(request_id__in=requests).update(request=None)


class Migration(migrations.Migration):

    dependencies = [
        ('consent', '0004_state_guard_per_statement'),
        ('profiles', '0027_suppression_from_consent'),
    ]

    operations = [
        # Drops the database constraint, keeps the column and its index: a request deleted
        # later leaves its id behind instead of failing.
        migrations.AlterField(
            model_name='suppression',
            name='request',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True,
                                    on_delete=django.db.models.deletion.SET_NULL, related_name='+',
                                    to='consent.datasubjectrequest', verbose_name='request'),
        ),
        migrations.RunPython(migrations.RunPython.noop, dangling_requests_forget),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Suppression')],
            database_operations=[],
        ),
        migrations.CreateModel(
            name='Suppression',
            fields=[],
            options={
                'verbose_name': 'suppressed identifier',
                'verbose_name_plural': 'suppressed identifiers',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('profiles.suppression',),
        ),
    ]
