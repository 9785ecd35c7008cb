"""profiles.Suppression takes over consent.Suppression's table as it is: only the migration
state moves here (consent 0005 drops the foreign key to its requests and keeps a proxy
for its admin pages). No row is copied."""
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('profiles', '0026_merged_into_partial_index'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Suppression',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('digest', models.CharField(max_length=64, unique=True, verbose_name='digest')),
                        ('kind', models.CharField(max_length=40, verbose_name='identifier kind')),
                        ('request_id', models.BigIntegerField(blank=True, db_index=True, null=True, verbose_name='request')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='since')),
                    ],
                    options={
                        'verbose_name': 'suppressed identifier',
                        'verbose_name_plural': 'suppressed identifiers',
                        'db_table': 'consent_suppression',
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
