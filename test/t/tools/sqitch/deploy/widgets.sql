BEGIN;
CREATE TABLE sqitch_widgets (id int PRIMARY KEY);
COMMIT;
