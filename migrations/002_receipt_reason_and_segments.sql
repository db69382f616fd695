-- What a receipt said when the message did not reach its person (history shows it), and the SMS
-- segments a delivered SMS cost its shop (the daily spend, `mall-notify sms spend`).
ALTER TABLE messages ADD COLUMN receipt_reason text, ADD COLUMN sms_segments integer;
