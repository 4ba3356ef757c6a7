-- Alert ids are handed out in blocks from this one row, so that server instances sharing the
-- database never give two alerts one id (each instance spends its blocks alone).
-- `next_id` is the first id not reserved yet; it starts above every stored alert.
CREATE TABLE alert_id_counter (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    next_id  BIGINT  NOT NULL CHECK (next_id > 0)
);
INSERT INTO alert_id_counter (only_row, next_id)
SELECT TRUE, COALESCE(MAX(id), 0) + 1 FROM alert_record;
