BEGIN;
DROP TABLE sqitch_widgets;
COMMIT;
