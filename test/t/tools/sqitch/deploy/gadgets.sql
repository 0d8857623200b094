BEGIN;
ALTER TABLE sqitch_widgets ADD COLUMN id int;
COMMIT;
