-- Alert ids are handed out in blocks from this one row, so that server instances sharing the
-- database never give two alerts one id (each instance spends its blocks alone).
-- `next_id` is the first id not reserved yet; it starts above every stored alert.
CREATE TABLE alert_id_counter (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    next_id  INTEGER NOT NULL CHECK (next_id > 0)
);
INSERT INTO alert_id_counter (only_row, next_id)
SELECT 1, COALESCE(MAX(id), 0) + 1 FROM alert_record;
