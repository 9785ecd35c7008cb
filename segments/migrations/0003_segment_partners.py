from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('cdp', '0003_partners_and_api_keys'),
        ('segments', '0001_segments_and_membership'),
    ]

    operations = [
        migrations.AddField(
            model_name='segment',
            name='shared_with',
            field=models.ManyToManyField(blank=True, related_name='shared_segments', to='cdp.partner', verbose_name='shared with partners'),
        ),
    ]
