from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RunSQL("ALTER TABLE shop_product ADD COLUMN name text"),
    ]
