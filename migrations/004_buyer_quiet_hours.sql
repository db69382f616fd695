-- A buyer's own quiet hours per scope ('23:00-07:00', 'none': never held; NULL: the shop's).
ALTER TABLE buyer_preferences ADD COLUMN quiet_hours text;
-- A delivery held by the buyer's quiet hours: until when.
ALTER TABLE messages ADD COLUMN deferred_until timestamptz;
